"""Crossfade gains, one shape for every seam: the jam's clip grid and the player's takes."""

from __future__ import annotations

import numpy as np

FADES = ("equal-power", "linear")


def fade_gains(n: int, shape: str = "equal-power") -> tuple[np.ndarray, np.ndarray]:
    """(fade-in, fade-out) gains for an ``n``-sample seam, sampled at the midpoints.

    Equal-power (sin/cos) keeps the loudness of two unrelated clips constant through the
    seam; linear keeps the sum at exactly 1 (right for identical material).
    """
    if shape not in FADES:
        raise ValueError(f"crossfade shape {shape!r}: use one of {', '.join(FADES)}")
    t = (np.arange(n, dtype=np.float64) + 0.5) / max(n, 1)
    if shape == "linear":
        g_in = t
        g_out = 1.0 - t
    else:
        g_in = np.sin(0.5 * np.pi * t)
        g_out = np.cos(0.5 * np.pi * t)
    return g_in.astype(np.float32), g_out.astype(np.float32)
