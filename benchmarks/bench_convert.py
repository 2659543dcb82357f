"""Spectrogram image -> audio: riffpad vs a librosa reference, same parameters, one run.

Input: a 512x512 Riffusion spectrogram image, made from recorded sound (default: Debian's
sound-theme-freedesktop phone ring, repeated to 5.11 s) or given with --image.

Reference (librosa, Riffusion's parameters: 44.1 kHz, n_fft 17640, hop 441, window 4410,
512 HTK mel bins over 0..10 kHz, no norm): mel -> linear magnitude as
librosa.feature.inverse.mel_to_stft does it, then librosa.griffinlim (32 iterations,
momentum 0.99, hann, center=True). mel_to_stft's NNLS runs L-BFGS-B with a history as long
as the 8821 STFT bins, which asks for ~10-16 GiB per 7-frame block on this size, so by
default the reference stops at the NNLS starting point librosa.util.nnls computes (the
pseudo-inverse solution clipped at 0, which already fits the mel bins to ~1e-4);
--full-nnls runs librosa.util.nnls to convergence with its L-BFGS-B history capped at 10
(about 17 s per 7 frames here, so ~20 minutes).

Score: each output is re-analysed into Riffusion's mel spectrogram and compared with the
input: ||S - a*S_hat||_F / ||S||_F (best scale a, as levels differ).

    PYTHONPATH=. python benchmarks/bench_convert.py [--repeat 3] [--image X.png] [--threads 1]
"""

from __future__ import annotations

import argparse
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
DEFAULT_SOUND = SOUNDS[0]


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
    """A Griffin-Lim plan from "4x20,2x16m" (grid x iterations, m: fit the mel); None: none."""
    if not text:
        return None
    return tuple(
        (int(g), int(n.rstrip("m")), "mel" if n.endswith("m") else "magnitude")
        for g, n in (stage.split("x") for stage in text.split(","))
    )


def schedule_text(schedule) -> str:
    return ",".join(f"{g}x{n}{'m' * (f == 'mel')}" for g, n, f in schedule)


def best_of_interleaved(repeat: int, fns: list):
    """Best wall time of each function, runs interleaved so both see the same load."""
    best, outs = [float("inf")] * len(fns), [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            outs[i] = fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best, outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--image", type=Path, help="a 512-high spectrogram PNG (else made from --audio)"
    )
    ap.add_argument("--audio", type=Path, default=Path(DEFAULT_SOUND))
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs each; the best counts")
    ap.add_argument(
        "--schedule",
        help="riffpad Griffin-Lim plan, e.g. 4x16,2x12m,1x4m (grid x iters, m: mel fit)",
    )
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for both (default 1)")
    ap.add_argument("--full-nnls", action="store_true", help="run librosa's NNLS to the end")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    p = params.SpectrogramParams()
    if args.image:
        image = Image.open(args.image)
        source = str(args.image)
    else:
        audio = files.read_audio(args.audio)
        audio = np.resize(audio, p.num_samples(args.width))  # repeat to the clip length
        image = analysis.image_from_audio(audio, p)
        source = f"{args.audio} (repeated to {p.num_samples(args.width)} samples)"
    mel = analysis.spectrogram_from_image(image, p)
    print(f"input: {image.width}x{image.height} spectrogram from {source}")
    print(
        f"device: {analysis.default_device()}, {args.threads} CPU thread(s), best of {args.repeat}"
    )

    schedule = parse_schedule(args.schedule) or synthesis.default_schedule(p)
    synthesis.audio_from_spectrogram(mel[:, :8], p, schedule=schedule)  # build per-device caches
    (t_ours, t_ref), (ours, ref) = best_of_interleaved(
        1 if args.full_nnls else args.repeat,
        [
            lambda: synthesis.audio_from_spectrogram(mel, p, normalize=False, schedule=schedule),
            lambda: librosa_reference(mel, p, args.full_nnls, seed=0) / params.INT16_SCALE,
        ],
    )
    assert ours.shape == ref.shape == (p.num_samples(image.width),), (ours.shape, ref.shape)
    err_ours = mel_spectral_convergence(mel, analysis.mel_spectrogram(ours, p))
    err_ref = mel_spectral_convergence(mel, analysis.mel_spectrogram(ref, p))
    ref_name = "librosa " + ("nnls(m=10)" if args.full_nnls else "nnls start") + " + griffinlim"
    print(f"{'method':40s} {'seconds':>8s} {'mel error':>10s}")
    ours_name = "riffpad " + schedule_text(schedule)
    print(f"{ours_name:40s} {t_ours:8.3f} {err_ours:10.4f}")
    print(f"{ref_name:40s} {t_ref:8.3f} {err_ref:10.4f}")
    print(f"speed ratio (librosa / riffpad): {t_ref / t_ours:.1f}x")
    print(f"mel error ratio (riffpad / librosa): {err_ours / err_ref:.3f}")


if __name__ == "__main__":
    main()
