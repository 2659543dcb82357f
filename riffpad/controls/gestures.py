"""The performer's gestures as small pure state machines: press, release, hold.

A gesture turns a level (a button's 0/1 or a trigger's travel 0..1) sampled over time
into at most one event per press. Triggers use hysteresis so a trigger resting near the
threshold, with a few counts of noise, cannot fire twice.
"""

from __future__ import annotations

from typing import NamedTuple


class GateState(NamedTuple):
    down: bool = False
    since: float = 0.0  # time of the press
    fired: bool = False  # the event for this press has been sent


RELEASED = GateState()


def gate_step(
    state: GateState, level: float, t: float, *, press: float, release: float, hold: float = 0.0
) -> tuple[GateState, bool]:
    """Advance one sample. Returns (new state, whether the event fires now).

    Pressed when ``level >= press``; released again only when ``level < release``
    (``release < press``). With ``hold`` > 0 the event fires once the press has lasted
    ``hold`` seconds, otherwise on the press itself.
    """
    if state.down:
        if level < release:
            return RELEASED, False
        if not state.fired and t - state.since >= hold:
            return state._replace(fired=True), True
        return state, False
    if level >= press:
        fire = hold <= 0.0
        return GateState(True, t, fire), fire
    return state, False


def button_step(state: GateState, pressed: bool, t: float, hold: float = 0.0):
    """A digital button: one event per rising edge (or per press held ``hold`` seconds)."""
    return gate_step(state, 1.0 if pressed else 0.0, t, press=0.5, release=0.5, hold=hold)
