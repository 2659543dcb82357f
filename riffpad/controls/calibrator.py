"""The measuring behind ``riffpad calibrate``: feed PadStates, get a Calibration.

Three steps, each finished by the pad itself (so a capture replays deterministically):

1. rest: sticks and triggers untouched for REST_REPORTS reports -> centre, noise,
   trigger rest. Restarts if a stick moves more than MAX_REST_NOISE meanwhile.
2. circle: both sticks circled to their edges -> travel limits. Done once every one of
   SECTORS directions of each stick has reached CIRCLE_RADIUS of the nominal travel and
   both sticks are back near the centre.
3. squeeze: both triggers pressed past SQUEEZE_MIN, then released -> trigger full.

Each step first skips SETTLE_REPORTS reports: hidraw keeps up to 64 queued reports from
before the performer read the instruction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from riffpad.controls.calibration import (
    _SECTIONS,
    DEFAULT_OUTER,
    Calibration,
    StickCal,
    TriggerCal,
)
from riffpad.controls.mapping import STICK_FIELDS
from riffpad.pad.state import PadState

SETTLE_REPORTS = 64
REST_REPORTS = 250  # about 1 s of a pad's reports
MAX_REST_NOISE = 20  # raw counts; more means the stick was touched
SECTORS = 8
CIRCLE_RADIUS = 0.8  # of the nominal 127-count travel
SQUEEZE_MIN = 160  # raw; a squeeze must pass this to count
RELEASED_MARGIN = 12  # raw counts above rest that still count as released
MIN_DEADZONE = 6


def _median(values: list[int]) -> int:
    s = sorted(values)
    return s[len(s) // 2]


@dataclass
class RestStep:
    title: str = "Leave both sticks and triggers alone"
    samples: list[PadState] = field(default_factory=list)
    skipped: int = 0
    restarts: int = 0

    def feed(self, s: PadState) -> bool:
        if self.skipped < SETTLE_REPORTS:
            self.skipped += 1
            return False
        self.samples.append(s)
        first = self.samples[0]
        moved = max(
            abs(s.lx - first.lx), abs(s.ly - first.ly), abs(s.rx - first.rx), abs(s.ry - first.ry)
        )
        if moved > MAX_REST_NOISE:  # touched: start again from here
            self.samples = [s]
            self.restarts += 1
        return len(self.samples) >= REST_REPORTS

    @property
    def progress(self) -> float:
        return len(self.samples) / REST_REPORTS

    def centre_and_noise(self, keys: tuple[str, str]) -> tuple[tuple[int, int], int]:
        xs = [getattr(s, keys[0]) for s in self.samples]
        ys = [getattr(s, keys[1]) for s in self.samples]
        c = (_median(xs), _median(ys))
        noise = max(max(abs(x - c[0]) for x in xs), max(abs(y - c[1]) for y in ys))
        return c, noise

    def trigger_rest(self, key: str) -> int:
        return max(getattr(s, key) for s in self.samples)


@dataclass
class CircleStep:
    centres: dict[str, tuple[int, int]]  # stick -> centre from the rest step
    title: str = "Circle both sticks slowly along their edges, then let them go"
    skipped: int = 0
    lo: dict[str, list[int]] = field(default_factory=dict)
    hi: dict[str, list[int]] = field(default_factory=dict)
    sectors: dict[str, set[int]] = field(default_factory=dict)

    KEYS: ClassVar[dict[str, tuple[str, str]]] = STICK_FIELDS

    def __post_init__(self) -> None:
        for stick, c in self.centres.items():
            self.lo[stick], self.hi[stick] = list(c), list(c)
            self.sectors[stick] = set()

    def feed(self, s: PadState) -> bool:
        if self.skipped < SETTLE_REPORTS:
            self.skipped += 1
            return False
        back = True
        for stick, (kx, ky) in self.KEYS.items():
            x, y = getattr(s, kx), getattr(s, ky)
            lo, hi = self.lo[stick], self.hi[stick]
            lo[0], lo[1] = min(lo[0], x), min(lo[1], y)
            hi[0], hi[1] = max(hi[0], x), max(hi[1], y)
            cx, cy = self.centres[stick]
            dx, dy = (x - cx) / 127, (y - cy) / 127
            r = math.hypot(dx, dy)
            if r >= CIRCLE_RADIUS:
                angle = math.atan2(dy, dx) % (2 * math.pi)
                self.sectors[stick].add(int(angle / (2 * math.pi) * SECTORS) % SECTORS)
            back = back and r < 0.25
        return back and self.progress >= 1.0

    @property
    def progress(self) -> float:
        return min(len(v) for v in self.sectors.values()) / SECTORS


@dataclass
class SqueezeStep:
    rests: dict[str, int]  # trigger -> rest from the rest step
    title: str = "Squeeze both triggers all the way, then let go"
    skipped: int = 0
    peak: dict[str, int] = field(default_factory=dict)

    def feed(self, s: PadState) -> bool:
        if self.skipped < SETTLE_REPORTS:
            self.skipped += 1
            return False
        done = True
        for key, rest in self.rests.items():
            value = getattr(s, key)
            self.peak[key] = max(self.peak.get(key, 0), value)
            done = done and self.peak[key] >= SQUEEZE_MIN and value <= rest + RELEASED_MARGIN
        return done

    @property
    def progress(self) -> float:
        return min(min(self.peak.get(k, 0), SQUEEZE_MIN) / SQUEEZE_MIN for k in self.rests)


def stick_result(centre: tuple[int, int], noise: int, lo: list[int], hi: list[int]) -> StickCal:
    """Deadzone: twice the noise plus a margin, at least MIN_DEADZONE raw counts."""
    return StickCal(
        center=centre,
        noise=noise,
        deadzone=max(MIN_DEADZONE, 2 * noise + 2),
        min=(lo[0], lo[1]),
        max=(hi[0], hi[1]),
        outer=DEFAULT_OUTER,
    )


def trigger_result(rest: int, peak: int) -> TriggerCal:
    """Rest gets a margin above the noise seen; full a little below the deepest press."""
    return TriggerCal(rest=min(rest + 2, 254), full=max(min(peak - 3, 255), rest + 10))


def result(
    rest: RestStep, circle: CircleStep, squeeze: SqueezeStep, serial: str | None
) -> Calibration:
    sticks = {}
    for stick, keys in CircleStep.KEYS.items():
        centre, noise = rest.centre_and_noise(keys)
        sticks[stick] = stick_result(centre, noise, circle.lo[stick], circle.hi[stick])
    triggers = {
        key: trigger_result(rest.trigger_rest(key), squeeze.peak.get(key, 0))
        for key in ("l2", "r2")
    }
    return Calibration(**sticks, **triggers, serial=serial or None)


def problems(cal: Calibration) -> list[str]:
    """Why a measured calibration cannot be used (empty when fine)."""
    out = []
    for name in _SECTIONS:
        out += [f"{name} {key}: {msg}" for key, msg in getattr(cal, name).validate()]
    return out
