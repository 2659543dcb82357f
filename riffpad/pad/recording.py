"""``--capture-output``: every output report written to the pad, logged as JSON Lines.

``RecordingBackend`` wraps a hidapi-like backend so each handle it opens is a
``RecordingHandle``: it forwards everything and logs what is written to the ``WriteLog``.
The handle can also defer its close so that the pad can still be restored (written to)
after its reader has stopped.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import IO

log = logging.getLogger("riffpad.pad")


class WriteLog:
    """Output reports as ``{"t": s, "report": hex}`` lines, ``t`` counted from the first.

    The file is created by ``open()`` only, so a start refused later leaves no file behind;
    reports recorded before that are kept and written then.
    """

    def __init__(self, path: str | os.PathLike | None, clock: Callable[[], float] = time.monotonic):
        self.path = path
        self._file: IO[str] | None = None
        self._early: list[str] | None = [] if path else None  # lines before open()
        self._clock = clock
        self._t0: float | None = None
        self._lock = threading.Lock()
        # While the instrument shuts down, the reader's close of a handle is deferred so the
        # pad can still be restored (written to) once the reader thread has stopped.
        self.hold_closes = False
        self.deferred: list[RecordingHandle] = []

    def open(self) -> None:
        """Create the file (OSError if it cannot be) and write what was recorded so far."""
        if self.path is None or self._file is not None:
            return
        f = open(self.path, "w", encoding="utf-8")
        with self._lock:
            for line in self._early or ():
                f.write(line)
            f.flush()
            self._early = None
            self._file = f

    def record(self, data: bytes) -> None:
        now = self._clock()
        with self._lock:
            if self._t0 is None:
                self._t0 = now
            if self._file is None and self._early is None:
                return
            line = json.dumps({"t": round(now - self._t0, 6), "report": data.hex()}) + "\n"
            if self._file is None:
                self._early.append(line)  # type: ignore[union-attr]
            else:
                self._file.write(line)
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._early = None
            if self._file is not None:
                self._file.close()
                self._file = None


class RecordingHandle:
    """A hidapi-like device handle that forwards everything and logs writes.

    With ``hold_open`` (replays) the reader's close is deferred until ``really_close``:
    after the capture ends the instrument still answers on the "pad" (done flash, exit
    restore) so a replay produces the same feedback as a live run.
    """

    def __init__(self, handle, writes: WriteLog, *, hold_open: bool = False):
        self._h = handle
        self._writes = writes
        self.hold_open = hold_open

    def __getattr__(self, name):  # a proxy: everything else is the wrapped handle's
        return getattr(self._h, name)

    # read and finished are used for every report: defined here, not via __getattr__ (whose
    # failed normal lookup first raises an AttributeError internally).
    def read(self, max_length: int, timeout_ms: int = 0):
        return self._h.read(max_length, timeout_ms)

    @property
    def finished(self) -> bool:
        return bool(getattr(self._h, "finished", False))  # only captures ever finish

    def write(self, data) -> int:
        data = bytes(data)
        n = self._h.write(data)
        if n is None or n >= 0:
            self._writes.record(data)
        return n

    def close(self) -> None:
        if self.hold_open or self._writes.hold_closes:
            self._writes.deferred.append(self)
        else:
            self._h.close()

    def really_close(self) -> None:
        try:
            self._h.close()
        except Exception as e:  # already gone
            log.debug("close: %s", e)


class RecordingBackend:
    """Wraps a hidapi-like backend so every opened pad handle is a RecordingHandle."""

    def __init__(self, backend, writes: WriteLog):
        self._b = backend
        self._writes = writes

    def enumerate(self, *args, **kwargs):
        return self._b.enumerate(*args, **kwargs)

    def device(self, *args, **kwargs):
        return RecordingHandle(self._b.device(*args, **kwargs), self._writes)

    def __getattr__(self, name):  # a proxy, like the handle
        return getattr(self._b, name)
