"""Spectrogram -> audio: this checkout against another commit, interleaved, one thread.

For changes to riffpad.engine.spectrogram: loads the module as it is at REV beside the
working tree's, runs both on the same images (recorded sounds repeated to 512 px) in
alternation, and prints best times, the speed-up and both mel errors.

    PYTHONPATH=. python benchmarks/ab_convert.py HEAD~1 [--old-schedule 4x16,2x12m,1x4m]
        [--new-schedule 4x20,2x16m] [--repeat 4] [--audio F ...]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"  # before torch loads its pools: compare code, not thread pools

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_convert import parse_schedule  # noqa: E402  (this folder is on sys.path)

from riffpad.engine import spectrogram as new  # noqa: E402

SOUNDS = [
    "/usr/share/sounds/freedesktop/stereo/phone-incoming-call.oga",
    "/usr/share/sounds/freedesktop/stereo/alarm-clock-elapsed.oga",
    "/usr/share/sounds/alsa/Front_Center.wav",
]


def module_at(rev: str, folder: Path):
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{rev}:riffpad/engine/spectrogram.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = folder / "spectrogram_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("spectrogram_old", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["spectrogram_old"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rev", help="the commit to compare with (git rev)")
    ap.add_argument("--old-schedule", help="plan for REV (default: its default)")
    ap.add_argument("--new-schedule", help="plan for the checkout (default: its default)")
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--audio", nargs="*", default=SOUNDS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    p = new.SpectrogramParams()
    with tempfile.TemporaryDirectory() as tmp:
        old = module_at(args.rev, Path(tmp))
        runs = [
            ("old", old, parse_schedule(args.old_schedule)),
            ("new", new, parse_schedule(args.new_schedule)),
        ]
        total = {"old": 0.0, "new": 0.0}
        for f in args.audio:
            audio = np.resize(new.read_audio(f), p.num_samples(512))
            mel = new.spectrogram_from_image(new.image_from_audio(audio, p), p)
            for _, module, plan in runs:  # per-device caches
                module.audio_from_spectrogram(mel[:, :8], p, schedule=plan)
            best, outs = {"old": 1e9, "new": 1e9}, {}
            for _ in range(args.repeat):
                for name, module, plan in runs:
                    t = time.perf_counter()
                    outs[name] = module.audio_from_spectrogram(
                        mel, p, normalize=False, schedule=plan
                    )
                    best[name] = min(best[name], time.perf_counter() - t)
            err = {
                k: new.mel_spectral_convergence(mel, new.mel_spectrogram(v, p))
                for k, v in outs.items()
            }
            for k in total:
                total[k] += best[k]
            print(
                f"{Path(f).name:28s} old {best['old']:.3f} s err {err['old']:.5f} | "
                f"new {best['new']:.3f} s err {err['new']:.5f} | "
                f"speed-up {best['old'] / best['new']:.3f}"
            )
        print(
            f"total: old {total['old']:.3f} s, new {total['new']:.3f} s, "
            f"speed-up {total['old'] / total['new']:.3f}"
        )


if __name__ == "__main__":
    main()
