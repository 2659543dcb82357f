"""Hypothesis strategies for pad states and calibrations (any byte the pad can send)."""

from __future__ import annotations

from hypothesis import strategies as st

from riffpad.controls import Calibration, StickCal, TriggerCal
from riffpad.pad.state import NEUTRAL, PadState, TouchPoint

byte = st.integers(0, 255)
touch_points = st.builds(
    TouchPoint, st.booleans(), st.integers(0, 127), st.integers(0, 1919), st.integers(0, 1079)
)
states = st.builds(
    PadState,
    kind=st.just(NEUTRAL.kind),
    lx=byte,
    ly=byte,
    rx=byte,
    ry=byte,
    l2=byte,
    r2=byte,
    buttons=st.integers(0, (1 << 24) - 1),
    hat=st.integers(0, 15),
    touch=st.one_of(st.just(()), st.tuples(touch_points, touch_points)),
)


@st.composite
def stick_cals(draw) -> StickCal:
    cx, cy = draw(st.integers(110, 146)), draw(st.integers(110, 146))
    lo = (draw(st.integers(0, 20)), draw(st.integers(0, 20)))
    hi = (draw(st.integers(235, 255)), draw(st.integers(235, 255)))
    noise = draw(st.integers(0, 6))
    return StickCal(
        center=(cx, cy),
        noise=noise,
        deadzone=draw(st.integers(noise + 1, 30)),
        min=lo,
        max=hi,
        outer=draw(st.floats(0.85, 1.0)),
    )


@st.composite
def calibrations(draw) -> Calibration:
    def trig():
        rest = draw(st.integers(0, 20))
        return TriggerCal(rest=rest, full=draw(st.integers(200, 255)))

    return Calibration(
        left_stick=draw(stick_cals()), right_stick=draw(stick_cals()), l2=trig(), r2=trig()
    )
