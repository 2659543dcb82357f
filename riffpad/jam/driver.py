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

Bars (a ``tempo`` source that names a BPM): each clip is fitted to the whole number of
bars that needs the least stretch (``fitter.fit``) at the tempo of the moment it is made.
Queued clips made at another tempo are fitted again from their unfitted audio before they
play, so a tempo change takes effect at the next clip boundary, never inside a clip.
Respond within a bar (``cut_in``): one render's time before each of the playing clip's
bar lines, if the pad has changed since the clip that plays (or is about to) was made, a
clip is rendered and enters at that bar line, if it can be ready by then and before the
next scheduled render is due (so no more repeats than without). Reading the pad just in
time, a move is heard half a bar plus one render later on average, a bar plus one at worst.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from riffpad.audio.clip import SAMPLE_RATE
from riffpad.jam.grid import Grid
from riffpad.jam.stream import Clip, JamStream
from riffpad.tempo.bars import bar_samples, choose_bars

log = logging.getLogger(__name__)

POLL_S = 0.05  # longest wait between checks of the stream's clock
RECENT = 3  # renders the lead time is estimated from
MARGIN = 1.15  # start this much earlier than the slowest recent render needs
# Committed slots a stream keeps (each holds its clip's audio): the last minute of the jam,
# and never fewer than the jam may play between two of its take writes (look-ahead + 1).
# A bound, so an hours-long jam holds a minute of clips, not all of them (~10 MB).
HISTORY_S = 60.0
MIN_HISTORY = 8
CUT_SLACK = 0.05  # s: a cut-in render begins at least this long before it must be ready
# A queued clip is fitted again only for a tempo this much (relative) off its own: a
# followed clock's tempo wobbles by hundredths of a percent from pulse to pulse.
TEMPO_TOLERANCE = 0.001


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
        sample_rate: int = SAMPLE_RATE,
        lookahead: float = 1.0,
        crossfade_s: float = 0.05,
        shape: str = "equal-power",
        on_stream: Callable[[JamStream], None] | None = None,
        on_clip: Callable[[Clip], None] | None = None,
        on_error: Callable[[Any, BaseException], None] | None = None,
        state_key: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        history: int | None = None,
        tempo: Callable[[], float | None] | None = None,
        beats_per_bar: int = 4,
        fitter: Any = None,
        cut_in: bool = True,
        phase: Callable[[int], float] | None = None,
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
        # tempo() -> BPM now, None: free-running. fitter.natural(audio, meta) -> samples the
        # clip spans unstretched; fitter.fit(audio, meta, length, tail) -> length + tail
        # samples of it (None: trimmed or padded by the stream).
        self.tempo = tempo
        self.beats_per_bar = beats_per_bar
        self.fitter = fitter
        self.cut_in = cut_in
        # phase(n): how far past its downbeat a shared timeline (Link, MIDI clock) is when
        # sample n of the jam plays, in bars, within [-0.5, 0.5). A clip's length is
        # corrected by it so that the clip ends on the timeline's downbeat.
        self.phase = phase
        self._retempo: Clip | None = None  # the queued clip to fit again at the new tempo
        self._cutting = False  # the next render cuts in at a bar line
        self.refitted = 0
        self.cut_ins = 0
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
        self._retempo = self._off_tempo()
        if self._retempo is not None:
            return 0.0
        due = s.ready_start(len(s.ready)) - self.lead_samples()  # the next free slot's
        if due > s.pos:
            cut_at = self._cut_due(due)
            if cut_at is not None and cut_at <= s.pos:
                self._cutting = True
                return 0.0
            deadline = due if cut_at is None else min(due, cut_at)
            self._refresh = self._stale_clip(deadline)
            if self._refresh is not None:
                return 0.0
            due = deadline
        return max(0.0, (due - s.pos) / self.sample_rate)

    def bpm(self) -> float | None:
        return self.tempo() if self.tempo is not None else None

    def _off_tempo(self) -> Clip | None:
        """The first queued clip fitted to another tempo than now's (one that can be)."""
        bpm = self.bpm()
        for clip in list(self.stream.ready):
            if clip.source is None or clip.bpm == bpm:
                continue
            if clip.bpm is None or bpm is None or abs(clip.bpm / bpm - 1) > TEMPO_TOLERANCE:
                return clip
        return None

    def _cut_due(self, due: float) -> float | None:
        """When a cut-in render should begin: just in time for the playing clip's next
        bar line it can reach (reading the pad as late as it can), if it would be ready
        before ``due``. None: no cut-in to plan. At that time, it is only rendered if the
        pad has changed since the clip at the front was made."""
        if not self.cut_in or self.state_key is None or not self.render_s:
            return None
        s = self.stream
        r = max(self.render_s[-RECENT:]) * self.sample_rate
        b = s.next_bar_line(s.pos + r)  # the first bar line a render begun now can make
        if b is None or b > due:
            return None
        # Begin with a margin, but at least CUT_SLACK: the stream's clock moves in blocks.
        front = s.cut_waiting or (s.slots[-1].clip if s.slots else None)
        if front is None or front.fired or self._keys.get(front.id) == self.state_key():
            return None  # nothing new to hear (asked again at the next poll)
        return b - max(MARGIN * r, r + CUT_SLACK * self.sample_rate)

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
            if clip.fired or s.pos + need > s.ready_start(i):
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
        lead = self.lookahead * self.stream.period
        return max(lead, self._render_need()) if self.render_s else lead

    def _render_need(self) -> float:
        """Samples a render needs, with margin, judging by the recent ones."""
        return MARGIN * max(self.render_s[-RECENT:]) * self.sample_rate

    # -- the driver's thread (or a test's loop) ------------------------------------------
    def _make_clip(self, audio, meta, fired: bool, start: int | None = None) -> Clip:
        """The clip of freshly rendered ``audio``, fitted to bars at the tempo of now;
        ``start``: its slot's first sample, when known (to follow a shared timeline)."""
        bpm = self.bpm()
        fitter = self.fitter
        # What a later tempo fits again; audio None: the fitter works from meta alone.
        source = None if fitter is None else (audio,)
        if bpm is None:
            if audio is None:  # the engine left the audio to the fitter: at natural length
                audio = fitter.fit(None, meta, fitter.natural(None, meta), 0)
            audio = np.asarray(audio, dtype=np.float32)
            return Clip(audio, meta=meta, fired=fired, source=source)
        natural = fitter.natural(audio, meta) if fitter is not None else len(audio)
        bar = bar_samples(bpm, self.beats_per_bar, self.sample_rate)
        bars = choose_bars(natural, bar)
        length = round(bars * bar)
        if self.phase is not None and start is not None:
            for _ in range(2):  # the end moves with the correction: settle it once more
                late = self.phase(start + length)  # bars the timeline is past its downbeat
                length -= round(max(-0.5, min(0.5, late)) * bar)
        s = self.stream
        tail = s.grid.crossfade if s is not None else min(self._crossfade(), length)
        fitted = audio if fitter is None else fitter.fit(audio, meta, length, tail)
        return Clip(
            np.asarray(fitted, dtype=np.float32),
            meta=meta,
            fired=fired,
            length=length,
            bars=bars,
            bar=bar,
            bpm=bpm,
            source=source,
        )

    def _slot_start(self, unknown: bool, stale: Clip | None) -> int | None:
        """Where the clip being made will start (None for a fire or a cut-in)."""
        s = self.stream
        if unknown:
            return None
        if s is None:
            return 0  # the first clip
        ready = list(s.ready)
        if stale is not None:
            return s.ready_start(ready.index(stale)) if stale in ready else None
        return s.ready_start(len(ready))

    def _crossfade(self) -> int:
        return round(self.crossfade_s * self.sample_rate)

    def _refit(self, old: Clip) -> Clip | None:
        """Fit a queued clip again at the tempo of now, in its place."""
        start = None if old.fired else self._slot_start(False, old)
        clip = self._make_clip(old.source[0], old.meta, old.fired, start)
        if not self.stream.replace(old, clip):
            return clip  # it started playing meanwhile: the old one plays out
        self.stream.replaced -= 1  # a refit, not a fresher clip
        self.refitted += 1
        for table in (self._keys, self._render_s_of, self.started_at):
            if old.id in table:
                table[clip.id] = table[old.id]
        return clip

    def step(self) -> Clip | None:
        """Render one clip now (the fired job first) and queue it; None if it failed."""
        retempo, self._retempo = self._retempo, None
        if retempo is not None and self._fired is None:
            return self._refit(retempo)
        job, fired = self._fired, True
        self._fired = None
        stale, self._refresh = self._refresh, None
        cutting, self._cutting = self._cutting, False
        if job is not None:
            stale = None  # a fire goes first; the refresh is reconsidered afterwards
            cutting = False
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
        clip = self._make_clip(audio, meta, fired, self._slot_start(fired or cutting, stale))
        self.render_s.append(self.clock() - t0)
        self.started_at[clip.id] = t0
        self._render_s_of[clip.id] = self.render_s[-1]
        self._keys[clip.id] = key
        if cutting and self.stream is not None:
            self.stream.cut_in(clip)
            self.cut_ins += 1
        elif stale is not None and self.stream.replace(stale, clip):
            self.refreshed += 1
            self._keys.pop(stale.id, None)
        else:
            new = self.stream is None
            if new:
                if clip.length is None:
                    n = len(clip.audio)
                    x = min(self._crossfade(), n // 2)
                else:  # the tail _make_clip fitted it with
                    x = min(self._crossfade(), clip.length)
                    n = clip.length + x
                grid = Grid(n, x)
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
