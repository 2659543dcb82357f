"""Mapping files: which pad control drives which musical parameter or event.

A mapping is TOML. Each ``[controls.<control>]`` table binds one control either to a
parameter (``param = "alpha"``, with curve, deadzone, inversion, absolute/relative mode)
or to an event (``event = "fire"``, with trigger thresholds or a hold time). A mapping is
validated completely before use: a broken file raises MappingError naming the file, the
line and what was expected, and nothing half-read is ever returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riffpad.controls._toml import FileFormatError, Located, describe
from riffpad.pad.state import Button

FORMAT = "riffpad-mapping"
VERSION = 1


class MappingError(FileFormatError):
    """A mapping file that cannot be used. ``str()`` reads ``FILE:LINE: message``."""


@dataclass(frozen=True)
class ParamSpec:
    """A musical parameter: its range, its value at rest, and its MIDI-bridge formula."""

    name: str
    lo: float
    hi: float
    initial: float  # value before any input moves it (touchpad, relative sticks, unbound)
    integer: bool
    midi: Callable[[int], float]  # v in 0..127 -> value, as the documented MIDI table


PARAMS: dict[str, ParamSpec] = {
    "alpha": ParamSpec("alpha", 0.0, 1.0, 0.5, False, lambda v: v / 127),
    "nudge": ParamSpec("nudge", -32, 32, 0, True, lambda v: (v - 64) // 2),
    "cfg": ParamSpec("cfg", 3.0, 15.0, 9.0, False, lambda v: 3 + 12 * v / 127),
    "steps": ParamSpec("steps", 15, 50, 15, True, lambda v: 15 + int(35 * v / 127)),
    "base_seed": ParamSpec("base_seed", 0, 1024, 0, True, lambda v: 8 * v),
}

EVENTS: tuple[str, ...] = (
    "fire",
    "promote",
    "next_prompt",
    "prev_prompt",
    "next_seed_image",
    "prev_seed_image",
    "replay",
    "stop",
    "jam",
    "tap_tempo",
    "help",
    "quit",
)

STICKS = {  # control -> (stick, axis index)
    "left_stick_x": ("left_stick", 0),
    "left_stick_y": ("left_stick", 1),
    "right_stick_x": ("right_stick", 0),
    "right_stick_y": ("right_stick", 1),
}
STICK_FIELDS = {"left_stick": ("lx", "ly"), "right_stick": ("rx", "ry")}  # PadState x, y
TRIGGERS = ("l2", "r2")
TOUCH = {"touchpad_x": 0, "touchpad_y": 1}
# Digital L2/R2 bits are left out: the analogue triggers (with thresholds) replace them.
BUTTONS: dict[str, int] = {
    ("touchpad_click" if b is Button.TOUCHPAD else b.name.lower()): int(b)
    for b in Button
    if b not in (Button.L2, Button.R2)
}
DPAD = ("dpad_up", "dpad_down", "dpad_left", "dpad_right")

PARAM_CONTROLS = (*STICKS, *TRIGGERS, *TOUCH)
EVENT_CONTROLS = (*TRIGGERS, *BUTTONS, *DPAD)
ALL_CONTROLS = tuple(dict.fromkeys((*PARAM_CONTROLS, *EVENT_CONTROLS)))

CURVES = ("linear", "expo")
MODES = ("absolute", "relative")
RESOLUTIONS = ("full", "midi")


@dataclass(frozen=True)
class ParamBinding:
    control: str
    param: str
    invert: bool = False
    curve: str = "linear"
    amount: float = 0.0  # expo: 0 = linear .. 1 = cubic
    deadzone: float = 0.0  # extra, per axis, fraction of travel (the radial one is calibrated)
    mode: str = "absolute"
    rate: float = 0.5  # relative: fraction of the range per second at full deflection
    initial: float | None = None  # None = the parameter's own initial value


@dataclass(frozen=True)
class EventBinding:
    control: str
    event: str
    press: float = 0.6  # triggers: fraction of calibrated travel that presses
    release: float = 0.4  # ... and below which it is released again (hysteresis)
    hold: float = 0.0  # seconds held before the event fires; 0 = on press


@dataclass(frozen=True)
class Mapping:
    name: str = "unnamed"
    resolution: str = "full"
    params: dict[str, ParamBinding] = field(default_factory=dict)  # param -> binding
    events: tuple[EventBinding, ...] = ()
    source: Path | None = field(default=None, compare=False)


_PARAM_KEYS = {"param", "invert", "curve", "amount", "deadzone", "mode", "rate", "initial"}
_EVENT_KEYS = {"event", "press", "release", "hold"}
_TOP_KEYS = {"format", "version", "name", "description", "resolution", "controls"}


def shipped_mappings() -> list[str]:
    from riffpad.resources import data_dir

    return sorted(p.stem for p in data_dir("mappings").glob("*.toml"))


def resolve_mapping_path(path: Path | str | None) -> Path:
    """``None`` -> the shipped default; a bare name ("relative") -> a shipped mapping."""
    from riffpad.resources import data_dir

    if path is None:
        return data_dir("mappings") / "dualsense.toml"
    p = Path(path)
    if not p.exists() and p.suffix == "" and p.name == str(path):
        shipped = data_dir("mappings") / f"{p.name}.toml"
        if shipped.is_file():
            return shipped
    return p


def load_mapping(path: Path | str | None = None) -> Mapping:
    """Read and validate a mapping file (default: the shipped ``dualsense.toml``)."""
    return parse_mapping(Located.read(resolve_mapping_path(path), MappingError))


def _one_of(what: str, valid) -> str:
    return f"expected one of {what}: {', '.join(valid)}"


def parse_mapping(doc: Located) -> Mapping:
    data, fail = doc.data, doc.error  # errors of doc's class: MappingError from load_mapping
    for key in data:
        if key not in _TOP_KEYS:
            raise fail((key,), f"unknown key {key!r}; {_one_of('the keys', sorted(_TOP_KEYS))}")
    doc.check_header(FORMAT, VERSION)
    resolution = data.get("resolution", "full")
    if resolution not in RESOLUTIONS:
        raise fail(
            ("resolution",),
            f"resolution {describe(resolution)}: {_one_of('the resolutions', RESOLUTIONS)}",
        )
    name = data.get("name", doc.path.stem)
    if not isinstance(name, str):
        raise fail(("name",), f"name: expected a string, got {describe(name)}")
    controls = data.get("controls", {})
    if not isinstance(controls, dict):
        raise fail(("controls",), f"expected a table [controls], got {describe(controls)}")

    params: dict[str, ParamBinding] = {}
    events: list[EventBinding] = []
    for control, table in controls.items():
        where = ("controls", control)
        if control not in ALL_CONTROLS:
            raise fail(
                where, f"unknown control {control!r}; {_one_of('the controls', ALL_CONTROLS)}"
            )
        if not isinstance(table, dict):
            raise fail(
                where,
                f"control {control!r}: expected a table such as "
                f'{{ param = "alpha" }} or {{ event = "fire" }}, got {describe(table)}',
            )
        if ("param" in table) == ("event" in table):
            raise fail(where, f"control {control!r}: expected exactly one of 'param' or 'event'")
        if "param" in table:
            binding = _param_binding(fail, control, table, resolution)
            if binding.param in params:
                other = params[binding.param].control
                raise fail(
                    (*where, "param"),
                    f"parameter {binding.param!r} is already driven by {other!r}; "
                    "expected each parameter bound to at most one control",
                )
            params[binding.param] = binding
        else:
            events.append(_event_binding(fail, control, table))
    return Mapping(
        name=name, resolution=resolution, params=params, events=tuple(events), source=doc.path
    )


def _number(fail, keys, value, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise fail(keys, f"{keys[-1]}: expected a number {lo} .. {hi}, got {describe(value)}")
    if not lo <= value <= hi:
        raise fail(keys, f"{keys[-1]}: expected a number {lo} .. {hi}, got {value}")
    return float(value)


def _check_keys(fail, where: tuple, table: dict[str, Any], allowed, what: str) -> None:
    for key in table:
        if key not in allowed:
            raise fail(
                (*where, key),
                f"unknown key {key!r} for {what}; {_one_of('the keys', sorted(allowed))}",
            )


def _param_binding(fail, control: str, table: dict[str, Any], resolution: str) -> ParamBinding:
    where = ("controls", control)
    _check_keys(fail, where, table, _PARAM_KEYS, "a parameter binding")
    param = table["param"]
    if param not in PARAMS:
        raise fail(
            (*where, "param"),
            f"unknown parameter {describe(param)}; {_one_of('the parameters', PARAMS)}",
        )
    if control not in PARAM_CONTROLS:
        raise fail(
            (*where, "param"),
            f"control {control!r} is a button and cannot set a parameter; "
            f"{_one_of('the controls', PARAM_CONTROLS)}",
        )
    spec = PARAMS[param]
    kwargs: dict[str, Any] = {"control": control, "param": param}
    if "invert" in table:
        if not isinstance(table["invert"], bool):
            raise fail(
                (*where, "invert"),
                f"invert: expected true or false, got {describe(table['invert'])}",
            )
        kwargs["invert"] = table["invert"]
    curve = table.get("curve", "linear")
    if curve not in CURVES:
        raise fail((*where, "curve"), f"curve {describe(curve)}: {_one_of('the curves', CURVES)}")
    kwargs["curve"] = curve
    if "amount" in table:
        kwargs["amount"] = _number(fail, (*where, "amount"), table["amount"], 0.0, 1.0)
    if "deadzone" in table:
        if control in TOUCH:
            raise fail(
                (*where, "deadzone"),
                "deadzone: the touchpad has none; expected it only on sticks and triggers",
            )
        kwargs["deadzone"] = _number(fail, (*where, "deadzone"), table["deadzone"], 0.0, 0.9)
    mode = table.get("mode", "absolute")
    if mode not in MODES:
        raise fail((*where, "mode"), f"mode {describe(mode)}: {_one_of('the modes', MODES)}")
    if mode == "relative" and control not in STICKS:
        raise fail(
            (*where, "mode"),
            f'mode = "relative" works on sticks only; {_one_of("the controls", STICKS)}',
        )
    if mode == "relative" and resolution == "midi":
        raise fail(
            (*where, "mode"), 'mode = "relative" needs resolution = "full" (a MIDI CC is absolute)'
        )
    kwargs["mode"] = mode
    if "rate" in table:
        kwargs["rate"] = _number(fail, (*where, "rate"), table["rate"], 0.01, 100.0)
    if "initial" in table:
        kwargs["initial"] = _number(fail, (*where, "initial"), table["initial"], spec.lo, spec.hi)
    return ParamBinding(**kwargs)


def _event_binding(fail, control: str, table: dict[str, Any]) -> EventBinding:
    where = ("controls", control)
    _check_keys(fail, where, table, _EVENT_KEYS, "an event binding")
    event = table["event"]
    if event not in EVENTS:
        raise fail(
            (*where, "event"), f"unknown event {describe(event)}; {_one_of('the events', EVENTS)}"
        )
    if control not in EVENT_CONTROLS:
        raise fail(
            (*where, "event"),
            f"control {control!r} cannot send events; {_one_of('the controls', EVENT_CONTROLS)}",
        )
    kwargs: dict[str, Any] = {"control": control, "event": event}
    for key in ("press", "release"):
        if key in table:
            if control not in TRIGGERS:
                raise fail((*where, key), f"{key}: thresholds apply to triggers (l2, r2) only")
            kwargs[key] = _number(fail, (*where, key), table[key], 0.05, 1.0)
    press, release = kwargs.get("press", 0.6), kwargs.get("release", 0.4)
    if not release < press:
        raise fail(
            (*where, "release"),
            f"release: expected below press ({press}) so noise cannot re-press, got {release}",
        )
    if "hold" in table:
        kwargs["hold"] = _number(fail, (*where, "hold"), table["hold"], 0.0, 60.0)
    return EventBinding(**kwargs)
