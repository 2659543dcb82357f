"""One generation worker: renders one job at a time, off the pad's loop.

At most one job waits behind the one being rendered. A new job replaces a waiting one
(the newest pad state wins) and ``submit`` hands the replaced job back so the caller can
say so: nothing is dropped silently and nothing piles up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

J = TypeVar("J")

IDLE = "idle"
GENERATING = "generating"
STOPPED = "stopped"


class GenerationWorker(Generic[J]):
    """``render(job)`` runs on the worker thread; then ``on_done(job, result)`` or
    ``on_error(job, exc)`` (also on that thread). ``on_start(job)`` runs just before render.
    """

    def __init__(
        self,
        render: Callable[[J], Any],
        *,
        on_done: Callable[[J, Any], None] | None = None,
        on_error: Callable[[J, BaseException], None] | None = None,
        on_start: Callable[[J], None] | None = None,
        name: str = "riffpad-generate",
    ) -> None:
        self._render = render
        self._on_done = on_done or (lambda job, result: None)
        self._on_error = on_error or (lambda job, exc: log.error("generation failed: %s", exc))
        self._on_start = on_start or (lambda job: None)
        self._cond = threading.Condition()
        self._pending: J | None = None
        self._current: J | None = None
        self._closing = False
        self.state = IDLE
        self.completed = self.failed = self.superseded = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- caller side ------------------------------------------------------------------
    def submit(self, job: J) -> J | None:
        """Queue ``job``; returns the waiting job it replaced, if any."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the generation worker is closed")
            replaced, self._pending = self._pending, job
            if replaced is not None:
                self.superseded += 1
            self._cond.notify_all()
        return replaced

    @property
    def current(self) -> J | None:
        return self._current

    @property
    def pending(self) -> J | None:
        return self._pending

    @property
    def busy(self) -> bool:
        return self._current is not None or self._pending is not None

    def cancel_pending(self) -> J | None:
        with self._cond:
            job, self._pending = self._pending, None
            self._cond.notify_all()
        return job

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is rendering or waiting; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self.busy, timeout)

    def close(self, *, cancel_pending: bool = False, timeout: float | None = None) -> J | None:
        """Finish the current job (and the waiting one unless ``cancel_pending``), then stop.

        Returns the cancelled waiting job, if any. False-y ``join`` on timeout leaves the
        daemon thread to die with the process.
        """
        with self._cond:
            cancelled = None
            if cancel_pending:
                cancelled, self._pending = self._pending, None
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return cancelled

    # -- worker thread ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closing)
                if self._pending is None:  # closing and nothing left
                    self.state = STOPPED
                    self._cond.notify_all()
                    return
                job, self._pending = self._pending, None
                self._current = job
                self.state = GENERATING
            try:
                self._on_start(job)
                result = self._render(job)
            except BaseException as exc:  # the instrument must outlive a failed render
                self.failed += 1
                self._call(self._on_error, job, exc)
            else:
                self.completed += 1
                try:
                    self._on_done(job, result)
                except BaseException as exc:
                    self._call(self._on_error, job, exc)
            with self._cond:
                self._current = None
                self.state = IDLE
                self._cond.notify_all()

    @staticmethod
    def _call(fn, *args) -> None:
        try:
            fn(*args)
        except BaseException:
            log.exception("error handler failed")
