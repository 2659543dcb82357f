"""The jam driver: keeps clips rendered ahead of the stream, from the pad state of the moment.

Scheduling is just-in-time against the stream's sample clock: the clip for slot ``s`` is
begun ``lookahead`` clip periods before slot ``s`` starts (``lookahead`` may be
fractional), reading the pad when it begins. So a stick move is heard between
``lookahead`` and ``lookahead + 1`` periods later, and a render has ``lookahead`` periods
to finish before its slot (less time means the stream repeats a clip: an underrun).
When recent renders took longer than that, the driver starts earlier (by the slowest of
the last few renders, plus a margin): a small look-ahead costs latency, never silence.

Refresh: when the engine would otherwise wait, and the pad has changed since a queued clip
read it, that clip is rendered again from the pad of now and swapped in, if the render can
finish before the clip's slot starts and before the next scheduled render is due. A fast
engine so answers a stick move at the next slot (about half a period plus one render on
average) instead of after the look-ahead; a slow one is never delayed by it.
A fire jumps the schedule: it is rendered as soon as the engine is free and takes the
next slot that is not yet playing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from riffpad.jam.grid import Grid
from riffpad.jam.stream import Clip, JamStream

log = logging.getLogger(__name__)

POLL_S = 0.05  # longest wait between checks of the stream's clock
RECENT = 3  # renders the lead time is estimated from
MARGIN = 1.15  # start this much earlier than the slowest recent render needs
# Committed slots a stream keeps (each holds its clip's audio): the last minute of the jam,
# and never fewer than the jam may play between two of its take writes (look-ahead + 1).
# A bound, so an hours-long jam holds a minute of clips, not all of them (~10 MB).
HISTORY_S = 60.0
MIN_HISTORY = 8


class JamDriver:
    """``render(job) -> (audio, meta)`` blocks while the engine works; ``next_job()`` reads
    the pad state now. ``on_stream(stream)`` is called once the first clip fixes the grid
    (start the output there); ``on_clip(clip)`` after each clip is queued; ``on_error(job,
    exc)`` when a render fails (the stream repeats meanwhile). ``state_key()`` returns a cheap,
    comparable summary of the pad state ``next_job`` would read; without it, no refresh.
    """

    def __init__(
        self,
        render: Callable[[Any], tuple[np.ndarray, Any]],
        next_job: Callable[[], Any],
        *,
        sample_rate: int = 44100,
        lookahead: float = 1.0,
        crossfade_s: float = 0.05,
        shape: str = "equal-power",
        on_stream: Callable[[JamStream], None] | None = None,
        on_clip: Callable[[Clip], None] | None = None,
        on_error: Callable[[Any, BaseException], None] | None = None,
        state_key: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        history: int | None = None,
    ) -> None:
        """``history``: committed slots the stream keeps (None: the last HISTORY_S seconds;
        simulations that inspect every slot pass more)."""
        if lookahead <= 0:
            raise ValueError(f"look-ahead must be more than 0 clips, not {lookahead}")
        self.render = render
        self.next_job = next_job
        self.sample_rate = sample_rate
        self.lookahead = lookahead
        self.crossfade_s = crossfade_s
        self.shape = shape
        self.on_stream = on_stream or (lambda s: None)
        self.on_clip = on_clip or (lambda c: None)
        self.on_error = on_error or (lambda job, exc: log.error("jam render failed: %s", exc))
        self.state_key = state_key
        self.clock = clock
        self.history = history  # fixed with the grid, by the first clip
        self.stream: JamStream | None = None
        self._keys: dict[int, Any] = {}  # clip id -> the pad state it was made from
        self._refresh: Clip | None = None  # the queued clip the next render replaces
        self.refreshed = 0
        self._render_s_of: dict[int, float] = {}
        self._fired: Any = None
        self._stopped = False
        self.wake = threading.Event()
        self.rendered = 0
        self.failed = 0
        self.render_s: list[float] = []  # engine time of each clip
        # (render start, slot start in samples of the jam) per clip, for latency reports.
        self.started_at: dict[int, float] = {}

    # -- any thread ----------------------------------------------------------------------
    def fire(self, job: Any) -> None:
        """Render ``job`` next; it takes the next slot not yet playing (latest fire wins)."""
        self._fired = job
        self.wake.set()

    def stop(self) -> None:
        """Render no more (a render in progress finishes; its clip is still queued)."""
        self._stopped = True
        self.wake.set()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def due_in(self) -> float | None:
        """Seconds until the next render should begin (0: now); None once stopped."""
        if self._stopped:
            return None
        s = self.stream
        if self._fired is not None or s is None:
            return 0.0
        target = s.committed + len(s.ready)  # the slot the next clip would fill
        due = s.grid.start(target) - self.lead_samples()
        if due > s.pos:
            self._refresh = self._stale_clip(due)
            if self._refresh is not None:
                return 0.0
        return max(0.0, (due - s.pos) / self.sample_rate)

    def _stale_clip(self, due: float) -> Clip | None:
        """The first queued clip made from an older pad state that a render started now
        could replace in time (before its slot and before ``due``)."""
        if self.state_key is None or not self.render_s:
            return None
        s = self.stream
        need = self._render_need()
        if s.pos + need > due:
            return None
        key = self.state_key()
        for i, clip in enumerate(list(s.ready)):
            if clip.fired or s.pos + need > s.grid.start(s.committed + i):
                continue
            if self._keys.get(clip.id, key) != key:
                return clip
        return None

    def render_time(self, clip: Clip) -> float:
        """Seconds the engine took for ``clip``."""
        return self._render_s_of.get(clip.id, 0.0)

    def lead_samples(self) -> float:
        """How long before its slot a render begins: the look-ahead, or more when recent
        renders needed more."""
        lead = self.lookahead * self.stream.grid.period
        return max(lead, self._render_need()) if self.render_s else lead

    def _render_need(self) -> float:
        """Samples a render needs, with margin, judging by the recent ones."""
        return MARGIN * max(self.render_s[-RECENT:]) * self.sample_rate

    # -- the driver's thread (or a test's loop) ------------------------------------------
    def step(self) -> Clip | None:
        """Render one clip now (the fired job first) and queue it; None if it failed."""
        job, fired = self._fired, True
        self._fired = None
        stale, self._refresh = self._refresh, None
        if job is not None:
            stale = None  # a fire goes first; the refresh is reconsidered afterwards
        else:
            job, fired = self.next_job(), False
        key = self.state_key() if self.state_key is not None else None
        t0 = self.clock()
        try:
            audio, meta = self.render(job)
        except Exception as exc:  # the jam goes on repeating; the caller is told
            self.failed += 1
            self.on_error(job, exc)
            return None
        self.render_s.append(self.clock() - t0)
        clip = Clip(np.asarray(audio, dtype=np.float32), meta=meta, fired=fired)
        self.started_at[clip.id] = t0
        self._render_s_of[clip.id] = self.render_s[-1]
        self._keys[clip.id] = key
        if stale is not None and self.stream.replace(stale, clip):
            self.refreshed += 1
            self._keys.pop(stale.id, None)
        else:
            new = self.stream is None
            if new:
                x = round(self.crossfade_s * self.sample_rate)
                grid = Grid(len(clip.audio), min(x, len(clip.audio) // 2))
                if self.history is None:
                    self.history = max(
                        MIN_HISTORY,
                        2 * int(np.ceil(self.lookahead)) + 2,
                        int(np.ceil(HISTORY_S * self.sample_rate / grid.period)),
                    )
                self.stream = JamStream(grid, self.shape, history=self.history)
            (self.stream.offer_first if fired else self.stream.offer)(clip)
            if new:
                self.on_stream(self.stream)
        self.rendered += 1
        self._forget()
        self.on_clip(clip)
        return clip

    def _forget(self) -> None:
        """Drop what is kept per clip once its clip is neither queued nor in the history."""
        s = self.stream
        if len(self._render_s_of) <= 2 * self.history + len(s.ready):
            return
        live = {c.id for c in s.ready} | {sl.clip.id for sl in list(s.slots)}
        for table in (self._keys, self._render_s_of, self.started_at):
            for clip_id in [i for i in table if i not in live]:
                del table[clip_id]

    def run(self, on_poll: Callable[[], None] | None = None) -> None:
        """Render on schedule until stopped (a thread's target); ``on_poll()`` runs between
        renders, at least every POLL_S."""
        while True:
            if on_poll is not None:
                on_poll()
            wait = self.due_in()
            if wait is None:
                return
            if wait > 0:
                self.wake.wait(min(wait, POLL_S))
                self.wake.clear()
                continue
            if self.step() is None and not self._stopped:
                self.wake.wait(0.5)  # a failing engine: do not spin
                self.wake.clear()
