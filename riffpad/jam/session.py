"""Jam mode inside the instrument: the toggle, the engine hand-over, the speaker hand-over,
takes for every jam clip, the status line and the "behind" lightbar.

The instrument calls only: ``toggle()`` (the jam event), ``active`` and ``fire(job)`` (R2
while jamming), ``feedback(fb, now)`` (the lightbar says when the engine is behind),
``tick()`` (status view) and ``close()`` (quit or end of a replay). The jam reaches the
instrument only through the ``JamHost`` it is given.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from riffpad.audio.clip import SAMPLE_RATE
from riffpad.audio.output import ClockOutput, SpeakerOutput
from riffpad.audio.recorder import RecordError, SessionRecorder, Tap
from riffpad.jam.driver import JamDriver
from riffpad.jam.host import JamHost
from riffpad.jam.stream import JamStream
from riffpad.tempo.sources import FixedTempo, TapTempo

log = logging.getLogger("riffpad.jam")

BEHIND = (255, 110, 0)  # amber: the engine cannot keep up, the jam is repeating
BEHIND_BLINK_HZ = 2.0
KEEP_STREAMS = 2  # ended jams kept in ``streams``
BEAT = (255, 255, 255)  # white flash on each beat while tempo is being tapped
BEAT_FLASH = 0.25  # of a beat


@dataclass
class JamConfig:
    start: bool = False  # --jam: jam as soon as the pad speaks
    lookahead: float = 1.0  # clips rendered ahead of the one playing (may be fractional)
    crossfade_s: float = 0.05
    shape: str = "equal-power"
    record_audio: str | None = None  # --record-audio FILE
    speaker: bool = True  # False with --no-audio: a clock plays the jam silently
    audio_device: Any = None
    blocksize: int = 1024
    clock: Callable[[], float] = time.monotonic  # the headless output's clock
    stream_factory: Callable | None = None  # tests: a fake sounddevice.OutputStream
    # Tempo (issue 15): None and no bpm: free-running at the clip's natural length.
    bpm: float | None = None  # --bpm
    beats_per_bar: int = 4  # --beats-per-bar
    tempo: Any = None  # a riffpad.tempo source (tap, Link, MIDI clock); wins over bpm
    cut_in: bool = True  # on a bar grid, a fresh clip enters at the next bar line
    fitter: Any = None  # tests: fits clips to bars; default riffpad.jam.fit.SpectrogramFitter
    midi_out: Any = None  # a riffpad.tempo.midiout.MidiOut (--midi-out)


class JamSession:
    def __init__(self, host: JamHost, config: JamConfig) -> None:
        self.host = host
        self.config = config
        self.recorder: SessionRecorder | None = None
        if config.record_audio:
            self.recorder = SessionRecorder(config.record_audio, SAMPLE_RATE)  # RecordError
        self.tap = Tap(self.recorder, blocksize=config.blocksize)
        # -- tempo (issue 15)
        self.tempo = config.tempo
        if self.tempo is None:
            self.tempo = FixedTempo(config.bpm) if config.bpm is not None else TapTempo()
        self.tapper = self.tempo if isinstance(self.tempo, TapTempo) else TapTempo()
        self.cues = None
        if self.recorder is not None:
            from riffpad.jam.cues import CueLog

            self.cues = CueLog(SAMPLE_RATE, config.beats_per_bar)
        self._cued = 0  # slots of the current jam put on the cue sheet
        self._playing: bool | None = None  # the tempo source's transport, last seen
        self.start_phase: float | None = None  # beats into the bar when the jam began
        self._t0: float | None = None  # when sample 0 of this jam played (shared timeline)
        self._take_names: dict[int, str] = {}  # clip id -> the take it was written as
        self.driver: JamDriver | None = None
        self.output = None
        self.jams = 0
        self.clips = 0  # clips played (each written as a take)
        self._written = 0  # slots of the current jam looked at for writing
        self._rec_offset = 0  # where the current jam starts in the session recording
        self.underruns = 0  # over all jams
        self.streams: list[JamStream] = []  # the last KEEP_STREAMS jams, for tests
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._drained = threading.Event()
        self._drained.set()
        self.recorded: str | None = None
        self.cue_sheet: str | None = None

    # -- instrument side -----------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Jamming: fires go to the jam, not to the one-shot worker."""
        return self.driver is not None and not self.driver.stopped

    @property
    def behind(self) -> bool:
        s = self.driver.stream if self.driver is not None else None
        return s is not None and not s.finished and s.behind

    def toggle(self) -> None:
        if self.active:
            self.stop()
        else:
            self.start()

    def start(self) -> None:
        with self._lock:
            if self.active:
                return
            if not self._drained.is_set():
                self.host.note("jam: still playing out the last one")
                return
            self.jams += 1
            self.driver = JamDriver(
                self._render,
                self._next_job,
                sample_rate=SAMPLE_RATE,
                lookahead=self.config.lookahead,
                crossfade_s=self.config.crossfade_s,
                shape=self.config.shape,
                on_stream=self._on_stream,
                on_error=self._on_error,
                state_key=self._state_key,
                **self._tempo_args(),
            )
            self._drained.clear()
            self._thread = threading.Thread(target=self._run, name="riffpad-jam", daemon=True)
            self._thread.start()
        self.host.note(f"jam on: {self.config.lookahead:g} clip(s) of look-ahead")

    def stop(self) -> None:
        """The jam ends with the clip playing (its tail fades out); nothing new starts."""
        d = self.driver
        if d is None or d.stopped:
            return
        d.stop()
        if d.stream is not None:
            d.stream.stop()
        self.host.note("jam off: the clip playing plays out")

    def fire(self, job) -> None:
        if self.driver is not None:
            self.driver.fire(job)

    def tap_tempo(self, t: float) -> None:
        """The tap-tempo button, at pad time ``t``: the tempo of the taps so far is the
        jam's from its next clip (a Link session's for every peer)."""
        bpm = self.tapper.tap(t)
        if bpm is None or self.tapper.taps < 2:
            return
        if self.tempo is not self.tapper and hasattr(self.tempo, "set_bpm"):
            self.tempo.set_bpm(bpm)
        self.host.note(f"tap tempo: {bpm:.1f} BPM ({self.tapper.taps} taps)")

    def feedback(self, fb, now: float):
        """While tempo is tapped the lightbar flashes white on the beat; while the jam
        repeats itself it blinks amber."""
        phase = self.tapper.beat_phase(now) if self.tapper.tapping(now) else None
        if phase is not None and phase % 1.0 < BEAT_FLASH:
            return replace(fb, lightbar=BEAT)
        if self.behind and int(now * BEHIND_BLINK_HZ * 2) % 2 == 0:
            return replace(fb, lightbar=BEHIND)
        return fb

    def tick(self) -> None:
        self._follow_start_stop()
        d = self.driver
        if d is None:
            return
        s = d.stream
        if s is None:
            self.host.show_status("jam: making the first clip" if self.active else "jam: off")
            return
        state = "jamming" if self.active else ("jam: playing out" if not s.finished else "idle")
        ahead = len(s.ready)
        line = f"{state}: clip {s.committed}, {ahead} ready ahead, {s.underruns} repeat(s)"
        if d.refreshed:
            line += f", {d.refreshed} refreshed"
        bpm = d.bpm()
        if bpm is not None:
            line += f", {bpm:.1f} BPM"
        if self.behind:
            line += "  BEHIND: the engine is slower than the music, repeating"
        self.host.show_status(line)

    def _follow_start_stop(self) -> None:
        """A session's start and stop (Link) start and stop the jam, on the change only:
        the jam button still works in between."""
        playing = getattr(self.tempo, "playing", None)
        if playing is None or isinstance(self.tempo, (FixedTempo, TapTempo)):
            return
        now = bool(playing())
        was, self._playing = self._playing, now
        if was is None or was == now:
            return
        if now and not self.active:
            self.start()
        elif not now and self.active:
            self.stop()

    def close(self, timeout: float | None = None) -> None:
        """Stop jamming, let the last clip play out, publish the recording."""
        self.stop()
        self._drained.wait(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
        closer = getattr(self.tempo, "close", None)
        if closer is not None:
            closer()
        if self.config.midi_out is not None:
            self.config.midi_out.close()
        if self.recorder is not None:
            try:
                path = self.recorder.close()
            except RecordError as e:
                self.host.note(str(e), logging.ERROR)
            else:
                self.recorded = str(path)
                secs = self.recorder.frames / SAMPLE_RATE
                self.host.note(f"session recording: {path} ({secs:.2f} s)")
                self._write_cues(path)
            self.recorder = None

    def midi_event(self, name: str) -> None:
        """An instrument event (fire, promote) as a note on --midi-out."""
        if self.config.midi_out is not None:
            self.config.midi_out.event(name)

    # -- the jam's thread ----------------------------------------------------------------
    def _run(self) -> None:
        host, d = self.host, self.driver
        try:
            # One engine: a one-shot take in progress finishes (and plays) first; a fire
            # waiting behind it becomes the jam's first clip instead.
            waiting = host.take_waiting_fire()
            if waiting is not None:
                d.fire(waiting)
            while not host.engine_free(0.05):
                if d.stopped:
                    return
                time.sleep(0.01)
            self._written = self._cued = 0
            self._t0 = None
            self._rec_offset = self.tap.frames_played
            d.run(on_poll=self._write_played)
            s = d.stream
            if s is not None:
                s.stop()  # a clip that was rendering when the jam was stopped started it
                # The output plays the tail out (unless the device died).
                g = s.grid
                deadline = time.monotonic() + (g.period + g.crossfade) / SAMPLE_RATE + 2.0
                while not s.finished and time.monotonic() < deadline:
                    self._write_played()
                    time.sleep(0.01)
            self._write_played()
        finally:
            if self.config.midi_out is not None:
                self.config.midi_out.stop_clock()
            self._release_output()
            if d.stream is not None:
                self.streams.append(d.stream)
                del self.streams[:-KEEP_STREAMS]  # each holds clips: bounded over a long session
                self.underruns += d.stream.underruns
                host.note(
                    f"jam ended: {d.stream.committed} clip(s), {d.stream.underruns} repeat(s)"
                )
            self._drained.set()

    def _tempo_args(self) -> dict:
        fitter = self.config.fitter
        if fitter is None:
            from riffpad.jam.fit import SpectrogramFitter

            fitter = SpectrogramFitter(SAMPLE_RATE)
        return dict(
            tempo=self.tempo.bpm,
            beats_per_bar=self.config.beats_per_bar,
            fitter=fitter,
            cut_in=self.config.cut_in,
            phase=self._phase if hasattr(self.tempo, "beat") else None,
        )

    def _phase(self, n: int) -> float:
        """Bars a shared timeline (Link, MIDI clock) is past its downbeat when sample ``n``
        of the jam plays: its beat now, carried forward at its tempo; 0 before the jam's
        output started."""
        t0, bpm = self._t0, self.tempo.bpm()
        if t0 is None or not bpm or not self.tempo.playing():
            return 0.0
        t = t0 + n / SAMPLE_RATE
        beat = self.tempo.beat() + (t - time.monotonic()) * bpm / 60.0
        return (beat / self.config.beats_per_bar + 0.5) % 1.0 - 0.5

    def _next_job(self):
        return self.host.next_job()

    def _state_key(self):
        """What a clip depends on, cheaply: a queued clip made from another is stale."""
        return self.host.state_key()

    def _render(self, job):
        # On a bar grid the fitter rebuilds the audio from the stretched image: the engine
        # need not make any.
        fitted = self.tempo.bpm() is not None
        take = self.host.render(job, not (fitted and self.config.fitter is None))
        if take.audio is None:
            return None, (job, take)
        audio = np.ravel(np.asarray(take.audio, dtype=np.float32))
        if take.sample_rate != SAMPLE_RATE:
            from riffpad.audio.output import resample

            audio = resample(audio, take.sample_rate, SAMPLE_RATE)
        return audio, (job, take)

    def _on_stream(self, stream: JamStream) -> None:
        # A shared timeline (Link): the first clip starts on its next downbeat.
        wait = getattr(self.tempo, "downbeat_in", None)
        if wait is not None:
            time.sleep(wait())
            self.start_phase = self.tempo.phase()
            self._t0 = time.monotonic()  # sample 0 of the jam plays now (as near as known)
        if self.config.midi_out is not None and isinstance(self.tempo, FixedTempo):
            self.config.midi_out.start_clock(self.tempo.bpm)  # Start on the first downbeat
        self.tap.source = stream
        cfg, host = self.config, self.host
        out = None
        if cfg.speaker:
            from riffpad.audio.output import AudioUnavailable

            host.release_speaker()  # the jam has the speaker now (also exclusive devices)
            out = SpeakerOutput(
                self.tap,
                samplerate=SAMPLE_RATE,
                device=cfg.audio_device,
                blocksize=cfg.blocksize,
                stream_factory=cfg.stream_factory,
            )
            try:
                out.start()
            except AudioUnavailable as e:
                host.note(f"{e}; jamming silently", logging.WARNING)
                out = None
        if out is None:
            out = ClockOutput(
                self.tap, samplerate=SAMPLE_RATE, clock=cfg.clock, blocksize=cfg.blocksize
            )
            out.start()
        self.output = out
        g = stream.grid
        host.note(
            f"jam: clips of {g.clip_len / SAMPLE_RATE:.3f} s, one every"
            f" {g.period / SAMPLE_RATE:.3f} s ({g.crossfade} samples of crossfade)"
        )

    def _release_output(self) -> None:
        out, self.output = self.output, None
        self.tap.source = None
        if out is None:
            return
        out.close()
        if isinstance(out, SpeakerOutput):
            self.host.reclaim_speaker()

    def _write_played(self) -> None:
        """Each clip that got a slot of its own becomes a take (clips refreshed away before
        they played, and repeats, do not): in the jam's thread, never the audio thread."""
        d = self.driver
        s = d.stream if d is not None else None
        if s is None:
            return
        for slot in [sl for sl in list(s.slots) if sl.index >= self._written]:
            self._written = slot.index + 1
            if not slot.repeat:
                self._write_take(slot)
        if self.cues is not None:  # a slot is final once the next began (a cut ends it)
            final = s.committed if s.finished else s.committed - 1
            for slot in [sl for sl in list(s.slots) if self._cued <= sl.index < final]:
                self._cued = slot.index + 1
                name = self._take_names.get(slot.clip.id)
                self.cues.add(slot, self._rec_offset, name)

    def _write_cues(self, recording) -> None:
        if self.cues is None:
            return
        try:
            self.cue_sheet = str(self.cues.write(recording))
        except OSError as e:
            self.host.note(f"cue sheet not written: {e}", logging.ERROR)

    def _write_take(self, slot) -> None:
        clip = slot.clip
        job, take = clip.meta
        grid = self.driver.stream.grid
        self.clips += 1
        jam_meta = {
            "jam": self.jams,
            "slot": slot.index,
            "fired": clip.fired,
            # where this clip's fade-in starts in the --record-audio file
            "recording_sample": self._rec_offset + slot.start,
            "grid": {"clip": grid.clip_len, "period": grid.period, "crossfade": grid.crossfade},
            "bars": clip.bars,  # None: free-running
            "bpm": clip.bpm,
        }
        try:
            name = self.host.save_clip(
                job, take, clip.audio, self.driver.render_time(clip), jam_meta
            )
        finally:
            clip.meta = None  # written (or lost): the stream's history keeps only the audio
        self._take_names[clip.id] = name

    def _on_error(self, job, exc: BaseException) -> None:
        self.host.failed(f"jam: generation failed ({exc}); repeating the last clip")
