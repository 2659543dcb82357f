"""Per-pad calibration: stick centres, noise, deadzones, travel; trigger rest and full.

One TOML file per pad in ``user_config_dir("riffpad")/calibration/<key>.toml``, the key
being the pad's serial (its MAC on Bluetooth) made filename-safe. Without a file the
defaults below apply: a radial deadzone of 10/128 hides the drift of a typical pad.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riffpad.atomic import write_text
from riffpad.controls._toml import FileFormatError, Located, check_number, describe

FORMAT = "riffpad-calibration"
VERSION = 1

DEFAULT_DEADZONE = 10  # raw counts, radial, around the centre
DEFAULT_OUTER = 0.97  # radius (fraction of travel) from which a stick reads full deflection
DEFAULT_TRIGGER_REST = 4  # raw; a released trigger reads 0..2 on the pads we know
DEFAULT_TRIGGER_FULL = 250


class CalibrationError(FileFormatError):
    """A calibration file that cannot be used. ``str()`` reads ``FILE:LINE: message``."""


@dataclass(frozen=True)
class StickCal:
    """One stick, in raw report units (0..255, y down)."""

    center: tuple[int, int] = (128, 128)
    noise: int = 0  # largest deviation from the centre seen at rest
    deadzone: int = DEFAULT_DEADZONE  # radial, raw counts
    min: tuple[int, int] = (0, 0)  # travel limits (x, y) reached when circling
    max: tuple[int, int] = (255, 255)
    outer: float = DEFAULT_OUTER

    def validate(self) -> list[tuple[str, str]]:
        """Problems as (key, message); empty when usable."""
        problems = []
        for axis in (0, 1):
            if not 0 <= self.min[axis] < self.center[axis] < self.max[axis] <= 255:
                problems.append(
                    (
                        "center",
                        f"expected 0 <= min < center < max <= 255 on {'xy'[axis]}, got "
                        f"min {self.min[axis]}, center {self.center[axis]}, max {self.max[axis]}",
                    )
                )
        if self.noise < 0:
            problems.append(("noise", f"expected a count >= 0, got {self.noise}"))
        if problems:
            return problems
        if not 0.5 <= self.outer <= 1.0:
            problems.append(("outer", f"expected a fraction 0.5 .. 1.0, got {self.outer}"))
        # The deadzone may take at most half of the live travel.
        limit = int(self.outer * self.half_travel / 2)
        if not 0 <= self.deadzone < limit:
            problems.append(
                ("deadzone", f"expected raw counts 0 <= deadzone < {limit}, got {self.deadzone}")
            )
        return problems

    @property
    def half_travel(self) -> float:
        """Mean distance from centre to the travel limits, in raw counts (127.5 by default)."""
        return ((self.max[0] - self.min[0]) + (self.max[1] - self.min[1])) / 4


@dataclass(frozen=True)
class TriggerCal:
    rest: int = DEFAULT_TRIGGER_REST  # raw value up to which the trigger counts as released
    full: int = DEFAULT_TRIGGER_FULL  # raw value from which it counts as fully pressed

    def validate(self) -> list[tuple[str, str]]:
        if not 0 <= self.rest < self.full <= 255:
            return [("full", f"expected 0 <= rest < full <= 255, got {self.rest}, {self.full}")]
        return []


@dataclass(frozen=True)
class Calibration:
    left_stick: StickCal = field(default_factory=StickCal)
    right_stick: StickCal = field(default_factory=StickCal)
    l2: TriggerCal = field(default_factory=TriggerCal)
    r2: TriggerCal = field(default_factory=TriggerCal)
    serial: str | None = None
    source: Path | None = field(default=None, compare=False)  # None for defaults


_STICK_KEYS = {"center", "noise", "deadzone", "min", "max", "outer"}
_TRIGGER_KEYS = {"rest", "full"}
_SECTIONS = {"left_stick": StickCal, "right_stick": StickCal, "l2": TriggerCal, "r2": TriggerCal}


def pad_key(serial: str | None) -> str:
    """Filename-safe key for a pad: its serial/MAC, lowercase, ':' -> '-'."""
    if not serial:
        return "default"
    key = re.sub(r"[^a-z0-9_.-]", "-", serial.strip().lower().replace(":", "-"))
    return key.strip(".-") or "default"


def config_dir() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("riffpad")) / "calibration"


def default_path(serial: str | None) -> Path:
    return config_dir() / f"{pad_key(serial)}.toml"


def load_calibration(serial: str | None = None, path: Path | str | None = None) -> Calibration:
    """The calibration for pad ``serial``: from ``path``, else from the config location.

    A missing file at the config location gives the defaults; an explicit ``path`` must
    exist. A broken file raises CalibrationError naming the file and line.
    """
    if path is None:
        path = default_path(serial)
        if not path.is_file():
            return Calibration(serial=serial)
    return parse_calibration(Path(path), serial)


def parse_calibration(path: Path, serial: str | None = None) -> Calibration:
    doc = Located.read(path, CalibrationError)
    data, fail = doc.data, doc.error
    doc.check_header(FORMAT, VERSION)
    unknown = set(data) - set(_SECTIONS) - {"format", "version", "serial", "created"}
    if unknown:
        key = sorted(unknown)[0]
        raise fail((key,), f"unknown key {key!r}; expected one of: {', '.join(sorted(_SECTIONS))}")

    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise fail((name,), f"expected a table [{name}], got {describe(table)}")
        allowed = _STICK_KEYS if cls is StickCal else _TRIGGER_KEYS
        kwargs: dict[str, Any] = {}
        for key, value in table.items():
            if key not in allowed:
                raise fail(
                    (name, key),
                    f"unknown key {key!r} in [{name}]; "
                    f"expected one of: {', '.join(sorted(allowed))}",
                )
            kwargs[key] = _check_value(fail, (name, key), value)
        obj = cls(**kwargs)
        for key, message in obj.validate():
            raise fail((name, key), f"[{name}] {message}")
        sections[name] = obj
    file_serial = data.get("serial")
    return Calibration(**sections, serial=serial or file_serial, source=path)


# Every number a calibration file holds, and its allowed range (relations such as
# min < center < max are checked afterwards, on values known to be finite and in range).
_RAW = (0, 255)
_RANGES: dict[str, tuple[float, float]] = {
    "center": _RAW,
    "min": _RAW,
    "max": _RAW,
    "noise": _RAW,
    "deadzone": _RAW,
    "rest": _RAW,
    "full": _RAW,
    "outer": (0.5, 1.0),
}


def _check_value(fail, keys: tuple[str, ...], value: Any) -> Any:
    key = keys[-1]
    lo, hi = _RANGES[key]
    if key in ("center", "min", "max"):
        if not (isinstance(value, list) and len(value) == 2):
            raise fail(keys, f"{key}: expected two integers [x, y], got {describe(value)}")
        return tuple(check_number(fail, keys, v, lo, hi, integer=True) for v in value)
    return check_number(fail, keys, value, lo, hi, integer=key != "outer")


def dumps(cal: Calibration, *, created: str | None = None) -> str:
    """TOML text for ``cal`` (parse_calibration reads it back to an equal object)."""
    lines = [
        "# riffpad calibration, written by `riffpad calibrate`. Raw report units (0..255).",
        f'format = "{FORMAT}"',
        f"version = {VERSION}",
    ]
    if cal.serial:
        lines.append(f'serial = "{cal.serial}"')
    if created:
        lines.append(f'created = "{created}"')
    for name in ("left_stick", "right_stick"):
        s: StickCal = getattr(cal, name)
        lines += [
            "",
            f"[{name}]",
            f"center = [{s.center[0]}, {s.center[1]}]",
            f"noise = {s.noise}",
            f"deadzone = {s.deadzone}  # radial, raw counts",
            f"min = [{s.min[0]}, {s.min[1]}]",
            f"max = [{s.max[0]}, {s.max[1]}]",
            f"outer = {s.outer!r}  # fraction of travel that reads as full deflection",
        ]
    for name in ("l2", "r2"):
        tr: TriggerCal = getattr(cal, name)
        lines += ["", f"[{name}]", f"rest = {tr.rest}", f"full = {tr.full}"]
    return "\n".join(lines) + "\n"


def save_calibration(cal: Calibration, path: Path | str, *, created: str | None = None) -> Path:
    """Write ``cal`` to ``path`` atomically (aside, then rename): replaces old values."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, dumps(cal, created=created))
    return path
