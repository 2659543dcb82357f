"""The clip grid: where every clip of a jam starts, to the sample, and how seams are mixed.

Decision (documented in the README): a clip has ``L`` samples (hop*(W-1) for a W-pixel
image) and the crossfade ``X`` samples is taken from the clip's *tail*: clip ``k`` occupies
samples ``[k*P, k*P + L)`` of the jam with period ``P = L - X``, so its last ``X`` samples
overlap the first ``X`` samples of clip ``k+1``. Starts are computed as ``k * P`` in integer
arithmetic, never accumulated, so they cannot drift whatever the block sizes or timing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riffpad.audio.fades import fade_gains


@dataclass(frozen=True)
class Grid:
    clip_len: int  # L, samples per clip
    crossfade: int = 0  # X, samples shared by neighbouring clips

    def __post_init__(self) -> None:
        if self.clip_len <= 0:
            raise ValueError(f"clip length must be positive, not {self.clip_len}")
        # At most two clips sound at once: a seam ends before the next one begins.
        if not 0 <= self.crossfade <= self.clip_len // 2:
            raise ValueError(
                f"crossfade ({self.crossfade} samples) must be in 0..{self.clip_len // 2}"
                f" (half the clip)"
            )

    @property
    def period(self) -> int:
        """P: samples between two clip starts."""
        return self.clip_len - self.crossfade

    def start(self, k: int) -> int:
        """First sample of clip ``k`` (where its fade-in begins)."""
        return k * self.period

    def end(self, k: int) -> int:
        """One past the last sample of clip ``k`` (where its fade-out ends)."""
        return k * self.period + self.clip_len

    def slot_at(self, n: int) -> int:
        """The newest clip sounding at sample ``n``."""
        return n // self.period

    def length(self, clips: int) -> int:
        """Samples in a jam of ``clips`` clips, the last one played out to its end."""
        return 0 if clips <= 0 else self.end(clips - 1)


def render_timeline(grid: Grid, clips: list[np.ndarray], shape: str = "equal-power") -> np.ndarray:
    """Reference mix of whole clips on the grid (what the stream must produce, in one go).

    The first clip fades in from silence and the last fades out to silence over the tail.
    Used by tests and benchmarks as the independent oracle for the block-wise stream.
    """
    out = np.zeros(grid.length(len(clips)), dtype=np.float32)
    g_in, g_out = fade_gains(grid.crossfade, shape)
    x = grid.crossfade
    for k, clip in enumerate(clips):
        if len(clip) != grid.clip_len:
            raise ValueError(f"clip {k} has {len(clip)} samples, the grid {grid.clip_len}")
        c = np.array(clip, dtype=np.float32)
        if x:
            c[:x] *= g_in
            c[-x:] *= g_out
        s = grid.start(k)
        out[s : s + grid.clip_len] += c
    return out


def render_slots(
    crossfade: int, slots: list[tuple[int, int, np.ndarray]], shape: str = "equal-power"
) -> np.ndarray:
    """Reference mix of ``(start, length, audio)`` slots of any lengths (a bar grid, cut-ins):
    each clip sounds from ``start`` for ``length + crossfade`` samples, fading in over its
    first ``crossfade`` and out over the last. The oracle for the stream on a bar grid."""
    x = crossfade
    end = max((s + n + x for s, n, _ in slots), default=0)
    out = np.zeros(end, dtype=np.float32)
    g_in, g_out = fade_gains(x, shape)
    for k, (start, length, audio) in enumerate(slots):
        if len(audio) < length + x:
            raise ValueError(f"slot {k}: {len(audio)} samples for {length} + {x}")
        c = np.array(audio[: length + x], dtype=np.float32)
        if x:
            c[:x] *= g_in
            c[length:] *= g_out
        out[start : start + length + x] += c
    return out
