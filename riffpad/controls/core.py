"""PadState -> musical Params and events.

The maths are pure functions (deflection, travel, curve, scaling, MIDI quantisation);
``Controls`` only keeps what must persist between reports: the touchpad's last value,
relative sticks' positions and the gesture gates.
"""

from __future__ import annotations

import math

from riffpad.controls.calibration import Calibration, StickCal, TriggerCal
from riffpad.controls.gestures import RELEASED, GateState, gate_step
from riffpad.controls.mapping import (
    BUTTONS,
    STICK_FIELDS,
    STICKS,
    TOUCH,
    TRIGGERS,
    EventBinding,
    Mapping,
    ParamBinding,
)
from riffpad.controls.params import EVENT_HELP, PARAMS, Event, Params, ParamSpec
from riffpad.pad.state import HAT_TO_DPAD, TOUCHPAD_HEIGHT, TOUCHPAD_WIDTH, DPad, PadState

MAX_DT = 0.25  # relative sticks: a stalled loop must not make the value jump


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
    """Turns successive PadStates into Params and events through a mapping and calibration.

    Each binding is compiled once into a small function of the raw report fields (absolute
    sticks, triggers and MIDI values through lookup tables of the same maths), and a report
    whose relevant fields equal the last one's, with nothing time-dependent in flight (no
    relative stick deflected, no hold pending), returns the previous Params at once: at
    250-1000 reports/s most reports of a performance are repeats.
    """

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
        self._moving = False  # a relative stick was deflected at the last full evaluation
        self._pending = False  # a held gesture was waiting for its hold time
        self._last_key: tuple | None = None
        self._last_params: Params | None = None
        self._touch_bound = any(b.control in TOUCH for b in mapping.params.values())
        self._param_fns = [self._compile_param(name) for name in PARAMS]
        self._event_fns = [self._compile_event(b) for b in mapping.events]

    def update(self, state: PadState, t: float) -> tuple[Params, list[Event]]:
        """One report at time ``t`` (seconds, any monotonic origin) -> (Params, events)."""
        last_t = self._last_t
        self._last_t = t
        key = (
            state.lx,
            state.ly,
            state.rx,
            state.ry,
            state.l2,
            state.r2,
            state.buttons,
            state.hat,
            self._touch_key(state.touch) if self._touch_bound else None,
        )
        if key == self._last_key and not (self._moving or self._pending):
            return self._last_params, []  # type: ignore[return-value]
        dt = 0.0 if last_t is None else max(0.0, min(MAX_DT, t - last_t))
        self._moving = False
        params = Params(*[fn(state, dt) for fn in self._param_fns])  # in PARAMS order
        events = []
        pending = False
        gates = self._gates
        for i, (level_of, press, release, hold, event) in enumerate(self._event_fns):
            gate = gates[i]
            level = level_of(state)
            if not gate.down and level < press:
                continue  # released and staying released: gate_step would change nothing
            gate, fired = gate_step(gate, level, t, press=press, release=release, hold=hold)
            gates[i] = gate
            if fired:
                events.append(event)
            if gate.down and not gate.fired:
                pending = True
        self._pending = pending
        self._last_key = key
        self._last_params = params
        return params, events

    @staticmethod
    def _touch_key(touch: tuple) -> tuple[int, int] | None:
        """What of touch point 0 can change a value: its position while a finger is down."""
        if touch:
            p = touch[0]
            if p.active:
                return p.x, p.y
        return None

    # --- compiling bindings (same maths as the pure functions above, looked up) ----------

    def _compile_param(self, name: str):
        spec = PARAMS[name]
        b = self.mapping.params.get(name)
        if b is None:
            value = _finish(spec, self._values[name])
            return lambda state, dt: value
        if b.control in TOUCH:
            return self._compile_touch(spec, b)
        if self.mapping.resolution == "midi":
            table = [
                midi_value(spec, 127 - v if b.invert else v) for v in map(midi_quantise, range(256))
            ]
            field = _RAW_FIELD[b.control]
            return lambda state, dt: table[getattr(state, field)]
        if b.control in STICKS:
            return self._compile_stick(spec, b)
        cal: TriggerCal = getattr(self.calibration, b.control)
        table = []
        for raw in range(256):
            u = apply_curve(axial_deadzone(trigger_travel(raw, cal), b.deadzone), b.curve, b.amount)
            table.append(scale(spec, 1.0 - u if b.invert else u))
        field = b.control
        return lambda state, dt: table[getattr(state, field)]

    def _compile_stick(self, spec: ParamSpec, b: ParamBinding):
        stick, axis = STICKS[b.control]
        cal: StickCal = getattr(self.calibration, stick)
        fx, fy = STICK_FIELDS[stick]

        def curved(x: int, y: int) -> float:
            d = stick_deflection(x, y, cal)[axis]
            if b.invert:
                d = -d
            return apply_curve(axial_deadzone(d, b.deadzone), b.curve, b.amount)

        # Each mode caches its answer per raw (x << 8 | y): at most 65536 entries.
        if b.mode == "relative":
            name, values, lo, hi = spec.name, self._values, spec.lo, spec.hi
            rate = b.rate
            deflections: dict[int, float] = {}

            def relative(state: PadState, dt: float) -> float | int:
                x, y = getattr(state, fx), getattr(state, fy)
                k = x << 8 | y
                d = deflections.get(k)
                if d is None:
                    d = deflections[k] = curved(x, y)
                if d != 0.0:
                    self._moving = True
                value = values[name] + d * rate * (hi - lo) * dt
                values[name] = max(lo, min(hi, value))
                return _finish(spec, values[name])

            return relative
        values_at: dict[int, float | int] = {}  # the parameter's value

        def absolute(state: PadState, dt: float) -> float | int:
            x, y = getattr(state, fx), getattr(state, fy)
            k = x << 8 | y
            v = values_at.get(k)
            if v is None:
                v = values_at[k] = scale(spec, (curved(x, y) + 1.0) / 2.0)
            return v

        return absolute

    def _compile_touch(self, spec: ParamSpec, b: ParamBinding):
        axis = TOUCH[b.control]
        name, values = spec.name, self._values
        midi = self.mapping.resolution == "midi"

        def touch(state: PadState, dt: float) -> float | int:
            point = state.touch[0] if state.touch else None
            if point is not None and point.active:  # a lifted finger keeps the last value
                coord = (point.x, point.y)[axis]
                if midi:
                    v = midi_touch(coord, axis)
                    values[name] = midi_value(spec, 127 - v if b.invert else v)
                else:
                    u = apply_curve(touch_position(coord, axis), b.curve, b.amount)
                    values[name] = scale(spec, 1.0 - u if b.invert else u)
            return _finish(spec, values[name])

        return touch

    def _compile_event(self, b: EventBinding):
        """(level_of(state), press, release, hold, event) for one event binding."""
        if b.control in TRIGGERS:
            cal: TriggerCal = getattr(self.calibration, b.control)
            table = [trigger_travel(raw, cal) for raw in range(256)]
            field = b.control
            return (
                lambda state: table[getattr(state, field)],
                b.press,
                b.release,
                b.hold,
                b.event,
            )
        if b.control in BUTTONS:
            mask = BUTTONS[b.control]
            level_of = lambda state: 1.0 if state.buttons & mask else 0.0  # noqa: E731
        else:
            dirs = _DPAD_DIRS[b.control]
            hat = tuple(1.0 if HAT_TO_DPAD[h] in dirs else 0.0 for h in range(16))
            level_of = lambda state: hat[state.hat & 0x0F]  # noqa: E731
        # button_step's thresholds
        return level_of, 0.5, 0.5, b.hold, b.event


# control -> the PadState field holding its raw byte
_RAW_FIELD = {control: STICK_FIELDS[stick][axis] for control, (stick, axis) in STICKS.items()}
_RAW_FIELD.update((trigger, trigger) for trigger in TRIGGERS)


def controls_help(mapping: Mapping) -> list[str]:
    """One line per bound control, in the mapping's order: what the help event shows."""
    lines = [
        f"{b.control}: {b.param}" + (f" ({PARAMS[b.param].doc})" if PARAMS[b.param].doc else "")
        for b in mapping.params.values()
    ]
    for b in mapping.events:
        hold = f" (hold {b.hold:g} s)" if b.hold else ""
        lines.append(f"{b.control}{hold}: {EVENT_HELP[b.event]}")
    return lines


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
