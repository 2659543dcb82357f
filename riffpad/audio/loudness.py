"""Riffusion's output levels (pydub's arithmetic on the int16 grid), and dBFS."""

from __future__ import annotations

import math

import numpy as np

from riffpad.audio.params import INT16_SCALE


def _rms_int(samples: np.ndarray) -> int:
    # audioop.rms truncates to an integer.
    return int(math.sqrt(float(np.mean(samples.astype(np.float64) ** 2))))


def _apply_gain(samples: np.ndarray, db: float) -> np.ndarray:
    # pydub apply_gain -> audioop.mul: scale, saturate (anything below -32767 goes to
    # -32768), then round towards minus infinity.
    scaled = samples.astype(np.float64) * (10.0 ** (db / 20.0))
    scaled = np.where(scaled < -32767.0, -32768.0, np.minimum(scaled, 32767.0))
    return np.floor(scaled)


def normalize_loudness(
    audio: np.ndarray, target_dbfs: float = -12.0, headroom_db: float = 0.1
) -> np.ndarray:
    """Riffusion's output levels: peak to int16 full scale, gain to -12 dBFS, then peaks
    to -0.1 dBFS, on the int16 grid with pydub's arithmetic (dBFS = truncated integer RMS
    relative to 32768; gains saturate and round down like audioop.mul). Sample for sample
    equal to Riffusion's audio_from_waveform + apply_filters(compression=False) (checked
    against pydub 0.25.1). Returns float32 in [-1, 1] (int16 / 32768); silence stays silent.
    """
    x = np.asarray(audio, dtype=np.float32)
    peak = np.max(np.abs(x)) if x.size else np.float32(0)
    if peak == 0 or not np.isfinite(peak):
        return np.zeros(x.shape, dtype=np.float32)
    # audio_from_waveform(normalize=True): scale in float32, truncate to int16.
    samples = np.trunc(x * (np.float32(32767) / peak)).astype(np.float64)
    rms = _rms_int(samples)
    if rms > 0:
        samples = _apply_gain(samples, target_dbfs - 20 * math.log10(rms / INT16_SCALE))
    peak = np.max(np.abs(samples))
    if peak > 0:
        target_peak = INT16_SCALE * 10.0 ** (-headroom_db / 20.0)
        samples = _apply_gain(samples, 20 * math.log10(target_peak / peak))
    return (samples / INT16_SCALE).astype(np.float32)


def dbfs(audio: np.ndarray) -> float:
    """pydub's dBFS of float audio in [-1, 1]: RMS relative to full scale, in dB."""
    rms = math.sqrt(float(np.mean(np.asarray(audio, dtype=np.float64) ** 2)))
    return 20 * math.log10(rms) if rms > 0 else -math.inf
