"""Where the jam's blocks go: the speaker (sounddevice) or a clock (headless), and the
session recorder. Both sinks take the very same block from ``Tap.pull``: the recording is
sample-exact with what the speaker was sent.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class RecordError(Exception):
    """The session recording cannot be written (message names the file)."""


class SessionRecorder:
    """``--record-audio FILE``: every sample the jam played, in one float32 WAV.

    Blocks are handed over from the audio thread through a queue; a writer thread streams
    them to a dot-prefixed temporary file beside FILE, renamed onto FILE by ``close``: the
    file is never seen half-written.
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int = 44100) -> None:
        import soundfile

        self.path = Path(path)
        self.sample_rate = sample_rate
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        try:
            self._file = soundfile.SoundFile(
                self.tmp, "w", samplerate=sample_rate, channels=1, format="WAV", subtype="FLOAT"
            )
        except (OSError, RuntimeError) as e:
            raise RecordError(f"cannot write {self.path}: {e}") from None
        self.frames = 0
        self.error: Exception | None = None
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="riffpad-record", daemon=True)
        self._thread.start()

    def write(self, block: np.ndarray) -> None:
        """Queue a copy of ``block`` (cheap enough for the audio thread)."""
        if len(block):
            self.frames += len(block)
            self._q.put(np.array(block, dtype=np.float32))

    def _run(self) -> None:
        while True:
            block = self._q.get()
            if block is None:
                return
            if self.error is None:
                try:
                    self._file.write(block)
                except Exception as e:  # disk full: keep the jam going, report at close
                    self.error = e

    def close(self) -> Path:
        """Finish the file and publish it as ``path``; raises RecordError if it failed."""
        self._q.put(None)
        self._thread.join()
        self._file.close()
        if self.error is not None:
            self.tmp.unlink(missing_ok=True)
            raise RecordError(f"cannot write {self.path}: {self.error}")
        os.replace(self.tmp, self.path)
        return self.path


class Tap:
    """Pulls blocks from the current block source, clips them to [-1, 1] like the player
    and hands each one to the recorder before anyone else sees it."""

    def __init__(self, recorder: SessionRecorder | None = None, blocksize: int = 1024) -> None:
        self.source = None  # an object with read(out) -> frames (a JamStream)
        self.recorder = recorder
        self._buf = np.zeros(blocksize, np.float32)
        self.frames_played = 0  # samples from the source (recorded)
        self.frames_silent = 0  # padding when the source had nothing

    def pull(self, frames: int) -> np.ndarray:
        if frames > len(self._buf):
            self._buf = np.zeros(frames, np.float32)
        out = self._buf[:frames]
        src = self.source
        n = src.read(out) if src is not None else 0
        np.minimum(out[:n], 1.0, out=out[:n])
        np.maximum(out[:n], -1.0, out=out[:n])
        out[n:] = 0.0
        if n and self.recorder is not None:
            self.recorder.write(out[:n])
        self.frames_played += n
        self.frames_silent += frames - n
        return out


class SpeakerOutput:
    """A sounddevice output whose callback plays what ``tap.pull`` gives (mono to all
    channels). ``stream_factory`` as the instrument's Player takes it."""

    def __init__(
        self,
        tap: Tap,
        *,
        samplerate: int = 44100,
        channels: int = 2,
        device=None,
        blocksize: int = 1024,
        stream_factory: Callable | None = None,
    ) -> None:
        self.tap = tap
        self.samplerate = samplerate
        self.channels = channels
        self.device = device
        self.blocksize = blocksize
        self._factory = stream_factory
        self._stream = None
        self.xruns = 0

    def start(self) -> None:
        from riffpad.instrument.player import open_output_stream

        self._stream = open_output_stream(
            self._factory,
            samplerate=self.samplerate,
            channels=self.channels,
            callback=self._callback,
            device=self.device,
            blocksize=self.blocksize,
        )

    def _callback(self, outdata, frames, time_info, status) -> None:
        if status:
            self.xruns += 1
        outdata[:] = self.tap.pull(frames)[:, None]

    def close(self) -> None:
        from riffpad.instrument.player import close_output_stream

        stream, self._stream = self._stream, None
        close_output_stream(stream)


class ClockOutput:
    """Headless output (``--no-audio``): pulls as many samples as ``clock`` says have
    played. ``pump()`` by hand (tests, benchmarks with a fake clock) or ``start()`` a
    thread that pumps every ``interval`` seconds of real time."""

    def __init__(
        self,
        tap: Tap,
        *,
        samplerate: int = 44100,
        clock: Callable[[], float] = time.monotonic,
        blocksize: int = 1024,
        interval: float = 0.01,
    ) -> None:
        self.tap = tap
        self.samplerate = samplerate
        self.clock = clock
        self.blocksize = blocksize
        self.interval = interval
        self.emitted = 0
        self._t0: float | None = None
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def pump(self) -> int:
        """Play up to the clock's now; returns samples pulled."""
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
        target = int((now - self._t0) * self.samplerate)
        pulled = 0
        while self.emitted < target:
            n = min(self.blocksize, target - self.emitted)
            self.tap.pull(n)
            self.emitted += n
            pulled += n
        return pulled

    def start(self) -> None:
        self._t0 = self.clock()
        self._thread = threading.Thread(target=self._run, name="riffpad-jam-clock", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closing.wait(self.interval):
            self.pump()

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join()
