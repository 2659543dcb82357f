"""What the bar grid's time stretch costs in sound: riffpad's spectrogram stretch against
librosa's phase vocoder, on recorded sounds, one run.

    PYTHONPATH=. python benchmarks/bench_stretch.py [--sounds a.oga b.wav ...]

For each sound (default: the recorded sounds the tests use) the converter's mel
spectrogram M is taken, and for each factor f (0.8, 1.0, 1.25):

* riffpad (the jam's path): M's time axis resampled by f (riffpad.audio.stretch), then the
  converter's phase reconstruction (Griffin-Lim, riffpad.audio.synthesis);
* baseline: the converter's 1.0x audio (M through Griffin-Lim unstretched) stretched by f
  with librosa.effects.time_stretch (a phase vocoder), i.e. stretching after
  reconstruction instead of before.

Error: the round-trip mel error, mel_spectral_convergence between the target (M resampled
by f: the same spectra at the stretched times) and the mel spectrogram of the output.
Goal: riffpad at or below librosa for every factor.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

# One thread each (before numpy/torch load their pools), as bench_convert does.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
import _paths  # noqa: E402, F401  (the repository root on sys.path: see _paths.py)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from riffpad.audio.analysis import mel_spectrogram  # noqa: E402
from riffpad.audio.files import read_audio  # noqa: E402
from riffpad.audio.mel import mel_spectral_convergence  # noqa: E402
from riffpad.audio.params import SpectrogramParams  # noqa: E402
from riffpad.audio.stretch import stretch  # noqa: E402
from riffpad.audio.synthesis import audio_from_spectrogram  # noqa: E402

SOUNDS = (  # tests/integration/test_spectrogram.py and test_convert.py
    "/usr/share/sounds/freedesktop/stereo/complete.oga",
    "/usr/share/sounds/freedesktop/stereo/bell.oga",
    "/usr/share/sounds/freedesktop/stereo/phone-incoming-call.oga",
)
FACTORS = (0.8, 1.0, 1.25)
# At 1.0x both are the converter's own audio (librosa's stretch by 1 gives it back to
# float precision): equal within this, not a loss.
TOLERANCE = 1e-3


def mel_error(target: np.ndarray, audio: np.ndarray, p: SpectrogramParams) -> float:
    got = mel_spectrogram(audio, p, "cpu")
    n = min(target.shape[1], got.shape[1])
    return mel_spectral_convergence(target[:, :n], got[:, :n])


def main() -> None:
    import librosa

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sounds", nargs="*", default=list(SOUNDS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    p = SpectrogramParams()
    print(f"python {platform.python_version()} on {platform.machine()}", end=", ")
    print(f"librosa {librosa.__version__}")
    print("round-trip mel error (lower is better): riffpad stretch-then-Griffin-Lim | "
          "Griffin-Lim-then-librosa phase vocoder")  # fmt: skip
    print(f"{'sound':28} " + "  ".join(f"{f:>5g}x riffpad/librosa" for f in FACTORS))
    wins = []
    t0 = time.perf_counter()
    for path in args.sounds:
        if not Path(path).exists():
            print(f"{path}: missing (apt-get install sound-theme-freedesktop)")
            continue
        audio = read_audio(path)
        mel = mel_spectrogram(audio, p, "cpu")
        base = audio_from_spectrogram(mel, p, device="cpu")  # the converter's 1.0x audio
        cells = []
        for f in FACTORS:
            target = stretch(mel, f)
            ours = audio_from_spectrogram(target, p, device="cpu")
            theirs = librosa.effects.time_stretch(base, rate=1.0 / f)
            e_ours, e_lib = mel_error(target, ours, p), mel_error(target, theirs, p)
            ok = e_ours <= e_lib * (1 + TOLERANCE)
            wins.append(ok)
            cells.append(f"{e_ours:.4f}/{e_lib:.4f}{'' if ok else ' *'}")
        print(f"{Path(path).name:28} " + "  ".join(f"{c:>24}" for c in cells))
    print(f"riffpad at or below librosa in {sum(wins)}/{len(wins)} cases (* marks the others);"
          f" {time.perf_counter() - t0:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
