"""The musical vocabulary: every parameter the pad plays and every event it sends.

Mapping files, ``Controls``, the pad feedback, take metadata and the engine request all
read these names from here. Adding a parameter: one ``ParamSpec`` in ``PARAMS`` and the
field of the same name in ``Params`` (same order); the request builder says which engine
field it drives. Adding an event: one ``Event`` member and one handler in the app's table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class ParamSpec:
    """A musical parameter: its range, its value at rest, and its MIDI-bridge formula."""

    name: str
    lo: float
    hi: float
    initial: float  # value before any input moves it (touchpad, relative sticks, unbound)
    integer: bool
    midi: Callable[[int], float]  # v in 0..127 -> value, as the documented MIDI table
    doc: str = ""


PARAMS: dict[str, ParamSpec] = {
    "alpha": ParamSpec(
        "alpha", 0.0, 1.0, 0.5, False, lambda v: v / 127, "prompt A (0) .. prompt B (1)"
    ),
    "nudge": ParamSpec(
        "nudge", -32, 32, 0, True, lambda v: (v - 64) // 2, "added to the base seed"
    ),
    "cfg": ParamSpec(
        "cfg", 3.0, 15.0, 9.0, False, lambda v: 3 + 12 * v / 127, "classifier-free guidance"
    ),
    "steps": ParamSpec(
        "steps", 15, 50, 15, True, lambda v: 15 + int(35 * v / 127), "denoising steps"
    ),
    "base_seed": ParamSpec("base_seed", 0, 1024, 0, True, lambda v: 8 * v, "the seed's base"),
}


@dataclass(frozen=True)
class Params:
    """The pad's musical state at one report. Fields in ``PARAMS`` order."""

    alpha: float  # prompt A (0) .. prompt B (1)
    nudge: int
    cfg: float  # classifier-free guidance scale
    steps: int  # denoising steps
    base_seed: int

    @property
    def seed(self) -> int:
        return self.base_seed + self.nudge

    def as_dict(self) -> dict:
        """The JSON form used by ``monitor --json``: seed is base + nudge."""
        return {"alpha": self.alpha, "seed": self.seed, "cfg": self.cfg, "steps": self.steps}

    def record(self) -> dict:
        """Every parameter (typed as its spec says) and the seed: a take's metadata."""
        out: dict = {}
        for name, spec in PARAMS.items():
            value = getattr(self, name)
            out[name] = int(value) if spec.integer else float(value)
        out["seed"] = int(self.seed)
        return out


assert tuple(f.name for f in dataclasses.fields(Params)) == tuple(PARAMS)


class Event(str, Enum):
    """What a button (or a trigger press, or a hold) asks of the instrument."""

    FIRE = "fire"
    PROMOTE = "promote"
    NEXT_PROMPT = "next_prompt"
    PREV_PROMPT = "prev_prompt"
    NEXT_SEED_IMAGE = "next_seed_image"
    PREV_SEED_IMAGE = "prev_seed_image"
    REPLAY = "replay"
    STOP = "stop"
    JAM = "jam"
    TAP_TEMPO = "tap_tempo"
    HELP = "help"
    QUIT = "quit"

    def __str__(self) -> str:
        return self.value


EVENTS: tuple[str, ...] = tuple(e.value for e in Event)

# What each event does, in the player's words (the help event shows these).
EVENT_HELP: dict[Event, str] = {
    Event.FIRE: "fire: render a take of what the pad plays now",
    Event.PROMOTE: "promote: the blend becomes prompt A",
    Event.NEXT_PROMPT: "next prompt B",
    Event.PREV_PROMPT: "previous prompt B",
    Event.NEXT_SEED_IMAGE: "next seed image",
    Event.PREV_SEED_IMAGE: "previous seed image",
    Event.REPLAY: "replay the last take",
    Event.STOP: "stop playback and the jam",
    Event.TAP_TEMPO: "tap the jam's tempo (two taps or more; flashes on the beat)",
    Event.JAM: "jam on/off",
    Event.HELP: "this help",
    Event.QUIT: "quit",
}
assert set(EVENT_HELP) == set(Event)
