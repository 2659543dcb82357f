"""Pad scripts and captures: what a player does, as input reports at 250 reports/s."""

from __future__ import annotations

from riffpad.pad.capture import CaptureWriter, make_header
from riffpad.pad.state import Button, TouchPoint, Transport

from .reportgen import NO_TOUCH, bt_full_report, usb_report

DT = 0.004  # 250 reports/s, as a DualSense over USB


def report_for(transport, **fields):
    return usb_report(**fields) if transport is Transport.USB else bt_full_report(**fields)


def pad_script(segments):
    """[(seconds, fields)] -> [(t, fields)] at 250 reports/s."""
    out, t = [], 0.0
    for seconds, fields in segments:
        for _ in range(max(1, round(seconds / DT))):
            out.append((round(t, 6), fields))
            t += DT
    return out


def write_capture(path, script, transport=Transport.BLUETOOTH):
    with CaptureWriter(path, make_header(transport, mac="a0:ab:51:00:00:07")) as w:
        for i, (t, fields) in enumerate(script):
            w.write(t, report_for(transport, seq=i & 0xFF, **fields))
    return path


TOUCH = (TouchPoint(True, 1, 480, 500), NO_TOUCH)
IDLE = dict(rx=0, ly=128, l2=0, r2=0, touch=TOUCH)
FIRE = dict(IDLE, r2=255)
MOVED = dict(rx=255, ly=0, l2=200, r2=0, touch=TOUCH)
MOVED_FIRE = dict(MOVED, r2=255)
MOVED2 = dict(rx=128, ly=255, l2=90, r2=0, touch=TOUCH)
MOVED2_FIRE = dict(MOVED2, r2=255)
JAM = dict(IDLE, buttons=Button.SQUARE)


def decode(report_hex):
    """(lightbar, rumble, player LEDs) of an output report: the common block is at byte 1
    (USB 0x02) or 3 (Bluetooth 0x31)."""
    r = bytes.fromhex(report_hex)
    at = 1 if r[0] == 0x02 else 3
    c = r[at : at + 47]
    return (c[44], c[45], c[46]), (c[3], c[2]), c[43]
