"""The jam stream: a block source that plays clips on the grid, pulled by the audio output.

The output (speaker callback or a headless clock) calls ``read(out)``; the same blocks go
to the speaker and to the session recorder, which is what makes the recording
sample-exact. A slot is *committed* (its clip chosen) when the stream reaches the slot's
start: the oldest ready clip if there is one, else the previous clip again (an underrun:
the music repeats rather than going silent, like Riffusion's web app).

Thread-safety: producers (one thread) only ``offer``/``offer_first``/``replace``/``stop``
(deque appends and flag writes are atomic in CPython; ``replace`` and the commit share a
lock, held for a few list operations); everything else runs on the reading thread.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from riffpad.audio.fades import fade_gains
from riffpad.jam.grid import Grid

_clip_ids = itertools.count(1)


@dataclass(eq=False)
class Clip:
    audio: np.ndarray  # float32 mono, exactly grid.clip_len samples once offered
    meta: Any = None  # whatever the producer wants back (job, take)
    fired: bool = False  # made from an R2 fire rather than the look-ahead
    id: int = field(default_factory=lambda: next(_clip_ids))


@dataclass(frozen=True)
class Slot:
    index: int  # k: the clip starts at grid.start(k)
    start: int  # sample of the jam where its fade-in begins
    clip: Clip
    repeat: bool  # nothing new was ready: the previous clip again


class JamStream:
    def __init__(self, grid: Grid, shape: str = "equal-power", *, history: int = 4096) -> None:
        self.grid = grid
        self.g_in, self.g_out = fade_gains(grid.crossfade, shape)
        self.ready: deque[Clip] = deque()
        self.pos = 0  # samples of the jam emitted so far
        self.slots: deque[Slot] = deque(maxlen=history)  # committed slots, newest last
        self.committed = 0  # slots committed (the next one is index `committed`)
        self.underruns = 0  # slots that repeated the previous clip
        self.reshaped = 0  # clips padded or trimmed to the grid's clip length
        self._cur: Clip | None = None  # clip of slot committed-1
        self._prev: Clip | None = None  # clip of slot committed-2 (its tail may still sound)
        self._stop = False
        self.finished = False
        self._scratch = np.zeros(4096, np.float32)
        self._lock = threading.Lock()
        self.replaced = 0  # queued clips swapped for fresher ones

    # -- producer side (any thread) ----------------------------------------------------
    def fit(self, audio: np.ndarray) -> np.ndarray:
        """``audio`` as float32 of exactly the grid's clip length (zero-padded or trimmed)."""
        a = np.ascontiguousarray(np.ravel(audio), dtype=np.float32)
        n = self.grid.clip_len
        if len(a) != n:
            self.reshaped += 1
            a = np.concatenate([a[:n], np.zeros(max(0, n - len(a)), np.float32)])
        return a

    def offer(self, clip: Clip) -> None:
        """Queue a clip for the next free slot."""
        clip.audio = self.fit(clip.audio)
        self.ready.append(clip)

    def offer_first(self, clip: Clip) -> None:
        """Queue a clip ahead of the ready ones: it takes the next slot (a fire)."""
        clip.audio = self.fit(clip.audio)
        self.ready.appendleft(clip)

    def replace(self, old: Clip, new: Clip) -> bool:
        """Put ``new`` in the place of ``old`` if ``old`` is still waiting; else False."""
        new.audio = self.fit(new.audio)
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

    # -- reading thread ----------------------------------------------------------------
    def read(self, out: np.ndarray) -> int:
        """Fill ``out`` with the next samples of the jam; returns how many (fewer only
        before the first clip, 0 then, or when the jam has ended)."""
        frames = len(out)
        done = 0
        g = self.grid
        while done < frames and not self.finished:
            playing = self._cur is not None
            if (playing or self.committed == 0) and self.pos == g.start(self.committed):
                if not self._commit():
                    break
                continue
            c = self.committed - 1
            end = self.pos + frames - done
            if self._cur is None:  # stopping: the last clip's tail
                end = min(end, g.end(c))
            else:
                seam_end = g.start(c) + g.crossfade
                end = min(end, seam_end if self.pos < seam_end else g.start(c + 1))
            n = end - self.pos
            self._mix(out[done : done + n])
            self.pos += n
            done += n
            if self._cur is None and self.pos >= g.end(c):
                self.finished = True
        return done

    def _commit(self) -> bool:
        """Choose the clip of slot ``committed`` (at its start). False: nothing to play."""
        if self._stop:
            if self.committed == 0:
                self.finished = True
                return False
            # Past the last slot's start: _mix plays the tail alone, fading out.
            self._prev, self._cur = self._cur, None
            return True
        with self._lock:
            clip = self.ready.popleft() if self.ready else None
        if clip is not None:
            repeat = False
        elif self._cur is not None:
            clip, repeat = self._cur, True
            self.underruns += 1
        else:
            return False  # before the first clip: silence that is not part of the jam
        k = self.committed
        self.slots.append(Slot(k, self.grid.start(k), clip, repeat))
        self._prev, self._cur = self._cur, clip
        self.committed += 1
        return True

    def _mix(self, dst: np.ndarray) -> None:
        """Samples [pos, pos+len(dst)) which lie within one piece: a seam or a plain run."""
        g = self.grid
        n = len(dst)
        x = g.crossfade
        k = self.committed - 1
        if self._cur is None:  # stopping: the last clip's tail, fading out alone
            o = self.pos - g.start(k)
            i = o - g.period
            np.multiply(self._prev.audio[o : o + n], self.g_out[i : i + n], out=dst)
            return
        o = self.pos - g.start(k)
        src = self._cur.audio[o : o + n]
        if o < x:  # the seam: this clip fades in over the previous clip's tail
            np.multiply(src, self.g_in[o : o + n], out=dst)
            if self._prev is not None:
                po = o + g.period
                if len(self._scratch) < n:  # grows once; the audio thread then reuses it
                    self._scratch = np.zeros(n, np.float32)
                tail = self._scratch[:n]
                np.multiply(self._prev.audio[po : po + n], self.g_out[o : o + n], out=tail)
                np.add(tail, dst, out=dst)
        else:
            dst[:] = src
