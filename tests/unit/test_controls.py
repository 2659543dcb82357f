"""PadState -> Params and events: ranges, rest, extremes, monotonicity, gestures, MIDI mode."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.paths import MAPPINGS_DIR
from support.strategies import byte, calibrations, states

from riffpad.controls import Calibration, Controls, Params, StickCal, TriggerCal, load_mapping
from riffpad.controls.core import stick_deflection, trigger_travel
from riffpad.controls.mapping import PARAMS
from riffpad.pad.state import NEUTRAL, Button, PadState, TouchPoint

DEFAULT = load_mapping()
RELATIVE = load_mapping("relative")


def pad(**kw) -> PadState:
    return dataclasses.replace(NEUTRAL, **kw)


def touch(x: int, y: int = 500, active: bool = True) -> tuple[TouchPoint, TouchPoint]:
    return (TouchPoint(active, 1, x, y), TouchPoint(False, 0, 0, 0))


def midi_mapping(tmp_path: Path, extra: str = ""):
    text = (MAPPINGS_DIR / "dualsense.toml").read_text()
    text = text.replace('resolution = "full"', 'resolution = "midi"') + extra
    path = tmp_path / "midi.toml"
    path.write_text(text)
    return load_mapping(path)


def params_of(state: PadState, mapping=DEFAULT, cal: Calibration | None = None) -> Params:
    return Controls(mapping, cal).update(state, 0.0)[0]


def check_ranges(p: Params) -> None:
    assert 0.0 <= p.alpha <= 1.0 and isinstance(p.alpha, float)
    assert -32 <= p.nudge <= 32 and isinstance(p.nudge, int)
    assert 3.0 <= p.cfg <= 15.0 and isinstance(p.cfg, float)
    assert 15 <= p.steps <= 50 and isinstance(p.steps, int)
    assert 0 <= p.base_seed <= 1024 and isinstance(p.base_seed, int)
    assert p.seed == p.base_seed + p.nudge


# ---- ranges -----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    stream=st.lists(st.tuples(states, st.floats(0.0, 0.5)), min_size=1, max_size=40),
    cal=st.one_of(st.none(), calibrations()),
    which=st.sampled_from(["default", "relative"]),
)
def test_every_parameter_stays_in_range_for_any_stream(stream, cal, which):
    controls = Controls(DEFAULT if which == "default" else RELATIVE, cal)
    t = 0.0
    for state, dt in stream:
        t += dt
        params, events = controls.update(state, t)
        check_ranges(params)
        assert all(isinstance(e, str) for e in events)


@settings(max_examples=30, deadline=None)
@given(stream=st.lists(states, min_size=1, max_size=30))
def test_midi_mode_stays_in_range(tmp_path_factory, stream):
    controls = Controls(midi_mapping(tmp_path_factory.mktemp("m")))
    for i, state in enumerate(stream):
        check_ranges(controls.update(state, i * 0.004)[0])


# ---- rest and extremes ------------------------------------------------------------------


def test_neutral_pad_gives_the_documented_rest_values():
    p = params_of(NEUTRAL)
    assert (p.alpha, p.nudge, p.cfg, p.steps, p.base_seed, p.seed) == (0.5, 0, 9.0, 15, 0, 0)


@settings(max_examples=200, deadline=None)
@given(cal=calibrations(), data=st.data())
def test_rest_inside_the_calibrated_deadzone_is_exact(cal, data):
    """Any drift within the radial deadzone reads exactly 0.5 / 0 / 9.0 / 15."""
    state = {}
    for stick, keys in (("left_stick", ("lx", "ly")), ("right_stick", ("rx", "ry"))):
        c: StickCal = getattr(cal, stick)
        # Offsets whose normalised radius stays inside the deadzone.
        side = min(min(ce - lo, hi - ce) for ce, lo, hi in zip(c.center, c.min, c.max, strict=True))
        r = math.floor(c.deadzone * side / (c.half_travel * math.sqrt(2)))
        dx = data.draw(st.integers(-r, r))
        dy = data.draw(st.integers(-r, r))
        state[keys[0]], state[keys[1]] = c.center[0] + dx, c.center[1] + dy
        assert stick_deflection(c.center[0] + dx, c.center[1] + dy, c) == (0.0, 0.0)
    state["l2"] = data.draw(st.integers(0, cal.l2.rest))
    p = params_of(pad(**state), cal=cal)
    assert (p.alpha, p.nudge, p.cfg, p.steps) == (0.5, 0, 9.0, 15)


@pytest.mark.parametrize("cal", [None, Calibration(right_stick=StickCal((131, 124), 3, 12))])
def test_extremes_give_the_range_ends(cal):
    c = cal or Calibration()
    cx, cy = c.right_stick.center
    assert params_of(pad(rx=0, ry=cy), cal=cal).alpha == 0.0
    assert params_of(pad(rx=255, ry=cy), cal=cal).alpha == 1.0
    assert params_of(pad(ry=0, rx=cx), cal=cal).nudge == 32  # raw Y 0 is up
    assert params_of(pad(ry=255, rx=cx), cal=cal).nudge == -32
    assert params_of(pad(ly=0), cal=cal).cfg == 15.0
    assert params_of(pad(ly=255), cal=cal).cfg == 3.0
    assert params_of(pad(l2=0), cal=cal).steps == 15
    assert params_of(pad(l2=255), cal=cal).steps == 50
    assert params_of(pad(touch=touch(0)), cal=cal).base_seed == 0
    assert params_of(pad(touch=touch(1919)), cal=cal).base_seed == 1024


@settings(max_examples=100, deadline=None)
@given(cal=calibrations(), other=st.integers(-4, 4))
def test_extremes_with_calibration_and_a_little_cross_axis_noise(cal, other):
    cy = cal.right_stick.center[1]
    assert params_of(pad(rx=cal.right_stick.max[0], ry=cy + other), cal=cal).alpha == 1.0
    assert params_of(pad(rx=cal.right_stick.min[0], ry=cy + other), cal=cal).alpha == 0.0
    lx = cal.left_stick.center[0] + other
    assert params_of(pad(ly=cal.left_stick.min[1], lx=lx), cal=cal).cfg == 15.0
    assert params_of(pad(ly=cal.left_stick.max[1], lx=lx), cal=cal).cfg == 3.0
    assert params_of(pad(l2=cal.l2.full), cal=cal).steps == 50


# ---- monotonicity -----------------------------------------------------------------------


def expo_mapping(tmp_path: Path, amount: float, deadzone: float):
    text = (MAPPINGS_DIR / "dualsense.toml").read_text()
    for header in ("[controls.right_stick_x]", "[controls.left_stick_y]", "[controls.l2]"):
        text = text.replace(
            header, f'{header}\ncurve = "expo"\namount = {amount}\ndeadzone = {deadzone}'
        )
    path = tmp_path / "expo.toml"
    path.write_text(text)
    return load_mapping(path)


@settings(max_examples=40, deadline=None)
@given(
    cal=st.one_of(st.none(), calibrations()),
    cross=byte,
    amount=st.sampled_from([0.0, 0.3, 1.0]),
    deadzone=st.sampled_from([0.0, 0.1]),
    midi=st.booleans(),
)
def test_outputs_are_monotonic_in_their_input(tmp_path_factory, cal, cross, amount, deadzone, midi):
    tmp = tmp_path_factory.mktemp("mono")
    mapping = midi_mapping(tmp) if midi else expo_mapping(tmp, amount, deadzone)
    sweep = range(256)
    alpha = [params_of(pad(rx=v, ry=cross), mapping, cal).alpha for v in sweep]
    nudge = [params_of(pad(ry=v, rx=cross), mapping, cal).nudge for v in sweep]
    cfg = [params_of(pad(ly=v, lx=cross), mapping, cal).cfg for v in sweep]
    steps = [params_of(pad(l2=v), mapping, cal).steps for v in sweep]
    seed = [params_of(pad(touch=touch(x)), mapping, cal).base_seed for x in range(0, 1920, 7)]
    assert all(a <= b for a, b in itertools.pairwise(alpha))
    assert all(a >= b for a, b in itertools.pairwise(nudge))  # raw Y grows downwards
    assert all(a >= b for a, b in itertools.pairwise(cfg))
    assert all(a <= b for a, b in itertools.pairwise(steps))
    assert all(a <= b for a, b in itertools.pairwise(seed))
    # and they actually move: the whole range is covered end to end
    assert (alpha[0], alpha[-1]) == ((0.0, 1.0) if not midi else (0.0, 127 / 127))
    assert steps[-1] == 50


# ---- MIDI mode --------------------------------------------------------------------------


def test_midi_mode_matches_the_documented_formulas_for_all_128_values(tmp_path):
    mapping = midi_mapping(tmp_path)
    for v in range(128):
        for raw in (2 * v, 2 * v + 1):  # v = raw >> 1
            assert params_of(pad(rx=raw), mapping).alpha == v / 127
            # Y axes are inverted (up = more): the CC value is 127 - (raw >> 1)
            assert params_of(pad(ry=255 - raw), mapping).nudge == (v - 64) // 2
            assert params_of(pad(ly=255 - raw), mapping).cfg == 3 + 12 * v / 127
            assert params_of(pad(l2=raw), mapping).steps == 15 + int(35 * v / 127)
        xs = [x for x in range(1920) if x * 127 // 1919 == v]
        assert xs, v
        for x in (xs[0], xs[-1]):
            assert params_of(pad(touch=touch(x)), mapping).base_seed == 8 * v


def test_midi_mode_ignores_calibration_like_a_bridge(tmp_path):
    mapping = midi_mapping(tmp_path)
    cal = Calibration(right_stick=StickCal((140, 120), 5, 20, (10, 10), (240, 240)))
    assert params_of(pad(rx=128), mapping, cal).alpha == 64 / 127
    assert params_of(pad(rx=128), mapping).alpha == 64 / 127


# ---- touchpad ---------------------------------------------------------------------------


def test_touchpad_keeps_its_value_when_the_finger_lifts():
    c = Controls(DEFAULT)
    assert c.update(pad(touch=touch(960)), 0.0)[0].base_seed == round(1024 * 960 / 1919)
    lifted = (TouchPoint(False, 1, 100, 100), TouchPoint(False, 0, 0, 0))
    assert c.update(pad(touch=lifted), 0.1)[0].base_seed == 512
    assert c.update(pad(touch=()), 0.2)[0].base_seed == 512  # BT simple report: no touch
    p = c.update(pad(touch=touch(1919), ry=0), 0.3)[0]
    assert (p.base_seed, p.nudge, p.seed) == (1024, 32, 1056)


# ---- relative sticks --------------------------------------------------------------------


def test_relative_alpha_stays_where_the_performer_leaves_it():
    c = Controls(RELATIVE)
    t = 0.0
    assert c.update(NEUTRAL, t)[0].alpha == 0.5
    for _ in range(50):  # full right for 0.5 s at 100 Hz: rate 0.5 of the range per second
        t += 0.01
        p = c.update(pad(rx=255), t)[0]
    assert p.alpha == pytest.approx(0.75)
    for _ in range(100):  # stick springs back: alpha stays
        t += 0.01
        p = c.update(NEUTRAL, t)[0]
    assert p.alpha == pytest.approx(0.75)
    for _ in range(300):  # long push left clamps at 0.0
        t += 0.01
        p = c.update(pad(rx=0), t)[0]
    assert p.alpha == 0.0
    # CFG is relative too, inverted (up raises it), 6.0 per second at full deflection
    for _ in range(25):
        t += 0.01
        p = c.update(pad(ly=0), t)[0]
    assert p.cfg == pytest.approx(10.5)


def test_relative_mode_caps_a_stalled_loop():
    c = Controls(RELATIVE)
    c.update(pad(rx=255), 0.0)
    p = c.update(pad(rx=255), 30.0)[0]  # 30 s gap: moves at most 0.25 s worth
    assert p.alpha == pytest.approx(0.5 + 0.25 * 0.5)


# ---- events -----------------------------------------------------------------------------


def count_events(controls: Controls, states, name: str, dt: float = 0.004) -> int:
    n = 0
    for i, state in enumerate(states):
        n += controls.update(state, i * dt)[1].count(name)
    return n


def r2_thresholds(cal: TriggerCal | None = None) -> tuple[int, int]:
    """Lowest raw value that presses (>= 60%) and highest that still holds (>= 40%)."""
    cal = cal or TriggerCal()
    press = min(v for v in range(256) if trigger_travel(v, cal) >= 0.6)
    release = min(v for v in range(256) if trigger_travel(v, cal) >= 0.4)
    return press, release


@st.composite
def noisy_presses(draw):
    """(raw R2 samples, number of presses): presses dip (not below the release point)
    and releases hover up to just under the press point: noise near the threshold."""
    press, hold = r2_thresholds()
    samples: list[int] = []
    n = draw(st.integers(0, 6))
    for _ in range(n):
        samples += draw(st.lists(st.integers(0, hold - 1), min_size=1, max_size=5))
        samples += draw(st.lists(st.integers(0, press - 1), max_size=5))  # noise, no press
        samples.append(draw(st.integers(press, 255)))
        samples += draw(st.lists(st.integers(hold, 255), max_size=8))  # bouncing while held
    return samples, n


@settings(max_examples=200, deadline=None)
@given(noisy_presses())
def test_one_trigger_press_gives_exactly_one_fire(case):
    samples, presses = case
    assert count_events(Controls(DEFAULT), [pad(r2=v) for v in samples], "fire") == presses


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-6, 6), min_size=1, max_size=200))
def test_a_trigger_resting_near_the_threshold_fires_at_most_once(noise):
    press, _ = r2_thresholds()
    states = [pad(r2=min(255, max(0, press - 1 + d))) for d in noise]
    expected = 1 if any(press - 1 + d >= press for d in noise) else 0
    assert count_events(Controls(DEFAULT), states, "fire") == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), max_size=60), st.integers(0, 15))
def test_one_button_press_gives_one_event(pressed, hat):
    states = [pad(buttons=int(Button.CROSS) if p else 0, hat=hat) for p in pressed]
    edges = sum(
        1 for prev, cur in zip([False, *pressed], pressed, strict=False) if cur and not prev
    )
    assert count_events(Controls(DEFAULT), states, "promote") == edges


def test_dpad_and_face_buttons_send_their_events():
    c = Controls(DEFAULT)
    got = []
    for i, state in enumerate(
        [
            pad(hat=2),  # E
            pad(hat=8),
            pad(hat=6),  # W
            pad(hat=0),  # N
            pad(hat=1),  # NE: up is still held, right is a new press
            pad(hat=4),  # S
            pad(buttons=int(Button.TRIANGLE)),
            pad(buttons=int(Button.TRIANGLE | Button.CIRCLE)),
            pad(buttons=int(Button.SQUARE)),
            pad(buttons=int(Button.OPTIONS)),
        ]
    ):
        got.append(c.update(state, i * 0.01)[1])
    assert got == [
        ["next_prompt"],
        [],
        ["prev_prompt"],
        ["next_seed_image"],
        ["next_prompt"],
        ["prev_seed_image"],
        ["replay"],
        ["stop"],
        ["jam"],
        ["help"],
    ]


def test_quit_needs_the_ps_button_held_for_a_second():
    c = Controls(DEFAULT)
    ps = pad(buttons=int(Button.PS))
    assert [c.update(ps, t / 100)[1] for t in range(0, 90)] == [[]] * 90  # tap of 0.9 s
    assert c.update(NEUTRAL, 0.95)[1] == []
    events = [e for t in range(100, 400) for e in c.update(ps, t / 100)[1]]
    assert events == ["quit"]  # once at 1.0 s held, not again while still held


def test_fire_and_promote_on_the_report_where_they_happen():
    c = Controls(DEFAULT)
    seq = [NEUTRAL, pad(r2=255), pad(r2=255, buttons=int(Button.CROSS)), pad(r2=0)]
    assert [c.update(s, i * 0.004)[1] for i, s in enumerate(seq)] == [
        [],
        ["fire"],
        ["promote"],
        [],
    ]


def test_unbound_parameters_stay_at_their_initial_value(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text('[controls.l2]\nparam = "alpha"\n[controls.r1]\nevent = "fire"\n')
    c = Controls(load_mapping(path))
    p, ev = c.update(pad(l2=255, ry=0, ly=0, buttons=int(Button.R1)), 0.0)
    assert (p.alpha, p.nudge, p.cfg, p.steps, p.base_seed) == (1.0, 0, 9.0, 15, 0)
    assert ev == ["fire"]
    assert set(PARAMS) == {"alpha", "nudge", "cfg", "steps", "base_seed"}


def test_params_json_form_uses_the_summed_seed():
    p = Params(alpha=0.25, base_seed=100, nudge=-3, cfg=7.5, steps=20)
    assert p.as_dict() == {"alpha": 0.25, "seed": 97, "cfg": 7.5, "steps": 20}
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.alpha = 1.0  # type: ignore[misc]


def test_inverted_trigger(tmp_path):
    path = tmp_path / "inv.toml"
    path.write_text('[controls.r2]\nparam = "steps"\ninvert = true\n')
    m = load_mapping(path)
    assert params_of(pad(r2=0), m).steps == 50
    assert params_of(pad(r2=255), m).steps == 15


def test_outer_limit_lets_a_worn_stick_reach_the_ends():
    # Default outer = 0.97 of the travel: a stick that stops at 252 / 3 still reads full.
    assert params_of(pad(rx=252)).alpha == 1.0
    assert params_of(pad(rx=3)).alpha == 0.0
    assert params_of(pad(rx=240)).alpha < 1.0


# ---- the visible contract: monitor --json ------------------------------------------------


def monitor_capture(path: Path, rows: list[dict], extra_lines: tuple[str, ...] = ()) -> Path:
    import json

    import support.calib_capture as cc

    lines = cc.lines("usb")[:1]  # the header
    for i, fields in enumerate(rows):
        lines.append(json.dumps({"t": i * 0.004, "report": cc.usb(i, **fields).hex()}))
    lines.extend(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def monitor_json(*args: str) -> tuple[int, list]:
    import json

    from click.testing import CliRunner

    from riffpad.cli import main

    result = CliRunner().invoke(main, ["monitor", "--json", *args])
    if result.exit_code:
        return result.exit_code, [result.output]
    return 0, [json.loads(line) for line in result.stdout.splitlines()]


CROSS = int(Button.CROSS)


def test_monitor_json_adds_params_and_events_where_they_happen(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no stray calibration
    capture = monitor_capture(
        tmp_path / "play.jsonl",
        [
            {},
            {"r2": 255},
            {"r2": 255, "buttons": CROSS},
            {"r2": 0, "touch_x": 1919, "ry": 0},
            {"ry": 0},  # finger lifted: base seed kept
            {"rx": 255, "ly": 255, "l2": 255},
        ],
        extra_lines=('{"t": 1.0, "report": "0102"}',),  # refused: no params, no events
    )
    code, out = monitor_json("--replay", str(capture))
    assert code == 0, out
    assert [r.get("events") for r in out] == [[], ["fire"], ["promote"], [], [], [], None]
    assert [r.get("params") for r in out] == [
        {"alpha": 0.5, "seed": 0, "cfg": 9.0, "steps": 15},
        {"alpha": 0.5, "seed": 0, "cfg": 9.0, "steps": 15},
        {"alpha": 0.5, "seed": 0, "cfg": 9.0, "steps": 15},
        {"alpha": 0.5, "seed": 1056, "cfg": 9.0, "steps": 15},  # base 1024 + nudge 32
        {"alpha": 0.5, "seed": 1056, "cfg": 9.0, "steps": 15},
        {"alpha": 1.0, "seed": 1024, "cfg": 3.0, "steps": 50},
        None,
    ]
    assert out[-1] == {"rejected": "bad_length", "length": 2}
    assert isinstance(out[0]["params"]["seed"], int) and isinstance(out[0]["params"]["cfg"], float)


def test_monitor_mapping_and_calibration_options(tmp_path):
    capture = monitor_capture(tmp_path / "c.jsonl", [{"rx": 140}, {"rx": 140, "l2": 200}])
    cal = tmp_path / "cal.toml"
    cal.write_text("[right_stick]\ncenter = [140, 128]\n[l2]\nrest = 0\nfull = 200\n")
    code, out = monitor_json("--replay", str(capture), "--calibration", str(cal))
    assert code == 0, out
    assert [r["params"]["alpha"] for r in out] == [0.5, 0.5]  # the calibrated centre
    assert out[1]["params"]["steps"] == 50  # full at the calibrated 200
    midi = tmp_path / "midi.toml"
    midi.write_text('resolution = "midi"\n[controls.right_stick_x]\nparam = "alpha"\n')
    code, out = monitor_json("--replay", str(capture), "--mapping", str(midi))
    assert code == 0, out
    assert out[0]["params"]["alpha"] == 70 / 127  # 140 >> 1
    assert out[1]["params"]["steps"] == 15  # unbound in this mapping


def test_monitor_refuses_a_broken_mapping_before_reading(tmp_path):
    capture = monitor_capture(tmp_path / "c.jsonl", [{}])
    bad = tmp_path / "bad.toml"
    bad.write_text('[controls.right_stick_x]\nparam = "alpah"\n')
    code, out = monitor_json("--replay", str(capture), "--mapping", str(bad))
    assert code == 1
    assert f"{bad}:2: unknown parameter" in out[0]
    assert "alpha, nudge, cfg, steps, base_seed" in out[0]
