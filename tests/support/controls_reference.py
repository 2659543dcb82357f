"""The straightforward evaluation of ``riffpad.controls.Controls``, kept as a reference.

``ReferenceControls`` is ``Controls.update`` as it was before it was optimised (a dict and
getattr lookups per binding per report, no fast path). The property tests check that the
optimised ``Controls`` gives exactly the same (Params, events) sequence, and
``benchmarks/bench_controls.py`` times both on the same stream.
"""

from __future__ import annotations

from riffpad.controls.calibration import Calibration, StickCal
from riffpad.controls.core import (
    MAX_DT,
    Params,
    _finish,
    apply_curve,
    axial_deadzone,
    is_pressed,
    midi_quantise,
    midi_touch,
    midi_value,
    scale,
    stick_deflection,
    touch_position,
    trigger_travel,
)
from riffpad.controls.gestures import RELEASED, GateState, button_step, gate_step
from riffpad.controls.mapping import (
    PARAMS,
    STICKS,
    TOUCH,
    TRIGGERS,
    EventBinding,
    Mapping,
    ParamBinding,
    ParamSpec,
)
from riffpad.pad.state import PadState


class ReferenceControls:
    """``Controls`` as first written (main before the fast path): every report evaluates every
    binding from scratch. The yardstick for tests and benchmarks, not used by riffpad."""

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
