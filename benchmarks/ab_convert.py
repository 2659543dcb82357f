"""Spectrogram -> audio: this checkout against another commit, interleaved, one thread.

For changes to the converter (``riffpad.audio``; before the move,
``riffpad.engine.spectrogram``): copies the ``riffpad`` package as it is at REV into a
temporary folder as ``riffpad_old``, runs both on the same images (recorded sounds repeated
to 512 px) in alternation, and prints best times, the speed-up, both mel errors and whether
the samples are identical.

    PYTHONPATH=. python benchmarks/ab_convert.py HEAD~1 [--old-schedule 4x16,2x12m,1x4m]
        [--new-schedule 4x20,2x16m] [--repeat 4] [--audio F ...] [--threads 1]
"""

from __future__ import annotations

import os
import sys

_threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = _threads  # before torch loads its pools: compare code, not thread pools

import argparse  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_convert import SOUNDS, parse_schedule  # noqa: E402  (this folder is on sys.path)

from riffpad.audio import analysis, files, params, synthesis  # noqa: E402
from riffpad.audio.mel import mel_spectral_convergence  # noqa: E402


def converter_at(rev: str, folder: Path):
    """The module holding ``audio_from_spectrogram`` in the riffpad package at ``rev``."""
    root = Path(__file__).resolve().parents[1]
    tar = subprocess.run(
        ["git", "archive", "--format=tar", rev, "riffpad"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(folder, filter="data")
    (folder / "riffpad").rename(folder / "riffpad_old")
    for path in (folder / "riffpad_old").rglob("*.py"):
        text = path.read_text()
        path.write_text(re.sub(r"\briffpad\.", "riffpad_old.", text))
    sys.path.insert(0, str(folder))
    for name in ("riffpad_old.audio.synthesis", "riffpad_old.engine.spectrogram"):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    raise SystemExit(f"{rev}: no converter found (riffpad/audio or riffpad/engine/spectrogram.py)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rev", help="the commit to compare with (git rev)")
    ap.add_argument("--old-schedule", help="plan for REV (default: its default)")
    ap.add_argument("--new-schedule", help="plan for the checkout (default: its default)")
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--audio", nargs="*", default=SOUNDS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    p = params.SpectrogramParams()
    with tempfile.TemporaryDirectory() as tmp:
        old = converter_at(args.rev, Path(tmp))
        p_old = old.SpectrogramParams()
        runs = [
            ("old", old, p_old, parse_schedule(args.old_schedule)),
            ("new", synthesis, p, parse_schedule(args.new_schedule)),
        ]
        total = {"old": 0.0, "new": 0.0}
        for f in args.audio:
            audio = np.resize(files.read_audio(f), p.num_samples(512))
            mel = analysis.spectrogram_from_image(analysis.image_from_audio(audio, p), p)
            for _, module, pp, plan in runs:  # per-device caches
                module.audio_from_spectrogram(mel[:, :8], pp, schedule=plan)
            best, outs = {"old": 1e9, "new": 1e9}, {}
            for _ in range(args.repeat):
                for name, module, pp, plan in runs:
                    t = time.perf_counter()
                    outs[name] = module.audio_from_spectrogram(
                        mel, pp, normalize=False, schedule=plan
                    )
                    best[name] = min(best[name], time.perf_counter() - t)
            err = {
                k: mel_spectral_convergence(mel, analysis.mel_spectrogram(v, p))
                for k, v in outs.items()
            }
            for k in total:
                total[k] += best[k]
            same = "identical" if np.array_equal(outs["old"], outs["new"]) else "differ"
            print(
                f"{Path(f).name:28s} old {best['old']:.3f} s err {err['old']:.5f} | "
                f"new {best['new']:.3f} s err {err['new']:.5f} | "
                f"speed-up {best['old'] / best['new']:.3f} | samples {same}"
            )
        print(
            f"total: old {total['old']:.3f} s, new {total['new']:.3f} s, "
            f"speed-up {total['old'] / total['new']:.3f}"
        )


if __name__ == "__main__":
    main()
