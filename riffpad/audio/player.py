"""Play takes through sounddevice, crossfading when a new take arrives mid-clip.

The PortAudio callback runs on the audio thread: it only mixes from preallocated buffers
(numpy ``out=`` operations, no Python lists or new arrays on the usual path) and never
blocks. New clips come in through a one-slot mailbox that the callback polls with a
non-blocking lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from riffpad.audio.clip import SAMPLE_RATE
from riffpad.audio.fades import fade_gains
from riffpad.audio.output import close_output_stream, open_output_stream, resample

MAX_OUTGOING = 3  # voices still fading out when takes arrive faster than the fade


@dataclass
class _Voice:
    data: np.ndarray  # float32 mono
    pos: int = 0
    fade: int = 0  # position in the fade ramp
    fading: int = 0  # +1 fading in, -1 fading out, 0 steady


class Player:
    """One output stream; ``play(audio)`` starts a take, crossfading from the one playing.

    ``stream_factory`` is ``sounddevice.OutputStream`` by default; it is called with
    ``samplerate``, ``channels``, ``dtype``, ``callback``, ``device`` and ``blocksize``.
    """

    def __init__(
        self,
        *,
        samplerate: int = SAMPLE_RATE,
        channels: int = 2,
        device: int | str | None = None,
        crossfade: float = 0.08,
        loop: bool = False,
        blocksize: int = 1024,
        stream_factory: Callable | None = None,
    ) -> None:
        self.samplerate = samplerate
        self.channels = channels
        self.device = device
        self.loop = loop
        self.blocksize = blocksize
        self._stream_factory = stream_factory
        self._stream = None
        n = max(1, int(crossfade * samplerate))
        # The jam's seam shape: equal-power, g_out[k] == g_in[n - 1 - k].
        self._g_in, self._g_out = fade_gains(n, "equal-power")
        self._fade_len = n
        self._mix = np.zeros(max(blocksize, 4096), dtype=np.float32)
        self._tmp = np.zeros_like(self._mix)
        self._mailbox: np.ndarray | None = None
        self._stop_request = False
        self._lock = threading.Lock()
        self._current: _Voice | None = None
        self._outgoing: list[_Voice] = []  # fading out, at most MAX_OUTGOING
        # Counters (read by the status view).
        self.frames_out = 0
        self.clips_started = 0
        self.crossfades = 0
        self.xruns = 0

    # -- control (any thread) ---------------------------------------------------------
    def start(self) -> None:
        self._stream = open_output_stream(
            self._stream_factory,
            samplerate=self.samplerate,
            channels=self.channels,
            callback=self._callback,
            device=self.device,
            blocksize=self.blocksize,
        )

    def close(self) -> None:
        stream, self._stream = self._stream, None
        close_output_stream(stream)

    def play(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
        clip = resample(np.ravel(audio), sample_rate, self.samplerate)
        clip = np.ascontiguousarray(clip, dtype=np.float32)
        with self._lock:
            self._mailbox = clip
            self._stop_request = False

    def stop(self) -> None:
        """Fade out whatever plays."""
        with self._lock:
            self._mailbox = None
            self._stop_request = True

    @property
    def playing(self) -> bool:
        return self._current is not None or bool(self._outgoing) or self._mailbox is not None

    # -- audio thread -----------------------------------------------------------------
    def _callback(self, outdata, frames, time_info, status) -> None:
        if status:
            self.xruns += 1
        if self._lock.acquire(blocking=False):
            try:
                clip, self._mailbox = self._mailbox, None
                stop, self._stop_request = self._stop_request, False
            finally:
                self._lock.release()
            if clip is not None:
                self._start_clip(clip)
            elif stop and self._current is not None:
                self._start_fade_out(self._current)
                self._current = None
        if frames <= len(self._mix):
            mix, tmp = self._mix[:frames], self._tmp[:frames]
        else:  # a device asking for huge blocks: rare, allocation is acceptable then
            mix, tmp = np.zeros(frames, np.float32), np.zeros(frames, np.float32)
        mix.fill(0.0)
        for i in range(len(self._outgoing) - 1, -1, -1):
            if not self._render(self._outgoing[i], mix, tmp):
                del self._outgoing[i]
        if self._current is not None and not self._render(self._current, mix, tmp):
            self._current = None
        np.minimum(mix, 1.0, out=mix)  # ufuncs: np.clip's wrapper allocates per call
        np.maximum(mix, -1.0, out=mix)
        outdata[:] = mix[:, None]
        self.frames_out += frames

    def _start_clip(self, clip: np.ndarray) -> None:
        self.clips_started += 1
        cur = self._current
        if cur is not None:
            self.crossfades += 1
            self._start_fade_out(cur)
        self._current = _Voice(clip, fading=+1 if cur is not None else 0)

    def _start_fade_out(self, voice: _Voice) -> None:
        # Continue from the voice's present gain so a fade-in cut short does not click.
        n = self._fade_len
        voice.fade = n - 1 - voice.fade if voice.fading == +1 else 0
        voice.fading = -1
        if len(self._outgoing) >= MAX_OUTGOING:
            self._outgoing.pop(0)  # the oldest is the quietest
        self._outgoing.append(voice)

    def _render(self, v: _Voice, mix: np.ndarray, tmp: np.ndarray) -> bool:
        """Add voice ``v`` into ``mix``; False once it has nothing more to play."""
        done = 0
        frames = len(mix)
        n = self._fade_len
        while done < frames:
            left = len(v.data) - v.pos
            if left <= 0:
                if not self.loop or len(v.data) == 0:
                    return False
                v.pos, left = 0, len(v.data)
            k = min(frames - done, left)
            if v.fading:
                k = min(k, n - v.fade)
            src = v.data[v.pos : v.pos + k]
            dst = mix[done : done + k]
            if v.fading:
                gains = self._g_in if v.fading == +1 else self._g_out
                np.multiply(src, gains[v.fade : v.fade + k], out=tmp[:k])
                np.add(dst, tmp[:k], out=dst)
            else:
                np.add(dst, src, out=dst)
            v.pos += k
            done += k
            if v.fading:
                v.fade += k
                if v.fade >= n:
                    if v.fading == -1:
                        return False
                    v.fading, v.fade = 0, 0
        return True
