"""Build the calibration captures in tests/data (``python tests/support/calib_capture.py``
rewrites them).

A scripted performer: leaves the pad alone (with a bump that must restart the rest step),
circles both sticks three times, squeezes both triggers twice. Reports are laid out by hand
from the reference (USB 0x01: [1..4] LX LY RX RY, [5] L2, [6] R2, [7] seq, [8..10] buttons
with the hat in the low nibble of [8], touch point 0 at [33..36]; Bluetooth 0x31: the same
block one byte later, CRC32 seeded with 0xA1 in the last four bytes).
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
MAC = "a0:ab:51:12:34:56"
SETTLE = 64  # reports each step skips (hidraw's queue)

# What the scripted pad does, and so what calibrate must measure.
LEFT_CENTRE, RIGHT_CENTRE = (130, 126), (127, 129)
LEFT_JITTER, RIGHT_JITTER = 2, 1
LEFT_MIN, LEFT_MAX = (3, 1), (252, 254)
RIGHT_MIN, RIGHT_MAX = (0, 0), (255, 255)
L2_REST_MAX, R2_REST_MAX = 2, 1
L2_PEAK, R2_PEAK = 243, 255


def block(
    seq: int, lx=128, ly=128, rx=128, ry=128, l2=0, r2=0, buttons=0, hat=8, touch_x=None
) -> bytearray:
    """``buttons``: the three button bytes as one little-endian int (hat bits ignored);
    ``touch_x``: touch point 0 active at that x (y 540), or None for no finger."""
    b = bytearray(63)  # the common block after the report ID
    b[0], b[1], b[2], b[3] = lx, ly, rx, ry
    b[4], b[5] = l2, r2
    b[6] = seq & 0xFF
    b[7:10] = ((buttons & ~0x0F) | (hat & 0x0F)).to_bytes(3, "little")
    if touch_x is None:
        b[32] = 0x80  # touch point 0 inactive
    else:
        y = 540
        b[32:36] = bytes([0x01, touch_x & 0xFF, (touch_x >> 8) | (y & 0x0F) << 4, y >> 4])
    b[36] = 0x80  # touch point 1 inactive
    b[52] = 0x05  # battery half, discharging
    return b


def usb(seq: int, **f) -> bytes:
    report = bytes([0x01]) + bytes(block(seq, **f))
    assert len(report) == 64
    return report


def bt(seq: int, **f) -> bytes:
    body = bytes([0x31, 0x00]) + bytes(block(seq, **f)) + bytes(9)
    assert len(body) == 74
    return body + zlib.crc32(bytes([0xA1]) + body).to_bytes(4, "little")


def _edge(c: int, lo: int, hi: int, u: float) -> int:
    return round(c + (hi - c) * u) if u >= 0 else round(c + (c - lo) * u)


def performance() -> list[dict]:
    """Field values, one dict per report."""
    jitter = [0, 1, -1, 2, -2, 1, -1, 0]
    out: list[dict] = []

    def rest(n: int, bump: bool = False) -> None:
        for i in range(n):
            j = jitter[i % len(jitter)]
            lj, rj = (
                max(-LEFT_JITTER, min(LEFT_JITTER, j)),
                max(-RIGHT_JITTER, min(RIGHT_JITTER, j)),
            )
            f = {
                "lx": LEFT_CENTRE[0] + lj,
                "ly": LEFT_CENTRE[1] - lj,
                "rx": RIGHT_CENTRE[0] + rj,
                "ry": RIGHT_CENTRE[1] - rj,
                "l2": (i % 3) * L2_REST_MAX // 2,
                "r2": (i % 2) * R2_REST_MAX,
            }
            if bump and 100 <= i < 105:  # a thumb brushes the left stick: rest restarts
                f["lx"] = LEFT_CENTRE[0] + 40
            out.append(f)

    # Step 1: reading the instructions (skipped), then resting with one bump.
    rest(SETTLE)
    out[10]["rx"] = 250  # moving during the settle reports is ignored
    rest(110 + 250 + 20, bump=True)
    # Step 2: circle three times, the right stick the other way round, then let go.
    rest(SETTLE)
    for k in range(3 * 180):
        a = 2 * math.pi * k / 180
        c, s = math.cos(a), math.sin(a)
        out.append(
            {
                "lx": _edge(LEFT_CENTRE[0], LEFT_MIN[0], LEFT_MAX[0], c),
                "ly": _edge(LEFT_CENTRE[1], LEFT_MIN[1], LEFT_MAX[1], s),
                "rx": _edge(RIGHT_CENTRE[0], RIGHT_MIN[0], RIGHT_MAX[0], c),
                "ry": _edge(RIGHT_CENTRE[1], RIGHT_MIN[1], RIGHT_MAX[1], -s),
            }
        )
    rest(30)
    # Step 3: two squeezes of both triggers, then let go.
    rest(SETTLE)
    for _ in range(2):
        ramp = [i / 50 for i in range(51)]
        for u in [*ramp, *([1.0] * 20), *reversed(ramp)]:
            f = {"lx": LEFT_CENTRE[0], "ly": LEFT_CENTRE[1]}
            f.update(rx=RIGHT_CENTRE[0], ry=RIGHT_CENTRE[1])
            f.update(l2=round(L2_PEAK * u), r2=round(R2_PEAK * u))
            out.append(f)
    rest(50)
    return out


def lines(transport: str = "usb") -> list[str]:
    header = {
        "format": "riffpad-capture",
        "version": 1,
        "transport": transport,
        "vendor_id": 1356,
        "product_id": 3302,
        "model": "DualSense",
        "serial": MAC.replace(":", ""),
        "mac": MAC,
    }
    make = usb if transport == "usb" else bt
    rows = [json.dumps(header)]
    for i, f in enumerate(performance()):
        rows.append(json.dumps({"t": round(i * 0.004, 6), "report": make(i, **f).hex()}))
    return rows


def write(path: Path, transport: str = "usb", keep: int | None = None) -> Path:
    rows = lines(transport)
    path.write_text("\n".join(rows[:keep]) + "\n")
    return path


if __name__ == "__main__":
    DATA.mkdir(exist_ok=True)
    print(write(DATA / "calib_usb.jsonl"))  # the Bluetooth one is built by the test
