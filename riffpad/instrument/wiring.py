"""Building the instrument from its settings, and the ``riffpad`` command's run.

Everything the player can get wrong is checked before anything is created: prompts,
mapping, jam numbers, the pad, its calibration and the model come first; only then are
the ``--capture-output`` file, the takes folder, the speaker and the session recording
made. A refused start leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from riffpad import DEFAULT_MODEL
from riffpad.engine.api import EngineAPI
from riffpad.instrument.app import HeldPad, Instrument, pad_label
from riffpad.instrument.feedback import FeedbackPolicy
from riffpad.instrument.jobs import Job, render_request
from riffpad.instrument.settings import Settings
from riffpad.instrument.status import Snapshot, StatusView
from riffpad.instrument.takes import TakeWriteError, TakeWriter
from riffpad.jam.session import SAMPLE_RATE as JAM_RATE
from riffpad.jam.session import JamConfig, JamSession
from riffpad.pad.recording import RecordingBackend, RecordingHandle, WriteLog
from riffpad.resources import replay_path


class StartupError(Exception):
    """Something the player must fix before the instrument can start (message says what)."""


NO_PAD_HINT = (
    "No pad? Hear riffpad play a recorded performance: riffpad --replay demo\n"
    "Pad plugged in but not found? riffpad doctor says what is missing."
)

# A fifth of a 512-px clip at most, so any clip of 205 px or more keeps its middle clean.
MAX_CROSSFADE_S = 1.0


def jam_config(settings: Settings, given: JamConfig | None = None) -> JamConfig:
    """The jam's configuration from the settings (``given``: a ready one, from tests);
    raises ValueError for a look-ahead or crossfade out of range."""
    cfg = given or JamConfig(lookahead=settings.lookahead, crossfade_s=settings.crossfade / 1000.0)
    cfg.start = cfg.start or settings.jam
    cfg.record_audio = cfg.record_audio or settings.record_audio
    cfg.audio_device = settings.audio_device
    if given is None:  # tempo (the sources themselves open in open_tempo, after every check)
        cfg.bpm, cfg.beats_per_bar = settings.bpm, settings.beats_per_bar
    if settings.link and settings.midi_clock:
        raise ValueError("--link and --midi-clock: follow one of them")
    if cfg.lookahead <= 0:
        raise ValueError(f"--lookahead must be more than 0 clips, not {cfg.lookahead}")
    if not 0 <= cfg.crossfade_s <= MAX_CROSSFADE_S:
        raise ValueError(
            f"--crossfade must be within 0..{MAX_CROSSFADE_S * 1000:.0f} ms, "
            f"not {cfg.crossfade_s * 1000:g}"
        )
    return cfg


def open_tempo(settings: Settings, cfg: JamConfig) -> None:
    """The jam's shared timeline (Link, MIDI clock) and MIDI out; RuntimeError says why not."""
    if settings.link:
        from riffpad.tempo.link import LinkTempo

        cfg.tempo = LinkTempo(settings.bpm or 120.0, settings.beats_per_bar)
    elif settings.midi_clock:
        from riffpad.tempo.midiclock import MidiClock

        cfg.tempo = MidiClock.open(settings.midi_clock, beats_per_bar=settings.beats_per_bar)
    if settings.midi_out:
        from riffpad.tempo.midiout import MidiOut

        cfg.midi_out = MidiOut.open(settings.midi_out)


def load_engine(settings: Settings, view: StatusView) -> EngineAPI:
    if settings.engine:  # a server renders; one that is down now is tried at each render
        from riffpad.engine.remote import open_remote

        return open_remote(settings.engine)
    view.note("loading the model...")
    from riffpad.engine import Engine, EngineOptions

    engine = Engine.load(
        settings.model or DEFAULT_MODEL,
        revision=settings.revision,
        device=settings.torch_device,
        scheduler=settings.scheduler,
        options=EngineOptions(compile=settings.compile),
    )
    view.note(f"warming up ({engine.info().describe()})...")
    engine.warmup()
    return engine


def seed_image_order(names: list[str], first: str) -> list[str]:
    """D-pad up/down walk the seed images the engine knows; --seed-image (a name or a file)
    comes first, else the engine's default (og_beat, else a built-in loop: as render picks)."""
    names = list(names)
    if first in names:
        names.remove(first)
    return [first, *names] if first else (names or [None])


def build(
    settings: Settings,
    view: StatusView,
    *,
    engine: EngineAPI | None = None,
    make_request: Callable[[Job], Any] = render_request,
    backend: Any = None,
    jam: JamConfig | None = None,
    realtime: bool = True,
) -> Instrument:
    """The instrument for ``settings``; raises StartupError having created nothing.

    The keyword arguments stand in for what tests and benchmarks cannot load: a ready
    ``engine`` (else the model is loaded), its request builder, a hidapi-like ``backend``
    (else hidraw), a ready jam configuration, and ``realtime=False`` for fast replays.
    """
    from riffpad.controls import (
        CalibrationError,
        Controls,
        MappingError,
        controls_help,
        load_calibration,
        load_mapping,
    )
    from riffpad.instrument.prompt_bank import PromptFileError, resolve_prompts
    from riffpad.pad.capture import CaptureError, replay_device
    from riffpad.pad.device import PadError, PadNotFound, PadReader, default_backend, open_pad

    snap = view.snapshot
    try:
        prompts = resolve_prompts(settings.prompt_a, settings.prompt_b, settings.prompts)
        mapping = load_mapping(settings.mapping)
        jam_cfg = jam_config(settings, jam)
    except (PromptFileError, MappingError, OSError, ValueError) as e:
        raise StartupError(str(e)) from None

    writes = WriteLog(settings.capture_output)  # the file is made once the start is sure
    held = None
    try:
        if settings.replay:
            dev = replay_device(replay_path(settings.replay), realtime=realtime)
            handle = RecordingHandle(dev.handle, writes, hold_open=True)
            dev.handle = handle
            held = HeldPad(dev, handle)
            reader = PadReader(dev, reconnect=False)
        else:
            recording = RecordingBackend(backend or default_backend(), writes)
            dev = open_pad(settings.device, recording)
            reader = PadReader(dev, backend=recording, path=settings.device)
    except PadNotFound as e:
        raise StartupError(f"{e}\n{NO_PAD_HINT}") from None
    except (PadError, CaptureError, OSError) as e:
        raise StartupError(str(e)) from None

    def refuse(message: str) -> StartupError:
        dev.close()
        writes.close()
        return StartupError(message)

    try:
        controls = Controls(mapping, load_calibration(dev.serial, settings.calibration))
    except (CalibrationError, OSError) as e:
        raise refuse(str(e)) from None
    if engine is None:
        try:
            engine = load_engine(settings, view)
        except Exception as e:  # any failure to load is the player's to fix, said plainly
            raise refuse(f"cannot load the model: {e}") from None

    try:
        open_tempo(settings, jam_cfg)
    except RuntimeError as e:
        raise refuse(str(e)) from None

    # Everything checked: now create.
    try:
        writes.open()
    except OSError as e:
        raise refuse(f"cannot write {settings.capture_output}: {e.strerror or e}") from None
    writer = TakeWriter(settings.out)
    try:
        stale = writer.prepare()
    except TakeWriteError as e:
        raise refuse(str(e)) from None
    if stale:
        view.note(f"removed {len(stale)} unfinished temporary file(s) from a crashed run")
    snap.out_dir = str(settings.out)
    snap.connected = True
    snap.pad = pad_label(dev.info) + (f" (replay of {settings.replay})" if settings.replay else "")
    info = engine.info()
    snap.device = info.describe()

    player = None
    if settings.no_audio:
        snap.audio = "off (--no-audio)"
    else:
        from riffpad.audio.output import AudioUnavailable
        from riffpad.audio.player import Player

        player = Player(device=settings.audio_device, loop=settings.loop)
        try:
            player.start()
            snap.audio = f"playing on {settings.audio_device or 'the default output'}"
        except AudioUnavailable as e:
            player = None
            snap.audio = "off (no audio output)"
            view.note(f"{e}; playing silently (files are still written)", logging.WARNING)
    jam_cfg.speaker = player is not None

    inst = Instrument(
        reader=reader,
        controls=controls,
        engine=engine,
        make_request=make_request,
        writer=writer,
        player=player,
        prompts=prompts,
        view=view,
        policy=FeedbackPolicy(
            prompts[0].colour, prompts[1].colour, trigger_feel=settings.trigger_feel
        ),
        writes=writes,
        held=held,
        seed_images=seed_image_order(
            engine.seed_images(), settings.seed_image or engine.default_seed_image()
        ),
        help_lines=controls_help(mapping),
    )
    try:
        inst.attach_jam(JamSession(inst.jam_host(JAM_RATE), jam_cfg))
    except Exception as e:  # RecordError: the session recording cannot be written
        if player is not None:
            player.close()
        raise refuse(str(e)) from None
    return inst


def run(settings: Settings) -> int:
    """The `riffpad` command: play until quit. Returns the exit code."""
    view = StatusView(Snapshot(), live=settings.live)
    try:
        inst = build(settings, view)
    except StartupError as e:
        print(f"riffpad: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while the model loads: nothing to finish yet
        print("riffpad: interrupted", file=sys.stderr)
        return 130
    return play(inst, view, settings)


def play(inst: Instrument, view: StatusView, settings: Settings) -> int:
    """Run a built instrument with Ctrl-C handling: once finishes the take, twice quits."""
    presses = 0

    def on_sigint(signum, frame):
        nonlocal presses
        presses += 1
        if presses == 1:
            inst.request_quit("quitting: finishing the take in progress (Ctrl-C again to quit now)")
            return
        # Second Ctrl-C: now. Finished takes are complete files; a take being written
        # exists only as dot-prefixed temporaries, which we remove (or the next start does).
        inst.writer.remove_own_temps()
        os._exit(130)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with view:
            view.note(
                f"ready: R2 fires, right stick X blends A -> B; takes go to {settings.out}"
                + (" (replay)" if settings.replay else "")
            )
            code = inst.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    view.note(f"{len(inst.takes)} take(s) written to {settings.out}; {inst.fires} fire(s)")
    return code
