"""What the pad shows and feels: a pure function of time, parameters and the last events.

The app asks for a Feedback on every report (and on idle ticks); the reader writes only
when it differs from the last one written. So this policy must only change its answer a
few times per second while something animates: the pulse is quantised in time, flashes
and rumbles are fixed-length windows.
"""

from __future__ import annotations

import colorsys
import math
import zlib
from dataclasses import dataclass, field

from riffpad.controls.params import PARAMS
from riffpad.pad.output import Feedback, TriggerEffect

RGB = tuple[int, int, int]

STEPS_MIN, STEPS_MAX = int(PARAMS["steps"].lo), int(PARAMS["steps"].hi)  # the LED bar's span
LED_LEVELS = (0x01, 0x03, 0x07, 0x0F, 0x1F)  # 1..5 player LEDs lit, left to right
RED: RGB = (255, 0, 0)
WHITE: RGB = (255, 255, 255)
# Leaving the pad as the kernel sets it up: blue lightbar, nothing else on.
SANE = Feedback(
    lightbar=(0, 0, 128),
    player_leds=0,
    led_brightness=None,
    rumble=(0, 0),
    right_trigger=TriggerEffect.off(),
    left_trigger=TriggerEffect.off(),
)


def prompt_colour(text: str) -> RGB:
    """A stable, saturated colour for a prompt (the same prompt is always the same colour)."""
    hue = (zlib.crc32(text.encode()) % 360) / 360
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return round(r * 255), round(g * 255), round(b * 255)


def parse_colour(value: str) -> RGB:
    """``#rrggbb`` -> (r, g, b)."""
    v = value.strip().lstrip("#")
    if len(v) != 6:
        raise ValueError(f"colour {value!r} is not #rrggbb")
    return int(v[0:2], 16), int(v[2:4], 16), int(v[4:6], 16)


def blend(a: RGB, b: RGB, alpha: float) -> RGB:
    t = min(1.0, max(0.0, alpha))
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def scaled(c: RGB, k: float) -> RGB:
    return tuple(round(x * k) for x in c)  # type: ignore[return-value]


def _steps_u(steps: int) -> float:
    """``steps`` on 0..1 over the pad's 15..50 range."""
    return (min(STEPS_MAX, max(STEPS_MIN, steps)) - STEPS_MIN) / (STEPS_MAX - STEPS_MIN)


def step_leds(steps: int) -> int:
    """5-LED bar over 15..50 steps: 15 lights one LED, 50 all five."""
    return LED_LEVELS[min(4, int(_steps_u(steps) * 5))]


def trigger_resistance(steps: int) -> TriggerEffect:
    """L2 resists more the more steps it asks for (strength 1..8 from the start of travel)."""
    return TriggerEffect.feedback(0, 1 + round(_steps_u(steps) * 7))


@dataclass
class FeedbackPolicy:
    colour_a: RGB
    colour_b: RGB
    trigger_feel: bool = False
    pulse_hz: float = 1.0  # one breath per second while generating
    pulse_updates: int = 8  # lightbar writes per second while pulsing
    pulse_floor: float = 0.25
    flash_s: float = 0.15
    done_rumble: tuple[int, int] = (0, 180)  # light, weak motor
    done_rumble_s: float = 0.12
    error_s: float = 1.2  # red for this long
    error_rumble: tuple[int, int] = (200, 0)
    error_pulse_s: float = 0.12  # on, off, on
    _done_at: float | None = None
    _error_at: float | None = None
    _cache: dict = field(default_factory=dict, repr=False)
    # Bumped by every change other than time and params (colours, done, error): a frame
    # computed when nothing animates stays right while (alpha, steps, generation) is equal.
    generation: int = 0

    def set_colours(self, colour_a: RGB, colour_b: RGB) -> None:
        self.colour_a, self.colour_b = colour_a, colour_b
        self.generation += 1

    def done(self, now: float) -> None:
        self._done_at = now
        self._error_at = None
        self.generation += 1

    def error(self, now: float) -> None:
        self._error_at = now
        self._done_at = None
        self.generation += 1

    def animating(self, now: float, busy: bool) -> bool:
        """True while the answer changes with time alone (the loop must keep ticking)."""
        if busy:
            return True
        if self._done_at is not None and now - self._done_at < max(
            self.flash_s, self.done_rumble_s
        ):
            return True
        return self._error_at is not None and now - self._error_at < self.error_s

    def frame(self, now: float, *, alpha: float, steps: int, busy: bool) -> Feedback:
        colour = blend(self.colour_a, self.colour_b, alpha)
        rumble = (0, 0)
        if self._error_at is not None and now - self._error_at < self.error_s:
            dt = now - self._error_at
            colour = RED
            if int(dt / self.error_pulse_s) in (0, 2):
                rumble = self.error_rumble
        elif self._done_at is not None and now - self._done_at < self.flash_s:
            colour = WHITE
        elif busy:
            # Quantised breathing: the value only changes pulse_updates times per second.
            q = math.floor(now * self.pulse_updates) / self.pulse_updates
            k = self.pulse_floor + (1 - self.pulse_floor) * (
                0.5 + 0.5 * math.cos(2 * math.pi * self.pulse_hz * q)
            )
            colour = scaled(colour, k)
        if self._done_at is not None and now - self._done_at < self.done_rumble_s:
            rumble = self.done_rumble
        leds = step_leds(steps)
        trigger = steps if self.trigger_feel else None
        # Called for every report: reuse the (validated, immutable) Feedback of the same look.
        key = (colour, rumble, leds, trigger)
        fb = self._cache.get(key)
        if fb is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            fb = self._cache[key] = Feedback(
                lightbar=colour,
                player_leds=leds,
                led_brightness=None,
                rumble=rumble,
                right_trigger=None,
                left_trigger=trigger_resistance(steps) if self.trigger_feel else None,
            )
        return fb
