"""The jam's tap and session recorder: every block the speaker is sent, also to one WAV.

Both sinks take the very same block from ``Tap.pull``: the recording is sample-exact with
what the speaker was sent.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np

from riffpad.atomic import discard, publish, temp_beside
from riffpad.audio.clip import SAMPLE_RATE


class RecordError(Exception):
    """The session recording cannot be written (message names the file)."""


class SessionRecorder:
    """``--record-audio FILE``: every sample the jam played, in one float32 WAV.

    Blocks are handed over from the audio thread through a queue; a writer thread streams
    them to a temporary file beside FILE (``riffpad.atomic.temp_beside``), fsynced and
    renamed onto FILE by ``close``: the file is never seen half-written.
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> None:
        import soundfile

        self.path = Path(path)
        self.sample_rate = sample_rate
        try:
            fd, self.tmp = temp_beside(self.path)  # the temp-file scheme of riffpad.atomic
        except OSError as e:
            raise RecordError(f"cannot write {self.path}: {e}") from None
        self._fh = os.fdopen(fd, "w+b")
        try:
            self._file = soundfile.SoundFile(
                self._fh, "w", samplerate=sample_rate, channels=1, format="WAV", subtype="FLOAT"
            )
        except (OSError, RuntimeError) as e:
            self._fh.close()
            discard(self.tmp)
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
        try:
            self._file.close()  # writes the WAV header's final sizes
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except (OSError, RuntimeError) as e:
            self.error = self.error or e
        finally:
            self._fh.close()
        if self.error is not None:
            discard(self.tmp)
            raise RecordError(f"cannot write {self.path}: {self.error}")
        publish(self.tmp, self.path)
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
