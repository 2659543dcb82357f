"""Time stretch on the magnitude spectrogram, before phase reconstruction.

Griffin-Lim rebuilds the phase of every clip anyway, so a clip is stretched or squeezed by
resampling its magnitude spectrogram's time axis: no phase vocoder's smeared phase on top.
Pure numpy: (bins, frames) in, (bins, frames') out.
"""

from __future__ import annotations

import numpy as np


def resample_frames(spec: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Columns of ``spec`` read at fractional frame ``positions`` (linear interpolation of
    the magnitude between the two nearest frames)."""
    spec = np.asarray(spec, dtype=np.float32)
    if spec.ndim != 2 or spec.shape[1] < 2:
        raise ValueError(f"expected a (bins, frames >= 2) spectrogram, got {spec.shape}")
    last = spec.shape[1] - 1
    p = np.clip(np.asarray(positions, dtype=np.float64), 0.0, last)
    i0 = np.minimum(np.floor(p).astype(np.intp), last - 1)
    f = (p - i0).astype(np.float32)
    return spec[:, i0] * (1.0 - f) + spec[:, i0 + 1] * f


def stretch(spec: np.ndarray, factor: float) -> np.ndarray:
    """``spec`` played ``factor`` times as long: (frames - 1) * factor + 1 frames, rounded."""
    spec = np.asarray(spec, dtype=np.float32)
    if factor <= 0:
        raise ValueError(f"stretch factor must be positive, not {factor}")
    span = spec.shape[1] - 1
    out = max(2, round(span * factor) + 1)
    return resample_frames(spec, np.arange(out) * (span / (out - 1)))


def fit_loop(spec: np.ndarray, hop: int, length: int, tail: int = 0) -> np.ndarray:
    """Frames for ``length + tail`` samples of audio at ``hop`` samples a frame, with the
    clip's whole span (frames - 1 hops) stretched onto exactly ``length`` samples.

    A clip is a loop of whole bars: the ``tail`` after its last bar line (the crossfade
    into the next clip) continues from the clip's beginning, wrapping round, instead of
    stretching everything by the tail's share. Returns ceil((length + tail) / hop) + 1
    frames; phase reconstruction gives hop * (frames - 1) >= length + tail samples, to trim.
    """
    spec = np.asarray(spec, dtype=np.float32)
    if length <= 0 or tail < 0 or hop <= 0:
        raise ValueError(f"length ({length}), tail ({tail}) and hop ({hop}) out of range")
    span = spec.shape[1] - 1  # source frames covering the clip
    frames = -(-(length + tail) // hop) + 1
    src = np.arange(frames) * (hop * span / length)  # source frame of each output frame
    return resample_frames(spec, np.where(src > span, np.mod(src, span), src))
