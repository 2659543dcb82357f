"""Tempo sources that need nothing but the pad: a fixed BPM and tap tempo.

A source answers ``bpm()`` (None: free-running) and ``playing()``; ``set_bpm`` is how the
pad asks for a tempo (a Link peer passes it on to the session). Taps are times in
seconds from any clock (the pad's report times in a replay), so tap tempo is a pure
function of them.
"""

from __future__ import annotations

import threading

import numpy as np

from riffpad.tempo.bars import check_bpm

TAP_RESET_S = 2.0  # a gap this long starts a new tapping
TAP_KEEP = 8  # intervals the tempo is fitted to


class FixedTempo:
    """``--bpm N``: the same tempo throughout (the pad may set another)."""

    def __init__(self, bpm: float) -> None:
        self._bpm = check_bpm(bpm)

    def bpm(self) -> float | None:
        return self._bpm

    def playing(self) -> bool:
        return True

    def set_bpm(self, bpm: float) -> None:
        self._bpm = check_bpm(bpm)


def tapped_bpm(times) -> float | None:
    """The tempo of tap ``times`` (s): a least-squares line through (tap number, time),
    so one early or late tap moves it less than it moves the last interval. None for
    fewer than two taps."""
    t = np.asarray(times, dtype=np.float64)
    if len(t) < 2:
        return None
    n = np.arange(len(t), dtype=np.float64)
    slope = np.polyfit(n, t, 1)[0]
    return 60.0 / slope if slope > 0 else None


class TapTempo:
    """Tap tempo: ``tap(t)`` on every press of the tap button. The tempo is fitted to the
    last TAP_KEEP intervals of the current tapping (a gap over TAP_RESET_S starts over)
    and holds once tapping stops; ``base`` (``--bpm``) until the first two taps, else None
    (free-running)."""

    def __init__(self, base: float | None = None) -> None:
        self._bpm = None if base is None else check_bpm(base)
        self._taps: list[float] = []
        self._lock = threading.Lock()

    def tap(self, t: float) -> float | None:
        """Count a tap at ``t`` seconds; returns the tempo now."""
        with self._lock:
            if self._taps and (t - self._taps[-1] > TAP_RESET_S or t <= self._taps[-1]):
                self._taps = []
            self._taps = [*self._taps[-TAP_KEEP:], t]
            bpm = tapped_bpm(self._taps)
            if bpm is not None:
                try:
                    self._bpm = check_bpm(bpm)
                except ValueError:
                    pass  # out of range: a stray double press, not a tempo
            return self._bpm

    @property
    def taps(self) -> int:
        """Taps in the current tapping."""
        return len(self._taps)

    def tapping(self, now: float) -> bool:
        """Tapping is going on (the last tap within TAP_RESET_S of ``now``)."""
        return bool(self._taps) and now - self._taps[-1] <= TAP_RESET_S

    def beat_phase(self, now: float) -> float | None:
        """Beats since the last tap (a fraction of one means within the beat), or None."""
        if not self._taps or self._bpm is None:
            return None
        return (now - self._taps[-1]) * self._bpm / 60.0

    def bpm(self) -> float | None:
        return self._bpm

    def playing(self) -> bool:
        return True

    def set_bpm(self, bpm: float) -> None:
        self._bpm = check_bpm(bpm)
