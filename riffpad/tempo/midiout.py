"""``--midi-out PORT``: tell a DAW where the musician played. A note per fire (60) and
promote (61), the notes of the README's MIDI table, and, with a fixed tempo, MIDI clock
out (Start on the jam's first downbeat, 24 pulses per quarter note, Stop at its end).

Pulses are scheduled at absolute times from the start (t0 + k x 60 / (24 bpm)), so
sleeping late never accumulates into drift. Any port with mido's output interface works.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from riffpad.tempo.midiclock import PPQN

NOTES = {"fire": 60, "promote": 61}
NOTE_S = 0.1  # how long a note is held


class MidiOut:
    def __init__(
        self,
        port,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        import mido

        self._mido = mido
        self.port = port
        self.clock = clock
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait  # (seconds) -> True when asked to stop
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one sender at a time
        self.pulses = 0

    @classmethod
    def open(cls, name: str, **kw) -> MidiOut:
        try:
            import mido
        except ImportError:
            raise RuntimeError("--midi-out needs mido: pip install 'riffpad[midi]'") from None
        try:
            return cls(mido.open_output(name), **kw)
        except (OSError, SystemError) as e:
            raise RuntimeError(f"MIDI output {name!r}: {e}") from None

    def _send(self, msg) -> None:
        with self._lock:
            self.port.send(msg)

    def event(self, name: str) -> None:
        """A note for an instrument event (fire, promote); others are ignored."""
        note = NOTES.get(name)
        if note is None:
            return
        self._send(self._mido.Message("note_on", note=note, velocity=100))
        off = self._mido.Message("note_off", note=note)
        threading.Timer(NOTE_S, self._send, (off,)).start()

    def start_clock(self, bpm: Callable[[], float | None]) -> None:
        """Send Start now and clock pulses at ``bpm()`` until ``stop_clock``."""
        self.stop_clock()
        self._stop.clear()
        self._send(self._mido.Message("start"))
        self._thread = threading.Thread(
            target=self._run, args=(bpm,), name="riffpad-midi-out", daemon=True
        )
        self._thread.start()

    def _run(self, bpm) -> None:
        clock = self._mido.Message("clock")
        t = self.clock()
        while True:
            self._send(clock)
            self.pulses += 1
            t += 60.0 / (PPQN * (bpm() or 120.0))
            if self._wait(max(0.0, t - self.clock())):
                return

    def stop_clock(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(2.0)
        self._thread = None
        self._send(self._mido.Message("stop"))

    def close(self) -> None:
        self.stop_clock()
        self.port.close()
