"""``--midi-clock PORT``: follow MIDI clock (24 pulses per quarter note, Start, Continue,
Stop) from an input port (mido + python-rtmidi, the optional extra ``riffpad[midi]``).

The tempo is the slope of a line fitted through the last WINDOW pulse times, so one late
or early pulse (USB and scheduler jitter of a few ms) moves it far less than it moves one
interval. Start counts beats from zero (a downbeat); Continue goes on from where Stop
left off. Any port with mido's input interface works (iteration yields messages).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

PPQN = 24
WINDOW = 48  # pulses the tempo is fitted to (two beats)
MIN_PULSES = 12  # before this many, no tempo (free-running)
GAP_S = 0.5  # pulses this far apart: the clock stopped in between, start the fit over


def pulses_bpm(times) -> float | None:
    """Tempo of clock pulse ``times`` (s): 60 / (24 x the fitted seconds per pulse)."""
    t = np.asarray(times, dtype=np.float64)
    if len(t) < 2:
        return None
    slope = np.polyfit(np.arange(len(t), dtype=np.float64), t, 1)[0]
    return 60.0 / (PPQN * slope) if slope > 0 else None


class MidiClock:
    """A tempo source fed by MIDI clock. ``port``: an open mido input port (read by a
    daemon thread); or None and ``feed(msg, t)`` by hand. ``clock`` stamps arrivals."""

    def __init__(
        self,
        port=None,
        *,
        beats_per_bar: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.beats_per_bar = beats_per_bar
        self.clock = clock
        self._times: deque[float] = deque(maxlen=WINDOW)
        self._bpm: float | None = None
        self._playing = False
        self.pulses = 0  # since Start (Stop holds it, Continue goes on)
        self._last_t: float | None = None  # arrival of the last pulse
        self._lock = threading.Lock()
        self.port = port
        self._thread = None
        if port is not None:
            self._thread = threading.Thread(target=self._read, name="riffpad-midi-clock",
                                            daemon=True)  # fmt: skip
            self._thread.start()

    @classmethod
    def open(cls, name: str, **kw) -> MidiClock:
        """Open the input port ``name`` (mido's backend, rtmidi by default)."""
        try:
            import mido
        except ImportError:
            raise RuntimeError("--midi-clock needs mido: pip install 'riffpad[midi]'") from None
        try:
            port = mido.open_input(name)
        except (OSError, SystemError) as e:
            names = ", ".join(_input_names(mido)) or "none found"
            raise RuntimeError(f"MIDI input {name!r}: {e} (inputs: {names})") from None
        return cls(port, **kw)

    def _read(self) -> None:
        try:
            for msg in self.port:
                self.feed(msg)
        except (OSError, ValueError):  # the port was closed
            pass

    def feed(self, msg, t: float | None = None) -> None:
        """One message from the port, arrived at ``t`` (default: now)."""
        t = self.clock() if t is None else t
        kind = msg.type
        with self._lock:
            if kind == "clock":
                if self._last_t is not None and t - self._last_t > GAP_S:
                    self._times.clear()
                self._last_t = t
                self._times.append(t)
                if len(self._times) >= MIN_PULSES:
                    self._bpm = pulses_bpm(self._times)
                if self._playing:
                    self.pulses += 1
            elif kind == "start":
                self._playing, self.pulses = True, 0
            elif kind == "continue":
                self._playing = True
            elif kind == "stop":
                self._playing = False

    # -- the tempo source --------------------------------------------------------------
    def bpm(self) -> float | None:
        return self._bpm

    def playing(self) -> bool:
        return self._playing

    def beat(self) -> float:
        """Beats since Start, now: the pulses counted, and the time since the last one at
        the tempo (at most one pulse: a clock that stops does not run on)."""
        beat = self.pulses / PPQN
        last, bpm = self._last_t, self._bpm
        if self._playing and last is not None and bpm:
            beat += min(1.0, (self.clock() - last) * bpm * PPQN / 60.0) / PPQN
        return beat

    def phase(self) -> float:
        """Beats into the bar (Start is a downbeat)."""
        return self.beat() % self.beats_per_bar

    def downbeat_in(self) -> float:
        """Seconds until the next downbeat at the tempo now (0 without one)."""
        bpm = self._bpm
        if bpm is None:
            return 0.0
        left = (self.beats_per_bar - self.phase()) % self.beats_per_bar
        return left * 60.0 / bpm

    def close(self) -> None:
        if self.port is not None:
            self.port.close()
        if self._thread is not None:
            self._thread.join(1.0)


def _input_names(mido) -> list[str]:
    try:
        return list(mido.get_input_names())
    except Exception:  # no ALSA sequencer
        return []
