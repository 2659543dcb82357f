"""The instrument: pad -> controls -> one generation worker -> files, speakers, pad feedback.

Threads: the PadReader's thread reads reports and runs ``on_pad_event`` (controls, the
event table, feedback: cheap and allocation-light); the worker thread renders, writes and
plays a take; the main thread supervises (quit, end of a replay, idle feedback ticks). The
pad device is only ever touched by the reader thread until the reader has stopped.

Built from settings by ``instrument/wiring.py``; the jam (``riffpad.jam``) sees this class
only through the ``JamHost`` that ``jam_host()`` makes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from riffpad.controls import Controls, Event, Params
from riffpad.engine.api import EngineAPI, EngineTake
from riffpad.instrument.feedback import SANE, FeedbackPolicy, blend
from riffpad.instrument.jobs import Job, take_meta
from riffpad.instrument.prompt_bank import Prompt
from riffpad.instrument.status import StatusView
from riffpad.instrument.takes import TakeFiles, TakeWriteError, TakeWriter
from riffpad.instrument.worker import GenerationWorker
from riffpad.jam.host import JamHost
from riffpad.pad.device import ConnectionEvent, PadDevice, PadEvent, PadInfo, PadReader, ReportEvent
from riffpad.pad.output import Feedback
from riffpad.pad.recording import RecordingHandle, WriteLog
from riffpad.pad.state import PadState

if TYPE_CHECKING:
    from riffpad.audio.player import Player
    from riffpad.jam.session import JamSession

TICK_S = 0.05  # main-thread feedback tick while animating (pulse runs at 8 updates/s)
IDLE_TICK_S = 0.25


@dataclass(frozen=True)
class HeldPad:
    """A replay's pad, kept open after its capture ends so the instrument still answers
    on it (done flash, exit restore) as it would on a live pad."""

    device: PadDevice
    handle: RecordingHandle


def pad_label(info: PadInfo) -> str:
    """ "DualSense over usb": the pad's model and transport, for the status view."""
    return f"{info.model} over {info.transport.value}"


class Instrument:
    """Wires one PadReader, Controls, an engine, a TakeWriter, a Player and the status view.

    ``make_request(job)`` builds the engine's request (``jobs.render_request``);
    ``engine.render`` turns it into a take.
    """

    def __init__(
        self,
        *,
        reader: PadReader,
        controls: Controls,
        engine: EngineAPI,
        make_request: Callable[[Job], Any],
        writer: TakeWriter,
        player: Player | None,
        prompts: list[Prompt],
        view: StatusView,
        policy: FeedbackPolicy,
        writes: WriteLog,
        held: HeldPad | None = None,
        seed_images: list[str | None] | None = None,
        help_lines: list[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.controls = controls
        self.engine = engine
        self.engine_info = engine.info()
        self.make_request = make_request
        self.writer = writer
        self.player = player
        self.prompts = prompts
        self.view = view
        self.snap = view.snapshot
        self.policy = policy
        self.writes = writes
        self.held = held
        self.seed_images: list[str | None] = seed_images or [None]
        self.help_lines = help_lines or []
        self.clock = clock
        self.seed_index = 0
        self.prompt_a: Any = prompts[0].text  # text, or the engine's promoted prompt
        self.colour_a = prompts[0].colour
        self.b_index = 1
        self.params: Params | None = None
        self.wanted: Feedback | None = None  # the Feedback last asked of the reader
        self.jam: JamSession | None = None  # attach_jam()
        self.fires = 0
        self.failures = 0
        self.takes: list[TakeFiles] = []  # every take written (fires and jam clips)
        self.last_audio: tuple[Any, int] | None = None  # the last take's (audio, rate)
        # (fire -> render start in s, whether it waited behind another take)
        self.latency_fire_to_start: list[tuple[float, bool]] = []
        self.quit_requested = threading.Event()
        self.wake = threading.Event()
        self._restoring = False
        self._reader_finished = threading.Event()
        self._reader_thread: threading.Thread | None = None
        self._last_report_t = 0.0
        self._battery = None
        # The reader reuses its last static frame while (alpha, steps, policy generation)
        # is what it was.
        self._frame_key: tuple | None = None
        self._frame: Feedback | None = None
        self._handlers: dict[Event, Callable[[float, Params], None]] = {
            Event.FIRE: self.fire,
            Event.PROMOTE: lambda t, p: self.promote(p),
            Event.NEXT_PROMPT: lambda t, p: self._step_prompt_b(+1),
            Event.PREV_PROMPT: lambda t, p: self._step_prompt_b(-1),
            Event.NEXT_SEED_IMAGE: lambda t, p: self._step_seed_image(+1),
            Event.PREV_SEED_IMAGE: lambda t, p: self._step_seed_image(-1),
            Event.REPLAY: lambda t, p: self.replay_last(),
            Event.STOP: lambda t, p: self.stop_sound(),
            Event.JAM: lambda t, p: self.jam.toggle() if self.jam is not None else None,
            Event.TAP_TEMPO: lambda t, p: self.jam.tap_tempo(t) if self.jam is not None else None,
            Event.HELP: lambda t, p: self.show_help(),
            Event.QUIT: lambda t, p: self.request_quit("quit (PS held)"),
        }
        assert set(self._handlers) == set(Event), "every event needs a handler"
        self.worker: GenerationWorker[Job] = GenerationWorker(
            self._render, on_done=self._done, on_error=self._failed, on_start=self._started
        )
        self._refresh_prompts()

    def attach_jam(self, jam: JamSession) -> None:
        self.jam = jam

    # -- prompts and seed images ------------------------------------------------------
    def prompt_label(self, prompt: Any) -> str:
        return self.engine.describe_prompt(prompt)

    @property
    def prompt_b(self) -> Prompt:
        return self.prompts[self.b_index]

    def _refresh_prompts(self) -> None:
        self.policy.set_colours(self.colour_a, self.prompt_b.colour)
        self.snap.prompt_a = self.prompt_label(self.prompt_a)
        self.snap.prompt_b = self.prompt_b.text

    def _step_prompt_b(self, step: int) -> None:
        """Walk B through the bank, skipping the prompt A already is."""
        n = len(self.prompts)
        for _ in range(n):
            self.b_index = (self.b_index + step) % n
            if self.prompt_b.text != self.prompt_a:
                break
        self._refresh_prompts()
        self.view.note(f"prompt B: {self.prompt_b.text}")

    def _step_seed_image(self, step: int) -> None:
        if len(self.seed_images) > 1:
            self.seed_index = (self.seed_index + step) % len(self.seed_images)
            self.view.note(f"seed image: {self.seed_images[self.seed_index]}")

    # -- pad events (reader thread) ---------------------------------------------------
    def on_pad_event(self, ev: PadEvent) -> None:
        if isinstance(ev, ReportEvent):
            self._on_report(ev.t, ev.state)
        elif isinstance(ev, ConnectionEvent):  # rejected reports are counted by the reader
            self._on_connection(ev)

    def _on_report(self, t: float, state: PadState) -> None:
        params, events = self.controls.update(state, t)
        self.params = params
        self._last_report_t = t
        for event in events:
            self._handlers[event](t, params)
            if self.jam is not None:
                self.jam.midi_event(event)  # --midi-out: a note per fire and promote
        busy = self.worker.busy
        alpha, steps, gen = params.alpha, params.steps, self.policy.generation
        last = self._frame_key
        # The policy's answer is a pure function of (alpha, steps, colours) while nothing
        # animates: reuse the last static frame instead of recomputing it every report.
        if busy or last is None or last != (alpha, steps, gen):
            fb = self.policy.frame(t, alpha=alpha, steps=steps, busy=busy)
            static = not busy and not self.policy.animating(t, busy)
            self._frame_key = (alpha, steps, gen) if static else None
            self._frame = fb
        self._set_feedback(self._frame)
        if state.battery is not None and state.battery != self._battery:
            self._battery = state.battery
            pct = state.battery.percent
            self.snap.battery = (
                "?" if pct is None else f"{pct}%" + (" ⚡" if state.battery.charging else "")
            )

    def fire(self, t: float, params: Params) -> None:
        self.fires += 1
        job = self._job_for(params, t, id=self.fires)
        if self.quit_requested.is_set():
            self.view.note(f"fire #{job.id} ignored: quitting")
            return
        if self.jam is not None and self.jam.active:  # the fired state takes the next slot
            self.jam.fire(job)
            return
        job.queued = self.worker.busy
        replaced = self.worker.submit(job)
        if replaced is not None:
            self.view.note(f"fire #{replaced.id} superseded by fire #{job.id} (latest wins)")
        self._sync_worker()

    def promote(self, params: Params) -> None:
        """Cross: the current blend becomes prompt A; B moves on to the next prompt."""
        try:
            new_a = self.engine.promote(self.make_request(self._job_for(params)))
        except Exception as e:  # any engine's refusal: said, and play goes on
            self.view.note(f"promote failed: {e}", logging.ERROR)
            return
        self.colour_a = blend(self.colour_a, self.prompt_b.colour, params.alpha)
        self.prompt_a = new_a
        self.b_index = (self.b_index + 1) % len(self.prompts)
        self._refresh_prompts()
        self.view.note(f"promoted: A is now {self.prompt_label(new_a)}")

    def replay_last(self) -> None:
        """Triangle: play the last take again (a fire's or a jam clip's)."""
        if self.player is not None and self.last_audio is not None:
            self.player.play(*self.last_audio)

    def stop_sound(self) -> None:
        if self.player is not None:
            self.player.stop()
        if self.jam is not None:
            self.jam.stop()

    def show_help(self) -> None:
        self.view.note("controls: " + "; ".join(self.help_lines))

    def _job_for(self, params: Params, t: float | None = None, id: int = 0) -> Job:
        return Job(
            params=params,
            prompt_a=self.prompt_a,
            prompt_b=self.prompt_b.text,
            fired_t=self.clock() if t is None else t,
            fired_wall=time.time(),
            seed_image=self.seed_images[self.seed_index],
            id=id,
        )

    def _on_connection(self, ev: ConnectionEvent) -> None:
        self.snap.connected = bool(ev.connected)
        if ev.connected and ev.info is not None:
            self.snap.pad = pad_label(ev.info)
            self.view.note(f"pad connected: {self.snap.pad}")
        elif not ev.connected:
            self.snap.pad = "pad unplugged: plug it back in to play on" + (
                f" ({ev.reason})" if ev.reason else ""
            )
            self.view.note(self.snap.pad, logging.WARNING)

    # -- worker thread ----------------------------------------------------------------
    def _started(self, job: Job) -> None:
        job.started_t = self.clock()
        self.latency_fire_to_start.append((job.waited_s, job.queued))
        self._sync_worker()

    def _render(self, job: Job, audio: bool = True) -> EngineTake:
        return self.engine.render(self.make_request(job), audio=audio)

    def _done(self, job: Job, take: EngineTake) -> None:
        made_s = self.clock() - job.fired_t
        meta = self.take_meta(job, take, made_s)
        if self.player is not None:
            self.player.play(take.audio, take.sample_rate)
        files = self.save_take(take.audio, take.sample_rate, take.image, meta, made_s)
        if files is not None:
            self.policy.done(self.clock())
            self.view.note(f"take {files.stem} (fire #{job.id}) in {made_s:.2f} s")
        self._sync_worker(after=job)

    def _failed(self, job: Job, exc: BaseException) -> None:
        self.take_failed(f"generation failed (fire #{job.id}): {exc}")
        self._sync_worker(after=job)

    # Fires and jam clips alike: a take is written, or the pad flashes red and rumbles.
    def save_take(self, audio, rate: int, image, meta: dict, made_s: float) -> TakeFiles | None:
        self.last_audio = (audio, rate)
        try:
            files = self.writer.write(audio, rate, image, meta)
        except TakeWriteError as e:
            what = (
                f"jam clip {meta['jam']['slot']}"
                if "jam" in meta
                else f"fire #{meta['fire']['id']}"
            )
            self.take_failed(f"take from {what} not saved: {e}")
            return None
        self.takes.append(files)
        self.snap.takes = len(self.takes)
        self.snap.last_take = files.stem
        self.snap.last_take_s = made_s
        return files

    def take_failed(self, message: str) -> None:
        """Count it, flash the pad red (with a double rumble), say why."""
        self.failures += 1
        self.policy.error(self.clock())
        self.view.note(message, logging.ERROR)

    def take_meta(self, job: Job, take: EngineTake, made_s: float) -> dict:
        return take_meta(
            job, take, made_s, prompt_a=self.prompt_label(job.prompt_a), engine=self.engine_info
        )

    def _sync_worker(self, after: Job | None = None) -> None:
        w = self.worker
        busy = w.current is not None and w.current is not after
        self.snap.worker = "generating" if busy else "idle"
        self.snap.pending = w.pending is not None
        self.snap.superseded = w.superseded
        self._push_feedback(busy=busy or w.pending is not None)

    def _push_feedback(self, busy: bool | None = None) -> None:
        p = self.params
        if p is None:
            return
        if busy is None:
            busy = self.worker.busy
        self._set_feedback(self.policy.frame(self.clock(), alpha=p.alpha, steps=p.steps, busy=busy))

    def _set_feedback(self, fb: Feedback) -> None:
        if self._restoring:
            return
        if self.jam is not None:
            fb = self.jam.feedback(fb, self.clock())
        self.wanted = fb
        self.reader.set_feedback(fb)

    # -- the jam's view of the instrument ------------------------------------------------
    def jam_host(self, sample_rate: int) -> JamHost:
        def engine_free(timeout: float) -> bool:
            return self.worker.wait_idle(timeout) and self.params is not None

        def render(job: Job, audio: bool) -> EngineTake:
            job.started_t = self.clock()
            return self._render(job, audio)

        def save_clip(job: Job, take: EngineTake, audio, render_s: float, jam: dict) -> str | None:
            made_s = job.waited_s + render_s
            meta = self.take_meta(job, take, made_s)
            meta["jam"] = jam
            files = self.save_take(audio, sample_rate, take.image, meta, made_s)
            return files.stem if files is not None else None

        def show_status(line: str) -> None:
            self.snap.worker = line

        def release_speaker() -> None:
            if self.player is not None:
                self.player.close()

        def reclaim_speaker() -> None:
            if self.player is not None:
                try:
                    self.player.start()
                except Exception as e:  # the device went away meanwhile
                    self.view.note(f"audio: {e}", logging.WARNING)

        return JamHost(
            note=self.view.note,
            show_status=show_status,
            take_waiting_fire=self.worker.cancel_pending,
            engine_free=engine_free,
            next_job=lambda: self._job_for(self.params),
            state_key=lambda: (self.params, self.prompt_a, self.b_index, self.seed_index),
            render=render,
            save_clip=save_clip,
            failed=self.take_failed,
            release_speaker=release_speaker,
            reclaim_speaker=reclaim_speaker,
        )

    # -- main thread ------------------------------------------------------------------
    def request_quit(self, why: str | None = None) -> None:
        if why:
            self.view.note(why)
        self.quit_requested.set()
        self.wake.set()

    def tick(self) -> None:
        """Keep animations going between reports (pad unplugged, sparse replays)."""
        snap, p = self.snap, self.params
        snap.reports_per_s = self.reader.reports_per_second
        snap.skipped = sum(self.reader.rejected.values())
        if p is not None:  # the view shows what the pad plays now (copied here, not per report)
            snap.alpha, snap.seed, snap.cfg, snap.steps = p.alpha, p.seed, p.cfg, p.steps
            snap.base_seed, snap.nudge = p.base_seed, p.nudge
        if self.jam is not None:
            self.jam.tick()
        snap.device = self.engine.status_line()  # a remote engine: its round trip too
        if self.params is not None and self.clock() - self._last_report_t > TICK_S:
            self._push_feedback()

    def run(self) -> int:
        """Play until quit (or the replay's end); finish work, restore the pad. Exit code."""
        self._reader_thread = threading.Thread(
            target=self._read_pad, name="pad-reader", daemon=True
        )
        self._reader_thread.start()
        if self.jam is not None and self.jam.config.start:
            self.jam.start()
        try:
            while not self.quit_requested.is_set():
                if self._reader_finished.is_set():  # a replay ended (live readers reconnect)
                    break
                animating = self.params is not None and self.policy.animating(
                    self.clock(), self.worker.busy
                )
                self.wake.wait(TICK_S if animating else IDLE_TICK_S)
                self.wake.clear()
                self.tick()
            self.finish()
        finally:
            self.worker.close(cancel_pending=True, timeout=0.1)
        return 0

    def _read_pad(self) -> None:
        try:
            self.reader.run(self.on_pad_event)
        finally:
            self._reader_finished.set()
            self.wake.set()

    def finish(self) -> None:
        """Quit: drop a waiting fire (said), finish the take in progress, restore the pad.
        End of a replay: finish everything pending first, as if the pad were still there."""
        replay_ended = not self.quit_requested.is_set()
        if self.jam is not None:
            self.jam.close()  # the clip playing plays out; the recording is published
        if not replay_ended:
            cancelled = self.worker.cancel_pending()
            if cancelled is not None:
                self.view.note(f"fire #{cancelled.id} cancelled: quitting")
            if self.worker.current is not None:
                self.view.note("finishing the take in progress...")
        while not self.worker.wait_idle(TICK_S):
            self.tick()
            self._flush_feedback_if_reader_stopped()
        # Let the done flash / error rumble play out, then leave the pad sane.
        while self.params is not None and self.policy.animating(self.clock(), False):
            time.sleep(TICK_S)
            self.tick()
            self._flush_feedback_if_reader_stopped()
        self.restore_pad()

    def _flush_feedback_if_reader_stopped(self) -> None:
        # After a replay ended the reader no longer writes: write through the held device.
        if self._reader_finished.is_set() and self.held is not None and self.wanted is not None:
            self.held.device.send_feedback(self.wanted)

    def restore_pad(self) -> None:
        """Lightbar blue, rumble off, triggers off, LEDs off: how the kernel leaves a pad.

        The reader is stopped first (its close deferred), so the pad is written from this
        thread alone and nothing the reader loop computes can overwrite the final state.
        """
        self._restoring = True
        device = self.held.device if self.held is not None else self.reader.device
        self.writes.hold_closes = True
        self.reader.stop()
        if self._reader_thread is not None:
            self._reader_thread.join(2.0)
        if device is not None:
            try:
                device.send_feedback(SANE)
            except Exception as e:  # unplugged right now: nothing to restore
                self.view.note(f"could not restore the pad: {e}", logging.WARNING)
        held = [self.held.handle] if self.held is not None else []
        for handle in dict.fromkeys([*self.writes.deferred, *held]):
            handle.really_close()
        if self.player is not None:
            self.player.close()
        self.writes.close()
