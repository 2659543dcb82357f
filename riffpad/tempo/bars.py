"""Bar maths, in samples: pure functions shared by the jam, the cue sheet and the tests.

A slot of ``bars`` bars lasts ``round(bars * beats_per_bar * 60 / bpm * sample_rate)``
samples (the cue sheet's contract); bar lines inside a slot sit at ``round(i * bar)`` from
its start, so a slot cut at bar ``i`` is exactly an ``i``-bar slot.
"""

from __future__ import annotations

import math

from riffpad.audio.clip import SAMPLE_RATE

MIN_BPM = 20.0
MAX_BPM = 400.0
# Riffusion's og_beat clip (512 px, 5.11 s) holds two bars of 4/4 at 93.93 BPM: a clip
# played at its natural length is taken as this many bars (free-running cue sheets).
NATURAL_BARS = 2


def check_bpm(bpm: float) -> float:
    bpm = float(bpm)
    if not MIN_BPM <= bpm <= MAX_BPM:
        raise ValueError(f"tempo must be within {MIN_BPM:g}..{MAX_BPM:g} BPM, not {bpm:g}")
    return bpm


def bar_samples(bpm: float, beats_per_bar: int = 4, sample_rate: int = SAMPLE_RATE) -> float:
    """Exact (fractional) samples in one bar."""
    return beats_per_bar * 60.0 / bpm * sample_rate


def slot_samples(
    bars: int, bpm: float, beats_per_bar: int = 4, sample_rate: int = SAMPLE_RATE
) -> int:
    """Samples of a slot ``bars`` bars long, rounded once (never accumulated)."""
    return round(bars * bar_samples(bpm, beats_per_bar, sample_rate))


def choose_bars(natural: int, bar: float) -> int:
    """The whole number of bars (at least 1) that a clip of ``natural`` samples needs the
    least stretch to fill, stretch measured as |log(new / old)| (so 2x and 0.5x are as far)."""
    if natural <= 0 or bar <= 0:
        raise ValueError(f"clip ({natural}) and bar ({bar}) must be positive")
    lo = max(1, math.floor(natural / bar))
    return min((lo, lo + 1), key=lambda n: abs(math.log(n * bar / natural)))


def bar_line(start: int, i: int, bar: float) -> int:
    """Sample of the ``i``-th bar line after a slot that starts at ``start``."""
    return start + round(i * bar)


def natural_bpm(period: int, beats_per_bar: int = 4, sample_rate: int = SAMPLE_RATE) -> float:
    """The tempo at which a free-running clip (``period`` samples) holds NATURAL_BARS bars."""
    return NATURAL_BARS * beats_per_bar * 60.0 * sample_rate / period
