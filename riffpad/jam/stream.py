"""The jam stream: a block source that plays clips on the grid, pulled by the audio output.

The output (speaker callback or a headless clock) calls ``read(out)``; the same blocks go
to the speaker and to the session recorder, which is what makes the recording
sample-exact. A slot is *committed* (its clip chosen) when the stream reaches the slot's
start: the oldest ready clip if there is one, else the previous clip again (an underrun:
the music repeats rather than going silent, like Riffusion's web app).

Every clip carries its slot length (downbeat to downbeat; free-running clips the grid's
period) and ``crossfade`` samples of tail beyond it, which sound under the next clip's
fade-in. A clip fitted to bars also knows its bar length: a *cut-in* clip
(``cut_in``) enters at the playing clip's next bar line, which then ends there.

Thread-safety: producers (one thread) only ``offer``/``offer_first``/``replace``/``cut_in``
/``stop`` (deque appends and flag writes are atomic in CPython; ``replace``, ``cut_in`` and
the commit share a lock, held for a few list operations); everything else runs on the
reading thread.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from riffpad.audio.fades import fade_gains
from riffpad.jam.grid import Grid

_clip_ids = itertools.count(1)


@dataclass(eq=False)
class Clip:
    audio: np.ndarray  # float32 mono, exactly length + crossfade samples once offered
    meta: Any = None  # whatever the producer wants back (job, take)
    fired: bool = False  # made from an R2 fire rather than the look-ahead
    id: int = field(default_factory=lambda: next(_clip_ids))
    length: int | None = None  # slot samples, downbeat to downbeat (None: the grid's period)
    bars: int | None = None  # bars in the slot (None: free-running)
    bar: float | None = None  # exact samples per bar, when fitted to bars
    bpm: float | None = None  # the tempo it was fitted to
    source: tuple | None = None  # (unfitted audio,): to fit again at another tempo


@dataclass(frozen=True)
class Slot:
    index: int  # k: the k-th slot of the jam
    start: int  # sample of the jam where its fade-in begins (a downbeat on a bar grid)
    clip: Clip
    repeat: bool  # nothing new was ready: the previous clip again
    length: int = 0  # samples to the next slot's start (less than the clip's when cut)
    bars: int | None = None  # bars played in it (None: free-running)
    cut: bool = False  # a cut-in ended it at a bar line


class JamStream:
    def __init__(self, grid: Grid, shape: str = "equal-power", *, history: int = 4096) -> None:
        self.grid = grid
        self.g_in, self.g_out = fade_gains(grid.crossfade, shape)
        self.ready: deque[Clip] = deque()
        self.pos = 0  # samples of the jam emitted so far
        self.slots: deque[Slot] = deque(maxlen=history)  # committed slots, newest last
        self.committed = 0  # slots committed (the next one is index `committed`)
        self.next_start = 0  # where slot `committed` begins
        self.underruns = 0  # slots that repeated the previous clip
        self.reshaped = 0  # clips padded or trimmed to their slot
        self.cuts = 0  # playing clips ended early by a cut-in
        self._cur: Clip | None = None  # clip of slot committed-1
        self._cur_start = 0
        self._prev: Clip | None = None  # clip of slot committed-2 (its tail may still sound)
        self._prev_start = 0
        self._tail_end = 0  # stopping: where the last clip's tail ends
        self._cut: Clip | None = None  # a cut-in waiting for the reader to place it
        self._placed: Clip | None = None  # a placed cut-in waiting for its bar line
        self._stop = False
        self.finished = False
        self._scratch = np.zeros(4096, np.float32)
        self._lock = threading.Lock()
        self.replaced = 0  # queued clips swapped for fresher ones

    # -- producer side (any thread) ----------------------------------------------------
    def slot_len(self, clip: Clip) -> int:
        return self.grid.period if clip.length is None else clip.length

    def fit(self, audio: np.ndarray, length: int | None = None) -> np.ndarray:
        """``audio`` as float32 of exactly the slot plus the crossfade (zero-padded or
        trimmed); ``length`` None: the grid's clip length."""
        a = np.ascontiguousarray(np.ravel(audio), dtype=np.float32)
        n = self.grid.clip_len if length is None else length + self.grid.crossfade
        if len(a) != n:
            self.reshaped += 1
            a = np.concatenate([a[:n], np.zeros(max(0, n - len(a)), np.float32)])
        return a

    def _fit(self, clip: Clip) -> Clip:
        clip.audio = self.fit(clip.audio, clip.length)
        return clip

    def offer(self, clip: Clip) -> None:
        """Queue a clip for the next free slot."""
        self.ready.append(self._fit(clip))

    def offer_first(self, clip: Clip) -> None:
        """Queue a clip ahead of the ready ones: it takes the next slot (a fire)."""
        self.ready.appendleft(self._fit(clip))

    def cut_in(self, clip: Clip) -> None:
        """Play ``clip`` from the playing clip's next bar line (which ends there), or, where
        no bar line is left, from the next slot."""
        self._fit(clip)
        with self._lock:
            old, self._cut = self._cut, clip
            if old is not None:  # never placed: the newer one wins
                self.replaced += 1

    def replace(self, old: Clip, new: Clip) -> bool:
        """Put ``new`` in the place of ``old`` if ``old`` is still waiting; else False."""
        self._fit(new)
        with self._lock:
            for i, clip in enumerate(self.ready):
                if clip is old:
                    self.ready[i] = new
                    self.replaced += 1
                    return True
        return False

    def stop(self) -> None:
        """Commit no more slots: the clip playing plays out its tail, fading to silence."""
        self._stop = True

    # -- state -------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self.committed > 0

    @property
    def behind(self) -> bool:
        """The slot playing now repeats its predecessor: generation is not keeping up."""
        return bool(self.slots) and self.slots[-1].repeat

    @property
    def cut_waiting(self) -> Clip | None:
        """The newest cut-in clip not yet playing (before or after placing), or None."""
        clip = self._cut or self._placed
        if clip is not None and (clip is self._cut or clip in self.ready):
            return clip
        return None

    @property
    def period(self) -> int:
        """Samples of the slot playing (the grid's period before the first)."""
        return self.slots[-1].length if self.slots else self.grid.period

    def ready_start(self, i: int) -> int:
        """Where the ``i``-th ready clip's slot would begin (a cut-in aside)."""
        ready = list(self.ready)[:i]
        return self.next_start + sum(self.slot_len(c) for c in ready)

    def length(self) -> int:
        """Samples of the jam so far, the last slot played out to the end of its tail."""
        return self.next_start + self.grid.crossfade if self.committed else 0

    def next_bar_line(self, n: int) -> int | None:
        """The playing clip's first bar line at or after sample ``n``, before its slot ends."""
        found = self._bar_after(n)
        return None if found is None else found[1]

    def _bar_after(self, n: int) -> tuple[int, int] | None:
        """(bars from the playing slot's start, sample) of its first bar line at or after
        ``n`` that comes before the slot's end; None without one."""
        clip = self._cur
        if clip is None or clip.bar is None or not clip.bars:
            return None
        i = max(1, math.ceil((n - self._cur_start) / clip.bar))
        b = self._cur_start + round(i * clip.bar)
        return (i, b) if b < self.next_start else None

    # -- reading thread ----------------------------------------------------------------
    def read(self, out: np.ndarray) -> int:
        """Fill ``out`` with the next samples of the jam; returns how many (fewer only
        before the first clip, 0 then, or when the jam has ended)."""
        frames = len(out)
        done = 0
        while done < frames and not self.finished:
            playing = self._cur is not None
            if self._cut is not None and playing:
                self._place_cut()
            if (playing or self.committed == 0) and self.pos == self.next_start:
                if not self._commit():
                    break
                continue
            end = self.pos + frames - done
            if self._cur is None:  # stopping: the last clip's tail
                end = min(end, self._tail_end)
            else:
                seam_end = self._cur_start + self.grid.crossfade
                end = min(end, seam_end if self.pos < seam_end else self.next_start)
            n = end - self.pos
            self._mix(out[done : done + n])
            self.pos += n
            done += n
            if self._cur is None and self.pos >= self._tail_end:
                self.finished = True
        return done

    def _place_cut(self) -> None:
        """End the playing slot at its next bar line (not before the seam has passed) and
        queue the cut-in clip first; without a bar line left it simply goes first."""
        with self._lock:
            clip, self._cut = self._cut, None
            if clip is None:
                return
            if self._placed is not None and self.ready and self.ready[0] is self._placed:
                self.ready[0] = self._placed = clip  # a newer cut-in, same bar line
                self.replaced += 1
                return
            found = self._bar_after(max(self.pos, self._cur_start + self.grid.crossfade))
            if found is not None:
                bars, b = found
                slot = self.slots[-1]
                self.slots[-1] = replace(slot, length=b - slot.start, bars=bars, cut=True)
                self.next_start = b
                self.cuts += 1
            self._placed = clip
            self.ready.appendleft(clip)

    def _commit(self) -> bool:
        """Choose the clip of slot ``committed`` (at its start). False: nothing to play."""
        if self._stop:
            if self.committed == 0:
                self.finished = True
                return False
            # Past the last slot's start: _mix plays the tail alone, fading out.
            self._prev, self._prev_start = self._cur, self._cur_start
            self._cur = None
            self._tail_end = self.next_start + self.grid.crossfade
            return True
        with self._lock:
            clip = self.ready.popleft() if self.ready else None
            if clip is not None and clip is self._placed:
                self._placed = None
        if clip is not None:
            repeat = False
        elif self._cur is not None:
            clip, repeat = self._cur, True
            self.underruns += 1
        else:
            return False  # before the first clip: silence that is not part of the jam
        k, start, length = self.committed, self.next_start, self.slot_len(clip)
        self.slots.append(Slot(k, start, clip, repeat, length, clip.bars))
        self._prev, self._prev_start = self._cur, self._cur_start
        self._cur, self._cur_start = clip, start
        self.next_start = start + length
        self.committed += 1
        return True

    def _mix(self, dst: np.ndarray) -> None:
        """Samples [pos, pos+len(dst)) which lie within one piece: a seam or a plain run."""
        n = len(dst)
        x = self.grid.crossfade
        if self._cur is None:  # stopping: the last clip's tail, fading out alone
            o = self.pos - self._prev_start
            i = self.pos - (self._tail_end - x)
            np.multiply(self._prev.audio[o : o + n], self.g_out[i : i + n], out=dst)
            return
        o = self.pos - self._cur_start
        src = self._cur.audio[o : o + n]
        if o < x:  # the seam: this clip fades in over the previous clip's tail
            np.multiply(src, self.g_in[o : o + n], out=dst)
            if self._prev is not None:
                po = self.pos - self._prev_start
                if len(self._scratch) < n:  # grows once; the audio thread then reuses it
                    self._scratch = np.zeros(n, np.float32)
                tail = self._scratch[:n]
                np.multiply(self._prev.audio[po : po + n], self.g_out[o : o + n], out=tail)
                np.add(tail, dst, out=dst)
        else:
            dst[:] = src
