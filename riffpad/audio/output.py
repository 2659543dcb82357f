"""Sound output: a PortAudio stream through sounddevice, or a clock when there is no speaker.

Both pull mono float32 blocks from a source (``pull(frames) -> array``) on their own
thread. ``stream_factory`` stands in for ``sounddevice.OutputStream`` in tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from riffpad.audio.clip import SAMPLE_RATE

log = logging.getLogger(__name__)


class AudioUnavailable(Exception):
    """No usable output device (no PortAudio, no device, device busy)."""


def resample(audio: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Linear resampling (only used when a device refuses the take's rate)."""
    audio = np.asarray(audio, dtype=np.float32)
    if src_rate == dst_rate or len(audio) == 0:
        return audio
    n = max(1, round(len(audio) * dst_rate / src_rate))
    x = np.linspace(0, len(audio) - 1, n)
    return np.interp(x, np.arange(len(audio)), audio).astype(np.float32)


def open_output_stream(factory, *, samplerate, channels, callback, device, blocksize):
    """Open and start a float32 PortAudio output stream (``factory`` stands in for
    ``sounddevice.OutputStream`` in tests); AudioUnavailable says why it cannot."""
    if factory is None:
        try:
            import sounddevice
        except OSError as e:  # PortAudio library missing
            raise AudioUnavailable(f"no audio: {e}") from e
        factory = sounddevice.OutputStream
    try:
        stream = factory(
            samplerate=samplerate,
            channels=channels,
            dtype="float32",
            callback=callback,
            device=device,
            blocksize=blocksize,
        )
        stream.start()
    except Exception as e:
        raise AudioUnavailable(f"cannot open audio output {device or 'default'}: {e}") from e
    return stream


def close_output_stream(stream) -> None:
    """Stop and close ``stream`` (None is fine); a vanished device has nothing to release."""
    if stream is None:
        return
    try:
        stream.stop()
        stream.close()
    except Exception as e:
        log.debug("closing audio stream: %s", e)


class SpeakerOutput:
    """A sounddevice output whose callback plays what ``tap.pull(frames)`` gives (mono to
    all channels). ``stream_factory`` as ``open_output_stream`` takes it."""

    def __init__(
        self,
        tap,
        *,
        samplerate: int = SAMPLE_RATE,
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
        stream, self._stream = self._stream, None
        close_output_stream(stream)


class ClockOutput:
    """Headless output (``--no-audio``): pulls as many samples as ``clock`` says have
    played. ``pump()`` by hand (tests, benchmarks with a fake clock) or ``start()`` a
    thread that pumps every ``interval`` seconds of real time."""

    def __init__(
        self,
        tap,
        *,
        samplerate: int = SAMPLE_RATE,
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
