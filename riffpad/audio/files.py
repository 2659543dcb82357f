"""Audio and spectrogram files: WAV and PNG written atomically, audio of any format read.

Writes go through ``riffpad.atomic``: aside in the same folder, fsynced, renamed over the
target, so a reader never sees half a file.
"""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image

from riffpad.atomic import atomic_open
from riffpad.audio.clip import SAMPLE_RATE
from riffpad.audio.params import INT16_SCALE

# What ``read_audio`` reads, by file name (libsndfile >= 1.1 reads MP3 too).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".mp3")


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] to int16 (x * 32768, rounded, saturated)."""
    x = np.asarray(audio)
    if x.dtype == np.int16:
        return x
    return np.clip(np.round(x.astype(np.float64) * INT16_SCALE), -32768, 32767).astype(np.int16)


def write_wav(
    path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int = SAMPLE_RATE
) -> None:
    """Write mono audio (float in [-1, 1] or int16) as 16-bit PCM WAV, atomically.

    The file is written aside in the same folder, fsynced and renamed over ``path``, so a
    reader never sees half a file and a failure leaves nothing behind.
    """
    import soundfile as sf

    data = to_int16(audio)
    if data.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {data.shape}")
    with atomic_open(path) as fh:
        sf.write(fh, data, int(sample_rate), subtype="PCM_16", format="WAV")


def save_image(path: str | os.PathLike[str], image: Image.Image) -> None:
    """Save a spectrogram image as PNG with its EXIF, atomically (see ``write_wav``)."""
    with atomic_open(path) as fh:
        image.save(fh, format="PNG", exif=image.getexif())


def read_audio(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Any file soundfile reads, mixed to mono (channel mean) and resampled to
    ``sample_rate`` (polyphase): float32 in [-1, 1]."""
    import soundfile as sf
    from scipy.signal import resample_poly

    try:
        data, rate = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise ValueError(f"{path}: cannot read audio: {e}") from None
    mono = data.mean(axis=1)
    if rate != sample_rate and mono.size:
        g = math.gcd(int(rate), int(sample_rate))
        mono = resample_poly(mono, sample_rate // g, rate // g)
    return np.ascontiguousarray(mono, dtype=np.float32)
