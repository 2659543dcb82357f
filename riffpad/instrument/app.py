"""The instrument: pad -> controls -> one generation worker -> files, speakers, pad feedback.

Threads: the PadReader's thread reads reports and runs ``on_pad_event`` (controls, fire,
feedback: cheap and allocation-light); the worker thread renders, writes and plays a take;
the main thread supervises (quit, end of a replay, idle feedback ticks). The pad device is
only ever touched by the reader thread until the reader has stopped.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riffpad import DEFAULT_MODEL, __version__
from riffpad.instrument.feedback import SANE, FeedbackPolicy, blend
from riffpad.instrument.prompts import Prompt
from riffpad.instrument.status import StatusView
from riffpad.instrument.takes import TakeWriteError, TakeWriter
from riffpad.instrument.worker import GenerationWorker

log = logging.getLogger("riffpad.instrument")

TICK_S = 0.05  # main-thread feedback tick while animating (pulse runs at 8 updates/s)
IDLE_TICK_S = 0.25
DENOISING_WITH_SEED_IMAGE = 0.75  # riffusion's default strength for seed images


# --- the pad handle wrapper: records output reports, observes writes, defers close -------


class WriteLog:
    """``--capture-output``: every output report as JSON Lines ``{"t": s, "report": hex}``."""

    def __init__(self, path: str | os.PathLike | None, clock=time.monotonic):
        self._file = open(path, "w", encoding="utf-8") if path else None
        self._clock = clock
        self._t0: float | None = None  # times count from the first report sent to the pad
        self._lock = threading.Lock()
        # While the instrument shuts down, the reader's close of a handle is deferred so the
        # pad can still be restored (written to) once the reader thread has stopped.
        self.hold_closes = False
        self.deferred: list[RecordingHandle] = []

    def record(self, data: bytes) -> None:
        now = self._clock()
        with self._lock:
            if self._t0 is None:
                self._t0 = now
            if self._file is not None:
                line = json.dumps({"t": round(now - self._t0, 6), "report": data.hex()})
                self._file.write(line + "\n")
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class RecordingHandle:
    """A hidapi-like device handle that forwards everything and logs writes.

    With ``hold_open`` (replays) the reader's close is deferred until ``really_close``:
    after the capture ends the instrument still answers on the "pad" (done flash, exit
    restore) so a replay produces the same feedback as a live run.
    """

    def __init__(self, handle, writes: WriteLog, *, hold_open: bool = False):
        self._h = handle
        self._writes = writes
        self.hold_open = hold_open

    def __getattr__(self, name):
        return getattr(self._h, name)

    # read and finished are used for every report: defined here, not via __getattr__ (whose
    # failed normal lookup first raises an AttributeError internally).
    def read(self, max_length: int, timeout_ms: int = 0):
        return self._h.read(max_length, timeout_ms)

    @property
    def finished(self) -> bool:
        return bool(getattr(self._h, "finished", False))

    def write(self, data) -> int:
        data = bytes(data)
        n = self._h.write(data)
        if n is None or n >= 0:
            self._writes.record(data)
        return n

    def close(self) -> None:
        if self.hold_open or self._writes.hold_closes:
            self._writes.deferred.append(self)
        else:
            self._h.close()

    def really_close(self) -> None:
        try:
            self._h.close()
        except Exception as e:  # already gone
            log.debug("close: %s", e)


class RecordingBackend:
    """Wraps a hidapi-like backend so every opened pad handle is a RecordingHandle."""

    def __init__(self, backend, writes: WriteLog):
        self._b = backend
        self._writes = writes

    def enumerate(self, *args, **kwargs):
        return self._b.enumerate(*args, **kwargs)

    def device(self, *args, **kwargs):
        return RecordingHandle(self._b.device(*args, **kwargs), self._writes)

    def __getattr__(self, name):
        return getattr(self._b, name)


# --- jobs ---------------------------------------------------------------------------------


@dataclass
class Job:
    params: Any  # controls.Params at fire time
    prompt_a: Any  # str or the engine's promoted prompt (lineage)
    prompt_b: Any
    fired_t: float  # monotonic time the firing report was read
    fired_wall: float
    seed_image: Any = None
    id: int = 0  # the fire's number in this session (1, 2, ...); 0 for promote's request
    started_t: float | None = None
    queued: bool = False  # the worker was busy when it was fired


def prompt_text(p: Any) -> str:
    """Display text of a prompt: a string, or an engine lineage object."""
    if isinstance(p, str):
        return p
    for attr in ("text", "prompt", "label"):
        v = getattr(p, attr, None)
        if isinstance(v, str):
            return v
    return str(p)


def jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    for attr in ("to_dict", "as_dict"):
        fn = getattr(v, attr, None)
        if callable(fn):
            return jsonable(fn())
    return str(v)


# --- the instrument -----------------------------------------------------------------------


class Instrument:
    """Wires one PadReader, Controls, an engine, a TakeWriter, a Player and the status view.

    ``make_request(job) -> request`` builds the engine's RenderRequest; ``engine.render``
    turns it into a Take (``image``, ``audio``, ``sample_rate``, ``params``, ``timings``,
    ``lineage``).
    """

    def __init__(
        self,
        *,
        reader,
        controls,
        engine,
        make_request,
        writer: TakeWriter,
        player=None,
        prompts: list[Prompt],
        view: StatusView,
        policy: FeedbackPolicy | None = None,
        writes: WriteLog | None = None,
        held_handle: RecordingHandle | None = None,
        engine_info: dict | None = None,
        seed_images: list | None = None,
        clock=time.monotonic,
    ) -> None:
        self.reader = reader
        self.controls = controls
        self.engine = engine
        self.make_request = make_request
        self.writer = writer
        self.player = player
        self.prompts = prompts
        self.view = view
        self.snap = view.snapshot
        self.writes = writes or WriteLog(None)
        self.held_handle = held_handle
        self.engine_info = engine_info or {}
        self.seed_images = seed_images or [None]
        self.seed_index = 0
        self.clock = clock
        self.prompt_a: Any = prompts[0].text
        self.colour_a = prompts[0].colour
        self.b_index = 1
        self.policy = policy or FeedbackPolicy(prompts[0].colour, prompts[1].colour)
        self.params = None
        self.wanted = None  # the Feedback last asked of the reader
        self._restoring = False
        self._held_device = None
        self._reader_finished = threading.Event()
        self.quit_requested = threading.Event()
        self.wake = threading.Event()
        self.fires = 0
        self.jam = None  # riffpad.jam.session.JamSession (wired by build)
        self.takes: list = []  # TakeFiles of every take written
        self.failures = 0
        # (fire -> render start in s, whether it waited behind another take)
        self.latency_fire_to_start: list[tuple[float, bool]] = []
        self._last_report_t = 0.0
        self._battery = None
        # The reader reuses its last static frame while (alpha, steps, policy generation)
        # is what it was.
        self._frame_key: tuple | None = None
        self._frame = None
        self.worker = GenerationWorker(
            self._render, on_done=self._done, on_error=self._failed, on_start=self._started
        )
        self._refresh_prompts()

    # -- prompts ----------------------------------------------------------------------
    describe_prompt = None  # engine's label for a promoted prompt (a blend), if it has one

    def prompt_label(self, prompt) -> str:
        if not isinstance(prompt, str) and self.describe_prompt is not None:
            try:
                return self.describe_prompt(prompt)
            except Exception:
                pass
        return prompt_text(prompt)

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

    # -- pad events (reader thread) ---------------------------------------------------
    def on_pad_event(self, ev) -> None:
        state = getattr(ev, "state", None)
        if state is not None:
            self._on_report(ev.t, state)
        elif hasattr(ev, "connected"):  # rejected reports are counted by the reader
            self._on_connection(ev)

    def _on_report(self, t: float, state) -> None:
        params, events = self.controls.update(state, t)
        self.params = params
        self._last_report_t = t
        for event in events:
            self._on_control_event(event, t, params)
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

    def _on_control_event(self, event: str, t: float, params) -> None:
        if self.jam is not None:
            self.jam.midi_event(event)  # --midi-out (issue 15)
        if event == "fire":
            self.fire(t, params)
        elif event == "promote":
            self.promote(params)
        elif event == "next_prompt":
            self._step_prompt_b(+1)
        elif event == "prev_prompt":
            self._step_prompt_b(-1)
        elif event in ("next_seed_image", "prev_seed_image"):
            if len(self.seed_images) > 1:
                step = 1 if event == "next_seed_image" else -1
                self.seed_index = (self.seed_index + step) % len(self.seed_images)
                self.view.note(f"seed image: {self._seed_label(self.seed_images[self.seed_index])}")
        elif event == "replay":
            if self.player is not None and self.takes:
                self.player.play(self._last_audio, self._last_rate)
        elif event == "stop":
            if self.player is not None:
                self.player.stop()
            if self.jam is not None:
                self.jam.stop()
        elif event == "jam":
            if self.jam is not None:
                self.jam.toggle()
        elif event == "tap_tempo":
            if self.jam is not None:
                self.jam.tap_tempo(t)
        elif event == "quit":
            self.view.note("quit (PS held)")
            self.request_quit()

    def fire(self, t: float, params) -> None:
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

    def promote(self, params) -> None:
        """Cross: the current blend becomes prompt A; B moves on to the next prompt."""
        try:
            request = self.make_request(self._job_for(params))
            new_a = self.engine.promote(request)
        except Exception as e:
            self.view.note(f"promote failed: {e}", logging.ERROR)
            return
        self.colour_a = blend(self.colour_a, self.prompt_b.colour, params.alpha)
        self.prompt_a = new_a
        self.b_index = (self.b_index + 1) % len(self.prompts)
        self._refresh_prompts()
        self.view.note(f"promoted: A is now {self.prompt_label(new_a)}")

    def _job_for(self, params, t: float | None = None, id: int = 0) -> Job:
        return Job(
            params=params,
            prompt_a=self.prompt_a,
            prompt_b=self.prompt_b.text,
            fired_t=self.clock() if t is None else t,
            fired_wall=time.time(),
            seed_image=self.seed_images[self.seed_index],
            id=id,
        )

    def _on_connection(self, ev) -> None:
        self.snap.connected = bool(ev.connected)
        if ev.connected:
            self.snap.pad = pad_label(ev.info)
            self.view.note(f"pad connected: {self.snap.pad}")
        else:
            self.snap.pad = "pad unplugged: plug it back in to play on" + (
                f" ({ev.reason})" if ev.reason else ""
            )
            self.view.note(self.snap.pad, logging.WARNING)

    # -- worker thread ----------------------------------------------------------------
    def _started(self, job: Job) -> None:
        job.started_t = self.clock()
        self.latency_fire_to_start.append((job.started_t - job.fired_t, job.queued))
        self._sync_worker()

    def _render(self, job: Job):
        return self.engine.render(self.make_request(job))

    def _done(self, job: Job, take) -> None:
        made_s = self.clock() - job.fired_t
        meta = self.take_meta(job, take, made_s)
        if self.player is not None:
            self.player.play(take.audio, take.sample_rate)
        self._last_audio, self._last_rate = take.audio, take.sample_rate
        try:
            files = self.writer.write(take.audio, take.sample_rate, take.image, meta)
        except TakeWriteError as e:
            self.take_failed(f"take from fire #{job.id} not saved: {e}")
        else:
            self.take_written(files, made_s)
            self.policy.done(self.clock())
            self.view.note(f"take {files.stem} (fire #{job.id}) in {made_s:.2f} s")
        self._sync_worker(after=job)

    def _failed(self, job: Job, exc: BaseException) -> None:
        self.take_failed(f"generation failed (fire #{job.id}): {exc}")
        self._sync_worker(after=job)

    # Shared with the jam session, whose clips are takes too.
    def take_written(self, files, made_s: float) -> None:
        self.takes.append(files)
        self.snap.takes = len(self.takes)
        self.snap.last_take = files.stem
        self.snap.last_take_s = made_s

    def take_failed(self, message: str) -> None:
        """Count it, flash the pad red, say why."""
        self.failures += 1
        self.policy.error(self.clock())
        self.view.note(message, logging.ERROR)

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

    def _set_feedback(self, fb) -> None:
        if self._restoring:
            return
        if self.jam is not None:
            fb = self.jam.feedback(fb, self.clock())
        self.wanted = fb
        self.reader.set_feedback(fb)

    def take_meta(self, job: Job, take, made_s: float) -> dict:
        p = job.params
        engine_params = jsonable(getattr(take, "params", {}) or {})
        meta: dict[str, Any] = {
            "alpha": float(p.alpha),
            "seed": int(p.seed),
            "cfg": float(p.cfg),
            "steps": int(p.steps),
            "base_seed": int(p.base_seed),
            "nudge": int(p.nudge),
            "prompt_a": self.prompt_label(job.prompt_a),
            "prompt_b": prompt_text(job.prompt_b),
            "seed_image": self._seed_label(job.seed_image),
        }
        # The engine's own description wins (the scheduler's class, not "default").
        for key in ("model", "scheduler", "device", "dtype", "denoising"):
            if key in self.engine_info:
                meta[key] = self.engine_info[key]
            elif key in engine_params:
                meta[key] = engine_params[key]
        timings = dict(jsonable(getattr(take, "timings", {}) or {}))
        timings["fire_to_start_s"] = (job.started_t or job.fired_t) - job.fired_t
        timings["fire_to_done_s"] = made_s
        meta["lineage"] = jsonable(getattr(take, "lineage", None))
        meta["timings"] = timings
        meta["engine"] = engine_params
        audio = getattr(take, "audio", None)
        meta["audio"] = {
            "sample_rate": int(take.sample_rate),
            "frames": len(audio) if audio is not None else 0,
            "seconds": round(len(audio) / take.sample_rate, 4) if audio is not None else 0,
        }
        meta["fire"] = {
            "id": job.id,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(job.fired_wall)),
        }
        meta["riffpad"] = __version__
        return meta

    @staticmethod
    def _seed_label(seed) -> str | None:
        if seed is None:
            return None
        return getattr(seed, "label", None) or str(seed)

    # -- main thread ------------------------------------------------------------------
    def request_quit(self) -> None:
        self.quit_requested.set()
        self.wake.set()

    def tick(self) -> None:
        """Keep animations going between reports (pad unplugged, sparse replays)."""
        snap, p = self.snap, self.params
        snap.reports_per_s = getattr(self.reader, "reports_per_second", 0.0)
        snap.skipped = sum(getattr(self.reader, "rejected", {}).values())
        if p is not None:  # the view shows what the pad plays now (copied here, not per report)
            snap.alpha, snap.seed, snap.cfg, snap.steps = p.alpha, p.seed, p.cfg, p.steps
            snap.base_seed, snap.nudge = p.base_seed, p.nudge
        if self.jam is not None:
            self.jam.tick()
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
        if self._reader_finished.is_set() and self.held_device is not None:
            if self.wanted is not None:
                self.held_device.send_feedback(self.wanted)

    @property
    def held_device(self):
        return self._held_device

    def hold_device(self, device) -> None:
        self._held_device = device

    def restore_pad(self) -> None:
        """Lightbar blue, rumble off, triggers off, LEDs off: how the kernel leaves a pad.

        The reader is stopped first (its close deferred), so the pad is written from this
        thread alone and nothing the reader loop computes can overwrite the final state.
        """
        self._restoring = True
        device = self._held_device or getattr(self.reader, "device", None)
        self.writes.hold_closes = True
        self.reader.stop()
        thread = getattr(self, "_reader_thread", None)
        if thread is not None:
            thread.join(2.0)
        if device is not None:
            try:
                device.send_feedback(SANE)
            except Exception as e:  # unplugged right now: nothing to restore
                self.view.note(f"could not restore the pad: {e}", logging.WARNING)
        for handle in dict.fromkeys([*self.writes.deferred, self.held_handle]):
            if handle is not None:
                handle.really_close()
        if self.player is not None:
            self.player.close()
        self.writes.close()


# --- building the instrument from options -------------------------------------------------


@dataclass
class Options:
    device: str | None = None  # hidraw path; None: the first pad found
    model: str | None = None
    torch_device: str | None = None
    scheduler: str | None = None
    out: str = "watched"
    prompt_a: str | None = None
    prompt_b: str | None = None
    prompts: str | None = None
    no_audio: bool = False
    audio_device: str | int | None = None
    loop: bool = False
    replay: str | None = None
    capture_output: str | None = None
    mapping: str | None = None
    calibration: str | None = None
    seed_image: str | None = None
    trigger_feel: bool = False
    live: bool | None = None  # None: rich Live view when stdout is a TTY
    backend: Any = None  # hidapi-like backend (tests: tests/fakehid.FakeBackend)
    engine: Any = None  # a ready engine (tests, benchmarks); else Engine.load(model)
    realtime: bool = True  # replays in recorded timing
    make_request: Any = None  # job -> engine request; default riffpad.engine.RenderRequest
    jam: bool = False  # start jamming at once (the jam button toggles it in any case)
    record_audio: str | None = None  # one WAV of everything the jam played
    lookahead: float = 1.0  # jam: clips rendered ahead of the one playing
    crossfade: float = 50.0  # jam: milliseconds each clip overlaps the next
    bpm: float | None = None  # jam: fixed tempo, clips fitted to whole bars (None: free)
    beats_per_bar: int = 4  # jam: bar length in beats
    link: bool = False  # jam: follow an Ableton Link session (riffpad[link])
    midi_clock: str | None = None  # jam: follow MIDI clock from this input port (riffpad[midi])
    midi_out: str | None = None  # notes for fire/promote, clock out at a fixed tempo
    jam_config: Any = None  # a ready riffpad.jam.session.JamConfig (tests); else from above
    compile: bool = False  # torch.compile the model (EngineOptions.compile)


class StartupError(Exception):
    """Something the player must fix before the instrument can start (message says what)."""


# `riffpad --replay demo`: a short performance shipped with the package (tests/data/make_demo.py).
DEMO_NAME = "demo"
DEMO_CAPTURE = Path(__file__).resolve().parents[1] / "data" / "demo.jsonl"

NO_PAD_HINT = (
    "No pad? Hear riffpad play a recorded performance: riffpad --replay demo\n"
    "Pad plugged in but not found? riffpad doctor says what is missing."
)


def replay_path(name: str | os.PathLike) -> str | os.PathLike:
    """A capture to replay: the name ``demo`` is the shipped demo, unless a file of that
    name exists here (then that file: a path the player typed always wins)."""
    if os.fspath(name) == DEMO_NAME and not os.path.exists(name):
        return DEMO_CAPTURE
    return name


def default_make_request(engine_module):
    def make(job: Job):
        return engine_module.RenderRequest(
            prompt_a=job.prompt_a,
            prompt_b=prompt_text(job.prompt_b),
            alpha=float(job.params.alpha),
            seed_a=int(job.params.seed),
            steps=int(job.params.steps),
            guidance=float(job.params.cfg),
            **({"seed_image": job.seed_image} if job.seed_image is not None else {}),
        )

    return make


def build(opts: Options, view: StatusView) -> Instrument:
    """Open the pad (fail fast), then load the engine; raises StartupError."""
    from riffpad.controls import (
        CalibrationError,
        Controls,
        MappingError,
        load_calibration,
        load_mapping,
    )
    from riffpad.instrument.prompts import PromptFileError, resolve_prompts
    from riffpad.pad.capture import CaptureError, replay_device
    from riffpad.pad.device import PadError, PadNotFound, PadReader, default_backend, open_pad

    snap = view.snapshot
    try:
        prompts = resolve_prompts(opts.prompt_a, opts.prompt_b, opts.prompts)
    except PromptFileError as e:
        raise StartupError(str(e)) from None
    try:
        writes = WriteLog(opts.capture_output)
    except OSError as e:
        raise StartupError(f"cannot write {opts.capture_output}: {e.strerror or e}") from None
    held = None
    try:
        if opts.replay:
            dev = replay_device(replay_path(opts.replay), realtime=opts.realtime)
            held = RecordingHandle(dev.handle, writes, hold_open=True)
            dev.handle = held
            reader = PadReader(dev, reconnect=False)
        else:
            backend = RecordingBackend(opts.backend or default_backend(), writes)
            dev = open_pad(opts.device, backend)
            reader = PadReader(dev, backend=backend, path=opts.device)
    except PadNotFound as e:
        writes.close()
        raise StartupError(f"{e}\n{NO_PAD_HINT}") from None
    except (PadError, CaptureError, OSError) as e:
        writes.close()
        raise StartupError(str(e)) from None
    # The folder only once a pad is there: a failed start leaves nothing behind.
    writer = TakeWriter(opts.out)
    try:
        stale = writer.prepare()
    except TakeWriteError as e:
        dev.close()
        writes.close()
        raise StartupError(str(e)) from None
    if stale:
        view.note(f"removed {len(stale)} unfinished temporary file(s) from a crashed run")
    snap.out_dir = str(opts.out)
    snap.connected = True
    snap.pad = pad_label(dev.info) + (f" (replay of {opts.replay})" if opts.replay else "")
    try:
        controls = Controls(
            load_mapping(opts.mapping), load_calibration(dev.serial, opts.calibration)
        )
    except (MappingError, CalibrationError, OSError) as e:
        dev.close()
        raise StartupError(str(e)) from None

    engine = opts.engine
    if engine is None:
        view.note("loading the model...")
        from riffpad.engine import Engine, EngineOptions

        try:
            engine = Engine.load(
                opts.model or DEFAULT_MODEL,
                device=opts.torch_device,
                scheduler=opts.scheduler,
                options=EngineOptions(compile=opts.compile),
            )
            view.note(f"warming up ({engine_description(engine)})...")
            engine.warmup()
        except Exception as e:
            dev.close()
            raise StartupError(f"cannot load the model: {e}") from None
    if opts.make_request is not None:
        import types

        make_request, engine_module = opts.make_request, types.SimpleNamespace()
        describe_prompt = None
    else:
        import riffpad.engine as engine_module

        make_request = default_make_request(engine_module)
        try:  # readable names for promoted prompts (blends of blends)
            from riffpad.engine.engine import describe as describe_prompt
        except ImportError:
            describe_prompt = None
    info = {
        "model": getattr(engine, "model", None),
        "scheduler": _call_or(getattr(engine, "scheduler_class", None)),
        "device": str(getattr(engine, "device", "")),
        "dtype": str(getattr(engine, "dtype", "")),
    }
    info = {k: v for k, v in info.items() if v not in (None, "")}
    snap.device = engine_description(engine)
    # D-pad up/down walk the seed images the engine knows; --seed-image (a name or a
    # file) comes first, else Riffusion's default.
    names = list(_call_or(getattr(engine, "seed_images", None)) or [])
    first = opts.seed_image or ("og_beat" if "og_beat" in names else None)
    if first in names:
        names.remove(first)
    seed_images = [first, *names] if first else (names or [None])

    player = None
    if opts.no_audio:
        snap.audio = "off (--no-audio)"
    else:
        from riffpad.instrument.player import AudioUnavailable, Player

        player = Player(device=opts.audio_device, loop=opts.loop)
        try:
            player.start()
            snap.audio = f"playing on {opts.audio_device or 'the default output'}"
        except AudioUnavailable as e:
            player = None
            snap.audio = "off (no audio output)"
            view.note(f"{e}; playing silently (files are still written)", logging.WARNING)

    policy = FeedbackPolicy(prompts[0].colour, prompts[1].colour, trigger_feel=opts.trigger_feel)
    inst = Instrument(
        reader=reader,
        controls=controls,
        engine=engine,
        make_request=make_request,
        writer=writer,
        player=player,
        prompts=prompts,
        view=view,
        policy=policy,
        writes=writes,
        held_handle=held,
        engine_info=info,
        seed_images=seed_images,
    )
    if describe_prompt is not None:
        inst.describe_prompt = describe_prompt
    if held is not None:
        inst.hold_device(dev)
    try:
        inst.jam = make_jam(inst, opts)
    except Exception as e:  # RecordError, a bad look-ahead
        dev.close()
        raise StartupError(str(e)) from None
    return inst


def make_jam(inst: Instrument, opts: Options):
    from riffpad.jam.session import JamConfig, JamSession

    cfg = opts.jam_config or JamConfig()
    cfg.start = cfg.start or opts.jam
    cfg.record_audio = cfg.record_audio or opts.record_audio
    if opts.jam_config is None:
        cfg.lookahead = opts.lookahead
        cfg.crossfade_s = opts.crossfade / 1000.0
    cfg.speaker = inst.player is not None
    if opts.jam_config is None:  # tempo (issue 15)
        cfg.bpm = opts.bpm
        cfg.beats_per_bar = opts.beats_per_bar
        if opts.link and opts.midi_clock:
            raise ValueError("--link and --midi-clock: follow one of them")
        if opts.link:
            from riffpad.tempo.link import LinkTempo

            cfg.tempo = LinkTempo(opts.bpm or 120.0, opts.beats_per_bar)
        elif opts.midi_clock:
            from riffpad.tempo.midiclock import MidiClock

            cfg.tempo = MidiClock.open(opts.midi_clock, beats_per_bar=opts.beats_per_bar)
        if opts.midi_out:
            from riffpad.tempo.midiout import MidiOut

            cfg.midi_out = MidiOut.open(opts.midi_out)
    cfg.audio_device = opts.audio_device
    if cfg.lookahead <= 0:
        raise ValueError(f"--lookahead must be more than 0 clips, not {cfg.lookahead}")
    # A fifth of a 512-px clip at most, so any clip of 205 px or more keeps its middle clean.
    if not 0 <= cfg.crossfade_s <= MAX_CROSSFADE_S:
        raise ValueError(
            f"--crossfade must be within 0..{MAX_CROSSFADE_S * 1000:.0f} ms, "
            f"not {cfg.crossfade_s * 1000:g}"
        )
    return JamSession(inst, cfg)


MAX_CROSSFADE_S = 1.0


def _call_or(fn, default=None):
    if callable(fn):
        try:
            return fn()
        except Exception:
            return default
    return fn if fn is not None else default


def pad_label(info) -> str:
    """ "DualSense over usb": the pad's model and transport, for the status view."""
    transport = getattr(info, "transport", None)
    where = transport.value if transport is not None else "?"
    return f"{getattr(info, 'model', 'pad')} over {where}"


def engine_description(engine) -> str:
    parts = [str(getattr(engine, "model", "") or "")]
    sched = _call_or(getattr(engine, "scheduler_class", None))
    if sched:
        parts.append(str(sched))
    dev = getattr(engine, "device", None)
    if dev is not None:
        parts.append(f"on {dev}")
    return " ".join(p for p in parts if p) or type(engine).__name__


def run(opts: Options) -> int:
    """The `riffpad` command: play until quit. Returns the exit code."""
    from riffpad.instrument.status import Snapshot

    view = StatusView(Snapshot(), live=opts.live)
    try:
        inst = build(opts, view)
    except StartupError as e:
        print(f"riffpad: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while the model loads: nothing to finish yet
        print("riffpad: interrupted", file=sys.stderr)
        return 130

    presses = 0

    def on_sigint(signum, frame):
        nonlocal presses
        presses += 1
        if presses == 1:
            view.note("quitting: finishing the take in progress (Ctrl-C again to quit now)")
            inst.request_quit()
            return
        # Second Ctrl-C: now. Finished takes are complete files; a take being written
        # exists only as dot-prefixed temporaries, which we remove (or the next start does).
        inst.writer.remove_own_temps()
        os._exit(130)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with view:
            view.note(
                f"ready: R2 fires, right stick X blends A -> B; takes go to {opts.out}"
                + (" (replay)" if opts.replay else "")
            )
            code = inst.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    view.note(f"{len(inst.takes)} take(s) written to {opts.out}; {inst.fires} fire(s)")
    return code
