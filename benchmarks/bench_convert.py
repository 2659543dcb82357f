"""Spectrogram image -> audio: riffpad now, riffpad before, librosa, and Riffusion's figures.

Input: 512x512 Riffusion spectrogram images made from the recorded sounds the tests use
(Debian's sound themes, each repeated to 5.11 s), or one image with --image.

For each image, timed runs interleaved (so all see the same machine load), best of
--repeat, one CPU thread each by default (--threads N):
- riffpad: ``audio_from_spectrogram`` with its default plan (PGHI start), on the CPU
  through the fused kernels of ``riffpad.audio.kernels``;
- riffpad, same plan, torch ops: the same iteration as torch operations (the GPU path, and
  the CPU path before the kernels);
- riffpad before: the plan of commit 978cea4 (vocoder start, 4x20 then 2x16m), kept as a
  plan in today's code, torch ops (benchmarks/ab_convert.py compares against the old
  code itself);
- librosa, with Riffusion's converter method: the mel pseudo-inverse clipped at 0 (what
  torchaudio >= 2.1's InverseMelScale solves; librosa.util.nnls's own starting point), then
  ``librosa.griffinlim`` as Riffusion calls torchaudio's: 32 iterations, momentum 0.99,
  random start, Hann, center=True. ``--full-nnls`` runs librosa's NNLS to convergence
  (L-BFGS-B history capped at 10; about 20 minutes).

Riffusion's own converter needs torchaudio, which is not published for this torch; its
figures on the same images (11.4-12.1 s, issue 16, same machine) are printed as recorded.

Score: each output is re-analysed into Riffusion's mel spectrogram and compared with the
input: ||S - a*S_hat||_F / ||S||_F (best scale a, as levels differ). CPU seconds are
printed beside wall seconds: on a shared machine they move less with the load.

    PYTHONPATH=. python benchmarks/bench_convert.py [--repeat 3] [--audio F ...]
        [--image X.png] [--threads 1] [--schedule 4x24,2x10m2] [--no-librosa] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# One thread each by default (before numpy/torch load their thread pools): on a shared
# machine OpenMP's second thread waits for a busy core on every small op, and one thread
# each compares the algorithms rather than the thread pools. --threads N to change.
_threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = _threads

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from riffpad.audio import analysis, files, params, synthesis  # noqa: E402
from riffpad.audio.mel import mel_spectral_convergence  # noqa: E402

SOUNDS = [  # the recorded sounds the tests use (Debian's sound themes)
    "/usr/share/sounds/freedesktop/stereo/phone-incoming-call.oga",
    "/usr/share/sounds/freedesktop/stereo/alarm-clock-elapsed.oga",
    "/usr/share/sounds/alsa/Front_Center.wav",
]
BEFORE = ("vocoder", "4x20,2x16m")  # 978cea4's default start and plan
RIFFUSION_RECORDED_S = (11.4, 12.1)  # Riffusion's converter, issue 16 (torchaudio, 2 threads)


def librosa_reference(mel: np.ndarray, p: params.SpectrogramParams, full_nnls: bool, seed: int):
    import librosa

    basis = librosa.filters.mel(
        sr=p.sample_rate,
        n_fft=p.n_fft,
        n_mels=p.num_frequencies,
        fmin=p.min_frequency,
        fmax=p.max_frequency,
        htk=True,
        norm=None,
    )
    if full_nnls:
        magnitude = librosa.util.nnls(basis, mel, m=10)
    else:
        # librosa.util.nnls's own starting point.
        magnitude = np.einsum("fm,...mt->...ft", np.linalg.pinv(basis), mel, optimize=True)
        np.clip(magnitude, 0, None, out=magnitude)
    return librosa.griffinlim(
        magnitude,
        n_iter=p.num_griffin_lim_iters,
        hop_length=p.hop_length,
        win_length=p.win_length,
        n_fft=p.n_fft,
        window="hann",
        center=True,
        momentum=0.99,
        init="random",
        random_state=seed,
    )


def parse_schedule(text: str | None):
    """A plan from "4x24,2x10m2": grid x iterations, m: fit the mel (a digit after it: the
    power of the multiplicative step); None: none."""
    if not text:
        return None
    stages = []
    for stage in text.split(","):
        grid, rest = stage.split("x")
        iters, _, power = rest.partition("m")
        fit = "mel" if "m" in rest else "magnitude"
        stages.append((int(grid), int(iters), fit, float(power or 1)))
    return tuple(stages)


def schedule_text(schedule) -> str:
    out = []
    for grid, iters, fit, *rest in schedule:
        power = rest[0] if rest else 1
        mel = ("m" + (f"{power:g}" if power != 1 else "")) if fit == "mel" else ""
        out.append(f"{grid}x{iters}{mel}")
    return ",".join(out)


def timed_interleaved(repeat: int, fns: list):
    """Best wall and CPU time of each function, runs interleaved so all see the same load."""
    wall, cpu, outs = [float("inf")] * len(fns), [float("inf")] * len(fns), [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t, c = time.perf_counter(), time.process_time()
            outs[i] = fn()
            wall[i] = min(wall[i], time.perf_counter() - t)
            cpu[i] = min(cpu[i], time.process_time() - c)
    return wall, cpu, outs


def images(args, p):
    if args.image:
        yield str(args.image), Image.open(args.image)
        return
    for f in args.audio:
        audio = np.resize(files.read_audio(f), p.num_samples(args.width))  # repeat to 5.11 s
        yield Path(f).name, analysis.image_from_audio(audio, p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image", type=Path, help="a 512-high spectrogram PNG (else --audio)")
    ap.add_argument("--audio", nargs="*", default=SOUNDS, help="recorded sounds to use")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs each; the best counts")
    ap.add_argument("--schedule", help="riffpad plan to try instead of the default")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for all (default 1)")
    ap.add_argument("--full-nnls", action="store_true", help="run librosa's NNLS to the end")
    ap.add_argument("--no-librosa", action="store_true", help="skip librosa (fast runs)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    p = params.SpectrogramParams()
    schedule = parse_schedule(args.schedule) or synthesis.default_schedule(p)
    methods = {
        f"riffpad {schedule_text(schedule)} (pghi)": lambda mel: synthesis.audio_from_spectrogram(
            mel, p, normalize=False, schedule=schedule
        ),
        "riffpad, same plan, torch ops (no kernels)": lambda mel: synthesis.audio_from_spectrogram(
            mel, p, normalize=False, schedule=schedule, kernels=False
        ),
        f"riffpad before: {BEFORE[1]} ({BEFORE[0]})": lambda mel: synthesis.audio_from_spectrogram(
            mel,
            p,
            normalize=False,
            schedule=parse_schedule(BEFORE[1]),
            init=BEFORE[0],
            kernels=False,
        ),
    }
    if not args.no_librosa:
        name = "librosa " + ("nnls(m=10)" if args.full_nnls else "pinv") + " + griffinlim 32"
        methods[name] = lambda mel: (
            librosa_reference(mel, p, args.full_nnls, seed=0) / params.INT16_SCALE
        )
    print(
        f"device: {analysis.default_device()}, {args.threads} CPU thread(s), best of {args.repeat}"
    )
    lo, hi = RIFFUSION_RECORDED_S
    print(f"Riffusion's converter (recorded, not runnable here): {lo}-{hi} s per image")
    synthesis.audio_from_spectrogram(np.ones((512, 8), np.float32), p)  # per-device caches
    record = {"threads": args.threads, "repeat": args.repeat, "riffusion_recorded_s": [lo, hi]}
    record["sounds"] = {}
    for label, image in images(args, p):
        mel = analysis.spectrogram_from_image(image, p)
        fns = [lambda f=f, m=mel: f(m) for f in methods.values()]
        wall, cpu, outs = timed_interleaved(1 if args.full_nnls else args.repeat, fns)
        print(f"\n{label} ({image.width}x{image.height})")
        print(
            f"  {'method':44s} {'wall s':>7s} {'cpu s':>7s} {'mel error':>9s} {'vs Riffusion':>12s}"
        )
        rows = {}
        for (name, _), w, c, out in zip(methods.items(), wall, cpu, outs, strict=True):
            assert out.shape == (p.num_samples(image.width),), out.shape
            err = mel_spectral_convergence(mel, analysis.mel_spectrogram(out, p))
            speed = f"{lo / w:.1f}-{hi / w:.1f}x"
            print(f"  {name:44s} {w:7.3f} {c:7.3f} {err:9.5f} {speed:>12s}")
            rows[name] = {"wall_s": round(w, 4), "cpu_s": round(c, 4), "mel_error": err}
        record["sounds"][label] = rows
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
