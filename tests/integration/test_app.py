"""The instrument end to end: captures replayed through the real reader, controls, worker,
take writer and feedback; the engine is a fake (fast, scriptable) or the tiny model."""

import json
import threading
import time
from pathlib import Path

import pytest
from support.engines import FakeEngine, make_request
from support.instrument import replay
from support.pad import (
    FIRE,
    IDLE,
    MOVED,
    MOVED2,
    MOVED2_FIRE,
    MOVED_FIRE,
    decode,
    pad_script,
    report_for,
    write_capture,
)

from riffpad.controls import Controls, load_calibration, load_mapping
from riffpad.instrument.feedback import SANE, WHITE
from riffpad.instrument.settings import Settings
from riffpad.instrument.status import Snapshot, StatusView, render
from riffpad.instrument.wiring import build, play
from riffpad.pad.reports import crc32_ok, parse_input
from riffpad.pad.state import Transport

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    # Calibration and config come from the user's config dir: keep tests off the real one.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


# Fire 1; while it renders fire 2 then fire 3 (2 is superseded: latest wins).
THREE_FIRES = [
    (0.2, IDLE),
    (0.06, FIRE),
    (0.06, IDLE),
    (0.06, MOVED),
    (0.06, MOVED_FIRE),
    (0.06, MOVED),
    (0.06, MOVED2),
    (0.06, MOVED2_FIRE),
    (0.06, MOVED2),
    (0.3, MOVED2),
]


def expected_fire_params(script, transport=Transport.BLUETOOTH):
    """Params at each fire, computed independently from the same reports and mapping."""
    controls = Controls(load_mapping(None), load_calibration(None))
    fires = []
    for t, fields in script:
        state = parse_input(report_for(transport, **fields), transport)
        params, events = controls.update(state, t)
        if "fire" in events:
            fires.append(params)
    return fires


def test_status_view_shows_the_params_the_pad_plays(tmp_path):
    script = pad_script([(0.1, IDLE), (0.3, MOVED)])
    code, inst, _, _, _ = replay(tmp_path, script, FakeEngine(delay=0.0))
    assert code == 0
    inst.tick()  # the main thread's tick copies the latest params into the view
    p, snap = inst.params, inst.snap
    assert (snap.alpha, snap.seed, snap.cfg, snap.steps) == (p.alpha, p.seed, p.cfg, p.steps)
    assert (snap.base_seed, snap.nudge) == (p.base_seed, p.nudge)
    assert snap.alpha == 1.0 and snap.cfg == 15.0  # MOVED: right stick right, left stick up
    from rich.console import Console

    console = Console(width=100, record=True)
    console.print(render(snap))
    assert "15.0 / " in console.export_text()


def test_replay_fires_become_takes_with_the_pad_state_at_fire_time(tmp_path):
    script = pad_script(THREE_FIRES)
    expected = expected_fire_params(script)
    assert len(expected) == 3
    engine = FakeEngine(delay=0.4)
    code, inst, metas, feedback, out = replay(tmp_path, script, engine)
    assert code == 0
    # Fire 2 arrived while 1 rendered and was replaced by fire 3: two takes, said so.
    assert inst.fires == 3 and len(metas) == 2
    assert inst.worker.superseded == 1
    assert any("superseded" in m for m in inst.snap.messages)
    for meta, params in zip(metas, [expected[0], expected[2]], strict=True):
        assert meta["alpha"] == params.alpha
        assert meta["seed"] == params.base_seed + params.nudge
        assert meta["cfg"] == params.cfg and meta["steps"] == params.steps
        assert isinstance(meta["alpha"], float) and isinstance(meta["seed"], int)
        assert meta["model"] == "fake-model" and meta["scheduler"] == "FakeScheduler"
        assert meta["lineage"]["seed_a"] == meta["seed"]
        assert meta["timings"]["fire_to_start_s"] >= 0
    assert metas[0]["alpha"] == 0.0 and metas[1]["alpha"] != 0.0
    # Every published file is complete, nothing else is left in the folder.
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 6 and all(not n.startswith(".") for n in names)

    # Feedback: valid Bluetooth output reports, busy pulse then the done flash, sane at exit.
    assert feedback and all(crc32_ok(bytes.fromhex(x["report"]), 0xA2) for x in feedback)
    assert all(bytes.fromhex(x["report"])[0] == 0x31 for x in feedback)
    ts = [x["t"] for x in feedback]
    assert ts == sorted(ts) and ts[0] == 0.0  # seconds from the first report sent
    frames = [decode(x["report"]) for x in feedback]
    flash = [i for i, (bar, rumble, _) in enumerate(frames) if bar == WHITE]
    assert flash, "no done flash"
    assert any(rumble != (0, 0) for _, rumble, _ in frames[flash[0] :])
    pulse = {bar for bar, _, _ in frames[: flash[0]]}
    assert len(pulse) >= 3  # idle colour plus dimmed pulse levels before the first flash
    assert frames[-1][0] == SANE.lightbar and frames[-1][1] == (0, 0) and frames[-1][2] == 0
    # Written only on change: far fewer writes than reports.
    assert len(feedback) < len(script) / 4


def test_generation_failure_is_red_double_rumble_and_play_goes_on(tmp_path):
    script = pad_script([(0.1, IDLE), (0.06, FIRE), (0.5, IDLE), (0.06, FIRE), (0.3, IDLE)])
    engine = FakeEngine(delay=0.05, fail_on={1})
    code, inst, metas, feedback, _ = replay(tmp_path, script, engine)
    assert code == 0
    assert len(engine.requests) == 2 and len(metas) == 1
    assert any("generation failed" in m and "out of memory" in m for m in inst.snap.messages)
    frames = [decode(x["report"]) for x in feedback]
    red = [i for i, (bar, _, _) in enumerate(frames) if bar == (255, 0, 0)]
    assert red
    rumbles = [f[1] != (0, 0) for f in frames[red[0] : red[0] + 20]]
    starts = sum(1 for a, b in zip([False, *rumbles], rumbles, strict=False) if b and not a)
    assert starts >= 2
    assert any(bar == WHITE for bar, _, _ in frames[red[-1] :])  # the second fire worked


def test_folder_gone_mid_session_is_an_error_not_a_crash(tmp_path):
    script = pad_script([(0.1, IDLE), (0.06, FIRE), (0.4, IDLE), (0.06, FIRE), (0.3, IDLE)])
    engine = FakeEngine(delay=0.05)
    out = tmp_path / "watched"
    calls = []

    def render(request, *, audio=True, _orig=engine.render):
        calls.append(request)
        if len(calls) == 1:
            for p in out.iterdir():
                p.unlink()
            out.rmdir()
            (tmp_path / "watched").write_text("now a file")  # not a folder any more
        return _orig(request, audio=audio)

    engine.render = render
    code, inst, metas, _, _ = replay(tmp_path, script, engine)
    assert code == 0 and metas == []
    assert inst.failures == 2
    assert any("not saved" in m for m in inst.snap.messages)
    assert (tmp_path / "watched").read_text() == "now a file"


def test_cli_replay_exits_zero_and_writes_takes(tmp_path, monkeypatch):
    # As the command runs it (Ctrl-C handling, the status view), with a fake engine.
    script = pad_script([(0.1, IDLE), (0.06, FIRE), (0.3, IDLE)])
    cap = write_capture(tmp_path / "in.jsonl", script)
    engine = FakeEngine(delay=0.02)
    opts = Settings(replay=str(cap), out=str(tmp_path / "w"), no_audio=True, live=False)
    view = StatusView(Snapshot(), live=False, stream=open(tmp_path / "log.txt", "w"))
    assert play(build(opts, view, engine=engine, make_request=make_request), view, opts) == 0
    assert len(list((tmp_path / "w").glob("*.wav"))) == 1


def _wait(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def live(tmp_path, backend, engine):
    opts = Settings(
        out=str(tmp_path / "watched"),
        no_audio=True,
        live=False,
        capture_output=str(tmp_path / "feedback.jsonl"),
    )
    view = StatusView(Snapshot(), live=False, stream=open(tmp_path / "log.txt", "w"))
    inst = build(opts, view, engine=engine, make_request=make_request, backend=backend)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", inst.run()))
    thread.start()
    return inst, thread, result


def usb(**fields):
    return report_for(Transport.USB, **fields)


def test_unplug_mid_take_saves_it_and_play_resumes_on_replug(tmp_path):
    from support.fakehid import FakeBackend, FakePad

    mac = "a0:ab:51:00:00:09"
    pad = FakePad(Transport.USB, mac=mac, reports=[usb(**IDLE)] * 5 + [usb(**FIRE)] * 3)
    backend = FakeBackend(pad)
    engine = FakeEngine(delay=0.0, gate=threading.Event())
    inst, thread, result = live(tmp_path, backend, engine)
    try:
        _wait(lambda: len(engine.requests) == 1)  # rendering, held by the gate
        backend.unplug(pad)
        _wait(lambda: not inst.snap.connected)
        assert "unplugged" in inst.snap.pad
        engine.gate.set()
        _wait(lambda: len(inst.takes) == 1)  # finished and saved while the pad is away
        again = FakePad(
            Transport.BLUETOOTH, mac=mac, reports=[report_for(Transport.BLUETOOTH, **IDLE)] * 5
        )
        backend.add(again)
        _wait(lambda: inst.snap.connected)
        again.push(*[report_for(Transport.BLUETOOTH, **f) for f in [FIRE] * 3 + [IDLE] * 3])
        _wait(lambda: len(inst.takes) == 2)
    finally:
        inst.request_quit()
        thread.join(10)
    assert result["code"] == 0
    # The pad that is there at exit is left sane: blue, no rumble, LEDs off.
    bar, rumble, leds = decode(again.writes[-1].hex())
    assert bar == SANE.lightbar and rumble == (0, 0) and leds == 0
    assert len(list((tmp_path / "watched").glob("*.json"))) == 2


def test_quit_finishes_the_take_in_progress_and_cancels_the_waiting_one(tmp_path):
    from support.fakehid import FakeBackend, FakePad

    pad = FakePad(Transport.USB, reports=[usb(**IDLE)] * 3 + [usb(**FIRE)] * 3)
    backend = FakeBackend(pad)
    engine = FakeEngine(delay=0.0, gate=threading.Event())
    inst, thread, result = live(tmp_path, backend, engine)
    _wait(lambda: len(engine.requests) == 1)
    pad.push(*[usb(**IDLE)] * 3 + [usb(**MOVED_FIRE)] * 3)
    _wait(lambda: inst.worker.pending is not None)
    inst.request_quit()
    time.sleep(0.2)
    assert thread.is_alive()  # waiting for the take in progress
    engine.gate.set()
    thread.join(10)
    assert result["code"] == 0
    assert len(engine.requests) == 1 and len(inst.takes) == 1
    assert any("cancelled" in m for m in inst.snap.messages)
    assert decode(pad.writes[-1].hex())[0] == SANE.lightbar
    names = [p.name for p in (tmp_path / "watched").iterdir()]
    assert len(names) == 3 and not any(n.startswith(".") for n in names)


SIGINT_SCRIPT = r"""
import sys, time, threading
from pathlib import Path
import numpy as np
from PIL import Image
from support.engines import EngineContract, Take
from support.fakehid import FakeBackend, FakePad
from support.reportgen import usb_report
from riffpad.instrument import wiring
from riffpad.instrument.settings import Settings
from riffpad.instrument.status import Snapshot, StatusView
from riffpad.instrument.takes import TakeWriter
from riffpad.pad.state import Transport

out, feedback, slow_write = sys.argv[1], sys.argv[2], sys.argv[3] == "slow"
t0 = time.monotonic()

def source(pad):  # a live pad at 250 reports/s: R2 pressed from 0.3 s to 0.4 s
    time.sleep(0.004)
    t = time.monotonic() - t0
    return usb_report(r2=255 if 0.3 < t < 0.4 else 0)

class Engine(EngineContract):  # riffpad.engine.api.EngineAPI
    model, device = "sigint-fake", None

    def promote(self, request):
        return "promoted"

    def render(self, request, *, audio=True):  # makes audio either way, as EngineAPI allows
        print("render-start", flush=True)
        time.sleep(0.0 if slow_write else 1.0)
        audio = np.zeros(44100 * 4, np.float32)
        return Take(Image.new("RGB", (64, 64)), audio, 44100, dict(request), {}, dict(request))

if slow_write:
    def write_file(fd, data):
        import os
        view = memoryview(data)
        print("writing", flush=True)
        while view:
            view = view[os.write(fd, view[:2048]):]
            time.sleep(0.01)
    TakeWriter.write_file = staticmethod(write_file)

opts = Settings(out=out, capture_output=feedback, no_audio=True, live=False)
view = StatusView(Snapshot(), live=False)
inst = wiring.build(opts, view, engine=Engine(), make_request=lambda job: {"seed": job.params.seed},
                    backend=FakeBackend(FakePad(Transport.USB, source=source)))
sys.exit(wiring.play(inst, view, opts))
"""


def _start_instrument(tmp_path, mode):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            SIGINT_SCRIPT,
            str(tmp_path / "w"),
            str(tmp_path / "fb.jsonl"),
            mode,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _read_until(proc, marker):
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError("".join(lines))


def test_ctrl_c_finishes_the_take_restores_the_pad_and_exits_0(tmp_path):
    import signal

    proc = _start_instrument(tmp_path, "normal")
    _read_until(proc, "render-start")
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, rest
    assert "finishing the take" in rest
    files = sorted(p.name for p in (tmp_path / "w").iterdir())
    assert len(files) == 3 and not any(f.startswith(".") for f in files)
    last = json.loads((tmp_path / "fb.jsonl").read_text().splitlines()[-1])
    bar, rumble, leds = decode(last["report"])
    assert bar == SANE.lightbar and rumble == (0, 0) and leds == 0


def test_second_ctrl_c_quits_at_once_without_partial_files(tmp_path):
    import signal

    proc = _start_instrument(tmp_path, "slow")
    _read_until(proc, "writing")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert list((tmp_path / "w").iterdir()) == []  # no take, no temporaries


# --- status view, prompt banks, config, command line ---------------------------------------


def test_status_view_shows_everything_the_issue_lists():
    import io

    from rich.console import Console

    from riffpad.instrument.status import render

    s = Snapshot(prompt_a="jazz piano", prompt_b="dub bass", alpha=0.25, seed=40, base_seed=42)
    s.nudge, s.cfg, s.steps, s.worker, s.pending, s.superseded = -2, 7.5, 30, "generating", 1, 2
    s.last_take, s.last_take_s, s.device, s.pad, s.connected = "20260101-1", 3.25, "cpu", "x", 1
    s.battery, s.reports_per_s, s.skipped = "55%", 250, 3
    buf = io.StringIO()
    Console(file=buf, width=120).print(render(s))
    text = buf.getvalue()
    for needle in ("jazz piano", "dub bass", "0.25", "40", "7.5 / 30", "generating", "+1 waiting",
                   "2 superseded", "20260101-1", "3.25 s", "cpu", "55%", "250 reports/s",
                   "skipped 3"):  # fmt: skip
        assert needle in text, needle


def test_status_is_plain_lines_when_not_a_tty(tmp_path):
    import io

    buf = io.StringIO()  # not a TTY
    view = StatusView(Snapshot(), stream=buf)
    assert not view.live_enabled
    with view:
        view.note("take 1 saved")
    assert buf.getvalue() == "riffpad: take 1 saved\n"


def test_prompt_banks_toml_and_text(tmp_path):
    from riffpad.instrument.prompt_bank import PromptFileError, load_prompts, resolve_prompts

    toml = tmp_path / "bank.toml"
    toml.write_text('[[prompt]]\ntext = "jazz piano"\ncolour = "#ff0000"\n\n'
                    '[[prompt]]\ntext = "dub bass"\n')  # fmt: skip
    bank = load_prompts(toml)
    assert [p.text for p in bank] == ["jazz piano", "dub bass"]
    assert bank[0].colour == (255, 0, 0)
    text = tmp_path / "bank.txt"
    text.write_text("# mine\nchurch bells\n\nfunk guitar\nlofi beat\n")
    assert [p.text for p in load_prompts(text)] == ["church bells", "funk guitar", "lofi beat"]
    assert [p.text for p in resolve_prompts(None, "techno", text)][:2] == ["church bells", "techno"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[prompt]]\ntext = "a"\n[[prompt]\n')
    with pytest.raises(PromptFileError, match=r"bad\.toml:3"):
        load_prompts(bad)
    one = tmp_path / "one.txt"
    one.write_text("only one\n")
    with pytest.raises(PromptFileError, match="at least two"):
        load_prompts(one)


def test_cli_reads_the_config_file_and_options_win(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import riffpad.instrument.wiring as wiring_module
    from riffpad.cli import main

    seen = {}
    monkeypatch.setattr(wiring_module, "run", lambda opts: seen.setdefault("opts", opts) and 0)
    conf = tmp_path / "config" / "riffpad" / "config.toml"
    conf.parent.mkdir(parents=True)
    conf.write_text(
        'prompt_a = "church bells"\nout = "elsewhere"\ntrigger_feel = true\ncompile = true\n'
    )
    r = CliRunner().invoke(main, ["--out", "here", "--no-audio", "--audio-device", "3"])
    assert r.exit_code == 0, r.output
    opts = seen["opts"]
    assert opts.prompt_a == "church bells" and opts.trigger_feel is True and opts.compile is True
    assert opts.out == "here" and opts.no_audio is True and opts.audio_device == 3
    conf.write_text("jam = true\nlookahead = 2\ncrossfade = 80.5\n")
    seen.clear()
    r = CliRunner().invoke(main, ["--crossfade", "20"])
    assert r.exit_code == 0, r.output
    opts = seen.pop("opts")
    assert opts.jam is True and opts.lookahead == 2 and opts.crossfade == 20  # the flag wins
    conf.write_text("lookahead = true\n")
    r = CliRunner().invoke(main, [])
    assert r.exit_code != 0 and "lookahead has the wrong type (bool)" in r.output
    conf.write_text("volume = 11\n")
    r = CliRunner().invoke(main, [])
    assert r.exit_code != 0 and "unknown key 'volume'" in r.output


def test_jam_crossfade_option_reaches_the_jam_and_is_checked():
    from riffpad.instrument.wiring import jam_config

    cfg = jam_config(Settings(crossfade=80.0, lookahead=1.5))
    assert cfg.crossfade_s == pytest.approx(0.08) and cfg.lookahead == 1.5
    assert jam_config(Settings(crossfade=0.0)).crossfade_s == 0.0
    for bad in (-1.0, 1500.0):
        with pytest.raises(ValueError, match=r"--crossfade must be within 0\.\.1000 ms"):
            jam_config(Settings(crossfade=bad))


def test_cli_without_a_pad_says_so_and_exits_2(tmp_path):
    import subprocess
    import sys

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "riffpad",
            "--no-audio",
            "--out",
            str(tmp_path / "w"),
            "--device",
            "/dev/hidraw-does-not-exist",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 2
    assert "riffpad:" in r.stderr and "hidraw-does-not-exist" in r.stderr
    assert not (tmp_path / "w").exists()  # a failed start leaves nothing behind
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "riffpad",
            "--replay",
            str(tmp_path / "nope.jsonl"),
            "--out",
            str(tmp_path / "w"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 2 and "nope.jsonl" in r.stderr


def test_cross_promotes_the_blend_and_dpad_walks_prompt_b(tmp_path, monkeypatch):
    from riffpad.pad.state import Button

    bank = tmp_path / "bank.txt"
    bank.write_text("jazz piano\ndub bass\nchurch bells\nfunk guitar\n")
    cross = dict(MOVED2, buttons=int(Button.CROSS))
    right = dict(MOVED2, hat=2)  # D-pad east
    script = pad_script(
        [
            (0.1, MOVED2),
            (0.06, cross),
            (0.06, MOVED2),
            (0.06, right),
            (0.06, MOVED2),
            (0.06, MOVED2_FIRE),
            (0.3, MOVED2),
        ]
    )
    code, inst, metas, _, _ = replay(tmp_path, script, FakeEngine(delay=0.01), prompts=str(bank))
    assert code == 0 and len(metas) == 1
    # Promote: A = the blend of jazz piano and dub bass, B moved on to church bells; then
    # D-pad right moved B on to funk guitar.
    assert metas[0]["prompt_a"] == "(jazz piano + dub bass)"
    assert metas[0]["prompt_b"] == "funk guitar"
    assert metas[0]["fire"]["id"] == 1  # the promote before it is not a fire: no number used
    assert any("promoted" in m for m in inst.snap.messages)


@pytest.mark.slow
def test_riffpad_replay_with_the_tiny_model_end_to_end(tmp_path, tiny_model_dir):
    """`riffpad --replay` as a user runs it, with the real engine on the tiny model."""
    import os
    import subprocess
    import sys

    import soundfile

    script = pad_script(
        [(0.1, IDLE), (0.06, FIRE), (0.06, IDLE), (0.06, MOVED), (0.06, MOVED_FIRE), (1.0, MOVED)]
    )
    expected = expected_fire_params(script)
    cap = write_capture(tmp_path / "in.jsonl", script)
    out, fb = tmp_path / "watched", tmp_path / "fb.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "riffpad",
            "--replay",
            str(cap),
            "--model",
            str(tiny_model_dir),
            "--torch-device",
            "cpu",
            "--out",
            str(out),
            "--no-audio",
            "--capture-output",
            str(fb),
            "--prompt-a",
            "jazz piano",
            "--prompt-b",
            "dub bass",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    metas = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    # Fire 2 came while 1 rendered: it waited as the pending request and was rendered next.
    assert len(metas) == 2
    for meta, params in zip(metas, expected, strict=True):
        assert (meta["alpha"], meta["seed"], meta["cfg"], meta["steps"]) == (
            params.alpha,
            params.seed,
            params.cfg,
            params.steps,
        )
        assert meta["prompt_a"] == "jazz piano" and meta["prompt_b"] == "dub bass"
        assert meta["lineage"]["seed_a"] == params.seed and meta["lineage"]["steps"] == params.steps
        assert meta["model"] == str(tiny_model_dir) and meta["device"] == "cpu"
        assert meta["scheduler"] == "PNDMScheduler"  # the tiny model keeps Riffusion's
        audio, sr = soundfile.read(out / meta["files"]["wav"])
        assert sr == 44100 and len(audio) == meta["audio"]["frames"] > 0
    frames = [decode(json.loads(x)["report"]) for x in fb.read_text().splitlines()]
    assert any(bar == WHITE for bar, _, _ in frames)
    assert frames[-1][0] == SANE.lightbar


def test_holding_ps_quits_before_the_capture_ends(tmp_path):
    from riffpad.pad.state import Button

    ps = dict(IDLE, buttons=int(Button.PS))
    script = pad_script([(0.1, IDLE), (0.06, FIRE), (0.1, IDLE), (1.3, ps), (3.0, IDLE)])
    t0 = time.monotonic()
    code, inst, metas, feedback, _ = replay(tmp_path, script, FakeEngine(delay=0.05))
    assert code == 0 and len(metas) == 1
    assert time.monotonic() - t0 < 3.5  # did not play the 3 s after the hold
    assert any("quit" in m for m in inst.snap.messages)
    assert decode(feedback[-1]["report"])[0] == SANE.lightbar


@pytest.mark.parametrize("bad", ["mapping", "calibration"])
def test_a_start_refused_for_a_bad_file_creates_nothing(tmp_path, bad):
    # Issue 17.5: a refused start left an empty takes folder and a 0-byte capture file.
    from riffpad.instrument.wiring import StartupError

    cap = write_capture(tmp_path / "in.jsonl", pad_script([(0.1, IDLE)]))
    broken = tmp_path / f"{bad}.toml"
    broken.write_text("[[[not toml\n")
    out, feedback = tmp_path / "watched", tmp_path / "feedback.jsonl"
    opts = Settings(
        replay=str(cap),
        out=str(out),
        capture_output=str(feedback),
        no_audio=True,
        live=False,
        **{bad: str(broken)},
    )
    view = StatusView(Snapshot(), live=False, stream=open(tmp_path / "log.txt", "w"))
    with pytest.raises(StartupError, match=f"{bad}.toml"):
        build(opts, view, engine=FakeEngine(delay=0.0), make_request=make_request)
    assert not out.exists() and not feedback.exists()


def test_options_button_shows_what_each_control_does(tmp_path):
    # Issue 13: the help event was bound (Options) but did nothing.
    from riffpad.pad.state import Button

    script = pad_script([(0.1, IDLE), (0.06, dict(IDLE, buttons=int(Button.OPTIONS))), (0.1, IDLE)])
    code, _, metas, _, _ = replay(tmp_path, script, FakeEngine(delay=0.0))
    assert code == 0 and metas == []
    log = (tmp_path / "log.txt").read_text()
    assert "controls: " in log
    for needle in ("r2: fire", "right_stick_x: alpha", "options: this help", "ps (hold 1 s): quit"):
        assert needle in log, log


@pytest.mark.slow
def test_the_real_engine_keeps_the_contract_the_instrument_plays_through(engine, tiny_model_dir):
    from riffpad.engine.api import EngineAPI
    from riffpad.instrument.jobs import Job, render_request

    assert isinstance(engine, EngineAPI)
    info = engine.info()
    assert info.model == str(tiny_model_dir) and info.device == "cpu"
    assert info.scheduler == "PNDMScheduler" and info.describe().endswith("on cpu")
    params = expected_fire_params(pad_script([(0.06, FIRE)]))[0]
    job = Job(params, "jazz piano", "dub bass", fired_t=0.0, fired_wall=0.0)
    request = render_request(job)
    assert (request.alpha, request.seed_a, request.steps, request.guidance) == (
        params.alpha,
        params.seed,
        params.steps,
        params.cfg,
    )
    promoted = engine.promote(request)
    assert engine.describe_prompt(promoted).startswith("(jazz piano -> dub bass @ ")
    assert engine.describe_prompt("dub") == "dub"
