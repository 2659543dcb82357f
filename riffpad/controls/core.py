"""PadState -> musical Params and events.

The maths are pure functions (deflection, travel, curve, scaling, MIDI quantisation);
``Controls`` only keeps what must persist between reports: the touchpad's last value,
relative sticks' positions and the gesture gates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from riffpad.controls.calibration import Calibration, StickCal, TriggerCal
from riffpad.controls.gestures import RELEASED, GateState, button_step, gate_step
from riffpad.controls.mapping import (
    BUTTONS,
    PARAMS,
    STICKS,
    TOUCH,
    TRIGGERS,
    EventBinding,
    Mapping,
    ParamBinding,
    ParamSpec,
)
from riffpad.pad.state import TOUCHPAD_HEIGHT, TOUCHPAD_WIDTH, DPad, PadState

MAX_DT = 0.25  # relative sticks: a stalled loop must not make the value jump


@dataclass(frozen=True)
class Params:
    alpha: float  # prompt A (0) .. prompt B (1)
    base_seed: int
    nudge: int
    cfg: float  # classifier-free guidance scale
    steps: int  # denoising steps

    @property
    def seed(self) -> int:
        return self.base_seed + self.nudge

    def as_dict(self) -> dict:
        """The JSON form used by ``monitor --json``: seed is base + nudge."""
        return {"alpha": self.alpha, "seed": self.seed, "cfg": self.cfg, "steps": self.steps}


# ---- pure maths -------------------------------------------------------------------------


def _axis(raw: int, center: int, lo: int, hi: int) -> float:
    """Raw axis -> -1..1 around the centre, each side scaled to its own travel."""
    if raw >= center:
        return min((raw - center) / (hi - center), 1.0)
    return max((raw - center) / (center - lo), -1.0)


def stick_deflection(raw_x: int, raw_y: int, cal: StickCal) -> tuple[float, float]:
    """(x, y) in -1..1 (right/down positive) after the radial deadzone and outer limit.

    Inside the deadzone both are exactly 0. Outside it the radius is rescaled so the
    output starts at 0 at the deadzone's edge and reaches 1 at ``cal.outer``; each axis
    is then clipped, so full deflection along an axis gives exactly +-1.
    """
    nx = _axis(raw_x, cal.center[0], cal.min[0], cal.max[0])
    ny = _axis(raw_y, cal.center[1], cal.min[1], cal.max[1])
    dz = cal.deadzone / cal.half_travel
    r = math.hypot(nx, ny)
    if r <= dz:
        return 0.0, 0.0
    k = (r - dz) / (cal.outer - dz) / r
    return max(-1.0, min(1.0, nx * k)), max(-1.0, min(1.0, ny * k))


def trigger_travel(raw: int, cal: TriggerCal) -> float:
    """0 at or below the calibrated rest, 1 at or above full, linear between."""
    if raw <= cal.rest:
        return 0.0
    if raw >= cal.full:
        return 1.0
    return (raw - cal.rest) / (cal.full - cal.rest)


def touch_position(value: int, axis: int) -> float:
    """Touchpad coordinate -> 0..1 (left/top edge 0, right/bottom edge 1)."""
    size = (TOUCHPAD_WIDTH, TOUCHPAD_HEIGHT)[axis] - 1
    return max(0.0, min(1.0, value / size))


def axial_deadzone(d: float, dz: float) -> float:
    """Extra deadzone around 0 for a -1..1 (or 0..1) value, rescaled to keep the ends."""
    if dz <= 0.0:
        return d
    mag = abs(d)
    if mag <= dz:
        return 0.0
    out = min(1.0, (mag - dz) / (1.0 - dz))
    return out if d > 0 else -out


def apply_curve(d: float, curve: str, amount: float) -> float:
    """Odd, monotonic, keeps 0 and +-1: linear, or expo ``(1-a) d + a d^3``."""
    if curve == "linear" or amount == 0.0:
        return d
    mag = abs(d)
    out = min(1.0, (1.0 - amount) * mag + amount * (mag * mag * mag))
    return out if d >= 0 else -out


def scale(spec: ParamSpec, unit: float) -> float | int:
    """0..1 -> the parameter's range; integers round half up (monotonic)."""
    value = spec.lo + (spec.hi - spec.lo) * unit
    return _finish(spec, value)


def _finish(spec: ParamSpec, value: float) -> float | int:
    value = max(spec.lo, min(spec.hi, value))
    if spec.integer:
        return math.floor(value + 0.5)
    return float(value)


def midi_quantise(raw: int) -> int:
    """A 0..255 stick or trigger byte -> 0..127 the way a MIDI bridge sends it: raw >> 1."""
    return raw >> 1


def midi_touch(value: int, axis: int) -> int:
    """Touchpad coordinate -> 0..127: ``x * 127 // 1919`` (y: ``* 127 // 1079``)."""
    size = (TOUCHPAD_WIDTH, TOUCHPAD_HEIGHT)[axis] - 1
    return max(0, min(127, value * 127 // size))


def midi_value(spec: ParamSpec, v: int) -> float | int:
    out = spec.midi(v)
    return int(out) if spec.integer else float(out)


_DPAD_DIRS = {
    "dpad_up": (DPad.N, DPad.NE, DPad.NW),
    "dpad_down": (DPad.S, DPad.SE, DPad.SW),
    "dpad_left": (DPad.W, DPad.NW, DPad.SW),
    "dpad_right": (DPad.E, DPad.NE, DPad.SE),
}


def is_pressed(state: PadState, control: str) -> bool:
    if control in BUTTONS:
        return bool(state.buttons & BUTTONS[control])
    return state.dpad in _DPAD_DIRS[control]


# ---- the stateful part ------------------------------------------------------------------


class Controls:
    """Turns successive PadStates into Params and events through a mapping and calibration."""

    def __init__(self, mapping: Mapping, calibration: Calibration | None = None) -> None:
        self.mapping = mapping
        self.calibration = calibration or Calibration()
        self._values: dict[str, float] = {}  # last value of touchpad/relative params
        for name, spec in PARAMS.items():
            binding = mapping.params.get(name)
            start = binding.initial if binding and binding.initial is not None else spec.initial
            self._values[name] = float(start)
        self._gates: list[GateState] = [RELEASED] * len(mapping.events)
        self._last_t: float | None = None

    def update(self, state: PadState, t: float) -> tuple[Params, list[str]]:
        """One report at time ``t`` (seconds, any monotonic origin) -> (Params, events)."""
        dt = 0.0 if self._last_t is None else max(0.0, min(MAX_DT, t - self._last_t))
        self._last_t = t
        values = {name: self._param(name, state, dt) for name in PARAMS}
        events = []
        for i, binding in enumerate(self.mapping.events):
            self._gates[i], fired = self._event(self._gates[i], binding, state, t)
            if fired:
                events.append(binding.event)
        params = Params(
            alpha=values["alpha"],
            base_seed=values["base_seed"],
            nudge=values["nudge"],
            cfg=values["cfg"],
            steps=values["steps"],
        )
        return params, events

    def _event(self, gate: GateState, b: EventBinding, state: PadState, t: float):
        if b.control in TRIGGERS:
            cal = getattr(self.calibration, b.control)
            level = trigger_travel(getattr(state, b.control), cal)
            return gate_step(gate, level, t, press=b.press, release=b.release, hold=b.hold)
        return button_step(gate, is_pressed(state, b.control), t, hold=b.hold)

    def _param(self, name: str, state: PadState, dt: float) -> float | int:
        spec = PARAMS[name]
        b = self.mapping.params.get(name)
        if b is None:
            return _finish(spec, self._values[name])
        if b.control in TOUCH:
            return self._touch(spec, b, state)
        if self.mapping.resolution == "midi":
            return self._midi(spec, b, state)
        if b.control in STICKS:
            stick, axis = STICKS[b.control]
            cal: StickCal = getattr(self.calibration, stick)
            raw = (state.lx, state.ly) if stick == "left_stick" else (state.rx, state.ry)
            d = stick_deflection(raw[0], raw[1], cal)[axis]
            if b.invert:
                d = -d
            d = apply_curve(axial_deadzone(d, b.deadzone), b.curve, b.amount)
            if b.mode == "relative":
                value = self._values[name] + d * b.rate * (spec.hi - spec.lo) * dt
                self._values[name] = max(spec.lo, min(spec.hi, value))
                return _finish(spec, self._values[name])
            return scale(spec, (d + 1.0) / 2.0)
        # trigger
        u = trigger_travel(getattr(state, b.control), getattr(self.calibration, b.control))
        u = apply_curve(axial_deadzone(u, b.deadzone), b.curve, b.amount)
        return scale(spec, 1.0 - u if b.invert else u)

    def _touch(self, spec: ParamSpec, b: ParamBinding, state: PadState) -> float | int:
        axis = TOUCH[b.control]
        point = state.touch[0] if state.touch else None
        if point is not None and point.active:  # a lifted finger keeps the last value
            coord = (point.x, point.y)[axis]
            if self.mapping.resolution == "midi":
                v = midi_touch(coord, axis)
                self._values[spec.name] = midi_value(spec, 127 - v if b.invert else v)
            else:
                u = apply_curve(touch_position(coord, axis), b.curve, b.amount)
                self._values[spec.name] = scale(spec, 1.0 - u if b.invert else u)
        return _finish(spec, self._values[spec.name])

    def _midi(self, spec: ParamSpec, b: ParamBinding, state: PadState) -> float | int:
        raw = {
            "left_stick_x": state.lx,
            "left_stick_y": state.ly,
            "right_stick_x": state.rx,
            "right_stick_y": state.ry,
            "l2": state.l2,
            "r2": state.r2,
        }[b.control]
        v = midi_quantise(raw)
        return midi_value(spec, 127 - v if b.invert else v)


def monitor_extra(mapping=None, calibration=None, serial: str | None = None):
    """The hook ``riffpad monitor --json`` calls per accepted report: (state, t) ->
    ``{"params": {...}, "events": [...]}``. Loads (and so validates) both files now;
    raises MappingError / CalibrationError (ValueError) naming file and line."""
    from riffpad.controls.calibration import load_calibration
    from riffpad.controls.mapping import load_mapping

    controls = Controls(load_mapping(mapping), load_calibration(serial, calibration))

    def extra(state: PadState, t: float) -> dict:
        params, events = controls.update(state, t)
        return {"params": params.as_dict(), "events": events}

    return extra
