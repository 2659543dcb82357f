"""Regenerate the shipped demo capture (deterministic): python tests/data/make_demo.py

``riffpad --replay demo`` plays it: a 29 s performance on a USB DualSense, for newcomers
without a pad. It is synthetic, built with the test report builders (tests/support/reportgen.py)
from the keyframes below, at 50 reports/s: a real USB pad sends 250/s, but 50/s keeps the
file small (about 225 KB) and is still smooth for sticks that move over seconds.

The performance (seconds):

* 0.5-1    right stick to the left (alpha 0: prompt A), a finger lands on the touchpad,
           L2 rests lightly (16 steps: steps stay at 15-19, quick renders on a CPU)
* 1.5      R2: fire 1
* 2.5-8.5  right stick sweeps A -> B, the finger scrubs the seed right, left stick up (CFG up)
* 8.5      R2: fire 2
* 8.5-15.5 the finger scrubs on, left stick down (CFG down), L2 a little deeper (19 steps)
* 15.5     R2: fire 3
* 17       Cross: the blend becomes prompt A
* 18       D-pad right: the next prompt B
* 18.5-22.5 the finger lifts and lands again to scrub back, the right stick drifts toward A
* 23       R2: fire 4
* 23.5-29  hands off, time for the last take

Fires are 7 s apart so that each gets its own take even where a take needs several seconds
(the instrument keeps one waiting fire; a newer one replaces it).
"""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(HERE.parent), str(ROOT)]

from support.reportgen import NO_TOUCH, usb_report  # noqa: E402

from riffpad.pad import features  # noqa: E402
from riffpad.pad.capture import CaptureWriter, make_header  # noqa: E402
from riffpad.pad.state import Battery, Button, TouchPoint, Transport  # noqa: E402

OUT = ROOT / "riffpad" / "data" / "demo.jsonl"
RATE = 50  # reports per second
DURATION = 29.0
MAC = "a0:ab:51:de:30:00"
TOUCH_Y = 540

# Keyframes (t, raw value), linear in between; values hold before the first/after the last.
RX = [(0.5, 129), (1.0, 0), (2.5, 0), (8.5, 240), (10.0, 255), (12.0, 255), (14.5, 170),
      (18.5, 170), (22.5, 70), (24.5, 70), (25.0, 129)]  # fmt: skip
LY = [(2.5, 127), (7.5, 30), (9.5, 30), (14.0, 200), (18.5, 200), (21.5, 100), (24.5, 100),
      (25.0, 127)]  # fmt: skip
L2 = [(0.5, 0), (1.0, 10), (8.5, 10), (12.0, 30), (18.5, 30), (21.5, 12), (24.5, 12),
      (24.8, 0)]  # fmt: skip
# Touchpad finger x (0..1919) while it touches; each span is one contact.
FINGER = [
    (0.8, 18.5, [(0.8, 200), (2.5, 200), (8.5, 900), (15.5, 1500)]),
    (19.5, 24.0, [(19.5, 1700), (22.5, 600)]),
]
FIRES = [1.5, 8.5, 15.5, 23.0]  # R2 pulls
CROSS = 17.0
DPAD_RIGHT = 18.0
PRESS_S = 0.16  # how long a button is held
DPAD_EAST = 2
HAT_CENTRED = 8


def track(keys: list[tuple[float, float]], t: float) -> int:
    if t <= keys[0][0]:
        return round(keys[0][1])
    for (t0, v0), (t1, v1) in itertools.pairwise(keys):
        if t <= t1:
            return round(v0 + (v1 - v0) * (t - t0) / (t1 - t0))
    return round(keys[-1][1])


def r2(t: float) -> int:
    """Each pull: 60 ms down to the floor, held, 80 ms back up."""
    for start in FIRES:
        u = t - start
        if 0 <= u < 0.06:
            return round(255 * u / 0.06)
        if 0.06 <= u < 0.06 + PRESS_S:
            return 255
        if 0.06 + PRESS_S <= u < 0.06 + PRESS_S + 0.08:
            return round(255 * (1 - (u - 0.06 - PRESS_S) / 0.08))
    return 0


def touch(t: float) -> tuple[TouchPoint, TouchPoint]:
    for contact, (start, end, keys) in enumerate(FINGER, start=1):
        if start <= t < end:
            return TouchPoint(True, contact, track(keys, t), TOUCH_Y), NO_TOUCH
        if end <= t and (contact == len(FINGER) or t < FINGER[contact][0]):
            # a lifted finger keeps its id and last position, marked inactive
            return TouchPoint(False, contact, track(keys, end), TOUCH_Y), NO_TOUCH
    return NO_TOUCH, NO_TOUCH


def report(i: int) -> bytes:
    t = i / RATE
    pressed = lambda at: at <= t < at + PRESS_S  # noqa: E731
    # A hand on the pad is never still: a little sensor motion, sticks a count off centre.
    wobble = math.sin(t * 2.1)
    return usb_report(
        lx=128,
        ly=track(LY, t),
        rx=track(RX, t),
        ry=127,
        l2=track(L2, t),
        r2=r2(t),
        seq=i & 0xFF,
        buttons=int(Button.CROSS) if pressed(CROSS) else 0,
        hat=DPAD_EAST if pressed(DPAD_RIGHT) else HAT_CENTRED,
        gyro=(round(40 * wobble), round(-25 * wobble), 3),
        accel=(round(300 * wobble), 8100, round(-1200 + 200 * wobble)),
        sensor_timestamp=(i * 3_000_000 // RATE) & 0xFFFFFFFF,  # units of 1/3 µs
        touch=touch(t),
        battery=Battery(level=8, status=1),  # charging over the cable
    )


def header() -> dict:
    usb = Transport.USB
    replies = {
        features.PAIRING_ID: features.pairing_report(MAC, usb),
        features.FIRMWARE_ID: features.firmware_report(features.DEFAULT_FIRMWARE, usb),
        features.CALIBRATION_ID: features.calibration_report(
            features.DEFAULT_CALIBRATION_FIELDS, usb
        ),
    }
    return make_header(usb, serial=MAC.replace(":", ""), mac=MAC, feature_replies=replies)


def write(path: Path = OUT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with CaptureWriter(path, header()) as w:
        for i in range(round(DURATION * RATE) + 1):
            w.write(i / RATE, report(i))
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
