"""The optimised ``Controls`` (compiled bindings, repeat fast path) against the reference.

``tests/support/controls_reference.py`` keeps ``Controls.update`` as first written: every binding
evaluated from scratch on every report. On random report streams with many repeats (as a
real pad sends at 250-1000 reports/s), relative sticks, holds, touch lifts, calibrations
and both resolutions, the two must give exactly the same (Params, events) sequence.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from support.controls_reference import ReferenceControls
from support.paths import MAPPINGS_DIR
from support.strategies import calibrations, states

from riffpad.controls import Controls, load_mapping
from riffpad.pad.state import NEUTRAL, TouchPoint

# Everything time-dependent at once: relative sticks with deadzones and curves, holds on a
# trigger and on buttons, the touchpad on both axes.
HOLDS = """
format = "riffpad-mapping"
version = 1
[controls.right_stick_x]
param = "alpha"
mode = "relative"
rate = 2.0
curve = "expo"
amount = 0.7
deadzone = 0.1
[controls.left_stick_x]
param = "nudge"
mode = "relative"
invert = true
[controls.left_stick_y]
param = "cfg"
deadzone = 0.2
curve = "expo"
amount = 0.3
[controls.touchpad_y]
param = "steps"
invert = true
curve = "expo"
amount = 0.5
[controls.touchpad_x]
param = "base_seed"
[controls.r2]
event = "fire"
press = 0.5
release = 0.2
hold = 0.1
[controls.l2]
event = "jam"
[controls.cross]
event = "promote"
hold = 0.05
[controls.ps]
event = "quit"
hold = 1.0
[controls.dpad_up]
event = "next_prompt"
[controls.dpad_left]
event = "prev_prompt"
hold = 0.2
"""


def mapping_for(which: str, tmp: Path):
    if which in ("default", "relative"):
        return load_mapping(which if which == "relative" else None)
    if which == "midi":
        text = (MAPPINGS_DIR / "dualsense.toml").read_text()
        text = text.replace('resolution = "full"', 'resolution = "midi"')
    else:
        text = HOLDS
    path = tmp / f"{which}.toml"
    path.write_text(text)
    return load_mapping(path)


def nudged(state, data):
    """A small change of one field, as successive reports of a moving pad differ."""
    field = data.draw(st.sampled_from(["lx", "ly", "rx", "ry", "l2", "r2", "touch", "buttons"]))
    if field == "touch":
        x = data.draw(st.integers(0, 1919))
        point = TouchPoint(data.draw(st.booleans()), 1, x, data.draw(st.integers(0, 1079)))
        return dataclasses.replace(state, touch=(point, TouchPoint(False, 0, 0, 0)))
    if field == "buttons":
        return dataclasses.replace(
            state, buttons=state.buttons ^ (1 << data.draw(st.integers(4, 23)))
        )
    value = max(0, min(255, getattr(state, field) + data.draw(st.integers(-3, 3))))
    return dataclasses.replace(state, **{field: value})


@settings(max_examples=150, deadline=None)
@given(
    which=st.sampled_from(["default", "relative", "midi", "holds"]),
    cal=st.one_of(st.none(), calibrations()),
    pool=st.lists(states, min_size=1, max_size=4),
    data=st.data(),
)
def test_same_params_and_events_as_the_reference(tmp_path_factory, which, cal, pool, data):
    mapping = mapping_for(which, tmp_path_factory.mktemp("m"))
    fast, ref = Controls(mapping, cal), ReferenceControls(mapping, cal)
    pool = [NEUTRAL, *pool]
    state, t = NEUTRAL, data.draw(st.floats(0.0, 100.0))
    for _ in range(data.draw(st.integers(1, 60))):
        step = data.draw(st.sampled_from(["repeat", "repeat", "repeat", "nudge", "jump"]))
        if step == "nudge":
            state = nudged(state, data)
        elif step == "jump":
            state = data.draw(st.sampled_from(pool))
        # Mostly the report period, sometimes a stall or a clock that does not move.
        t += data.draw(st.sampled_from([0.001, 0.004, 0.004, 0.0, 0.3, 0.05]))
        got, want = fast.update(state, t), ref.update(state, t)
        assert got == want, (state, t)
        assert type(got[0].base_seed) is type(want[0].base_seed)


def test_a_repeated_report_while_a_hold_is_pending_still_fires(tmp_path):
    """The fast path must not swallow time: PS held still for a second quits."""
    c = Controls(mapping_for("holds", tmp_path))
    held = dataclasses.replace(NEUTRAL, buttons=1 << 16)
    events = [e for i in range(300) for e in c.update(held, i * 0.004)[1]]
    assert events == ["quit"]


def test_a_deflected_relative_stick_keeps_moving_on_repeated_reports():
    c = Controls(load_mapping("relative"))
    right = dataclasses.replace(NEUTRAL, rx=255)
    alphas = [c.update(right, i * 0.004)[0].alpha for i in range(50)]
    assert all(b > a for a, b in itertools.pairwise(alphas))
