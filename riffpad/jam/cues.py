"""The cue sheet beside ``--record-audio FILE``: ``FILE.cues.json``, where every clip of
the recording sits on the bar grid, so a DAW can import the recording at that tempo.

    {"bpm": float, "sample_rate": int, "beats_per_bar": int,
     "clips": [{"start": int, "length": int, "bars": int, "take": str | null}, ...]}

``start``/``length``: the clip's slot in samples of the recording, downbeat to downbeat
(the crossfade tail under the next clip not counted), in playing order. ``bpm`` is the
tempo of the first clip fitted to bars; free-running clips count as NATURAL_BARS bars each
at the tempo that makes (tempo.bars.natural_bpm).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from riffpad.atomic import atomic_open
from riffpad.audio.clip import SAMPLE_RATE
from riffpad.tempo.bars import NATURAL_BARS, natural_bpm


def cues_path(recording: str | os.PathLike) -> Path:
    p = Path(recording)
    return p.with_name(p.name + ".cues.json")


class CueLog:
    """Collects finished slots (each once, in playing order) and writes the sheet."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, beats_per_bar: int = 4) -> None:
        self.sample_rate = sample_rate
        self.beats_per_bar = beats_per_bar
        self.clips: list[dict] = []
        self._bar_bpm: float | None = None  # the first clip fitted to bars
        self._free_bpm: float | None = None  # the first free-running clip

    @property
    def bpm(self) -> float | None:
        return self._bar_bpm if self._bar_bpm is not None else self._free_bpm

    def add(self, slot, offset: int = 0, take: str | None = None) -> None:
        """A slot whose length is final (the next one has begun, or the jam has ended);
        ``offset``: where its jam starts in the recording."""
        bars = slot.bars
        if bars is None:
            bars = NATURAL_BARS
            if self._free_bpm is None:
                self._free_bpm = natural_bpm(slot.length, self.beats_per_bar, self.sample_rate)
        elif self._bar_bpm is None:
            self._bar_bpm = float(slot.clip.bpm)
        entry = {"start": offset + slot.start, "length": slot.length, "bars": bars, "take": take}
        self.clips.append(entry)

    def sheet(self) -> dict:
        return {
            "bpm": self.bpm,
            "sample_rate": self.sample_rate,
            "beats_per_bar": self.beats_per_bar,
            "clips": list(self.clips),
        }

    def write(self, recording: str | os.PathLike) -> Path:
        """Write ``recording``.cues.json whole (never half-written)."""
        path = cues_path(recording)
        with atomic_open(path, "w") as fh:
            json.dump(self.sheet(), fh, indent=1)
            fh.write("\n")
        return path
