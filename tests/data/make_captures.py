"""Regenerate the small captures in this folder (deterministic): python tests/data/make_captures.py

They are synthetic (built from the byte layouts in the reference, not recorded from a pad);
tests check `riffpad monitor --json` output against them line by line.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]

from support.fakehid import bt_report, bt_simple_report, usb_report  # noqa: E402

from riffpad.pad import features  # noqa: E402
from riffpad.pad.capture import CaptureWriter, make_header  # noqa: E402
from riffpad.pad.state import Battery, Button, TouchPoint, Transport  # noqa: E402

USB, BT = Transport.USB, Transport.BLUETOOTH
MAC = "a0:ab:51:5e:c0:01"


def headers(transport):
    replies = {
        features.PAIRING_ID: features.pairing_report(MAC, transport),
        features.FIRMWARE_ID: features.firmware_report(features.DEFAULT_FIRMWARE, transport),
        features.CALIBRATION_ID: features.calibration_report(
            features.DEFAULT_CALIBRATION_FIELDS, transport
        ),
    }
    serial = MAC if transport is BT else MAC.replace(":", "")
    return make_header(transport, serial=serial, mac=MAC, feature_replies=replies)


def usb_short():
    reports = [
        usb_report(seq=0),
        usb_report(seq=1, lx=0, ly=255, buttons=Button.CROSS, hat=0),
        usb_report(seq=2, rx=200, ry=60, l2=128, r2=255, buttons=Button.R2 | Button.L1, hat=3),
        usb_report(
            seq=3,
            touch=(TouchPoint(True, 5, 1919, 1079), TouchPoint(False, 4, 0, 0)),
            gyro=(1, -2, 3),
            accel=(-8192, 0, 8192),
            battery=Battery(8, 1),
        ),
        usb_report(seq=4, buttons=Button.PS | Button.MUTE | Button.TOUCHPAD, hat=8),
    ]
    with CaptureWriter(HERE / "usb_short.jsonl", headers(USB)) as w:
        for i, r in enumerate(reports):
            w.write(i * 0.004, r)


def bt_short():
    reports = [
        bt_simple_report(lx=10, r2=200, buttons=Button.TRIANGLE | Button.PS, hat=6),
        bt_simple_report(lx=11),
        bt_report(
            seq=7, lx=12, touch=(TouchPoint(True, 1, 960, 540), TouchPoint(True, 2, 100, 200))
        ),
        bt_report(seq=8, ly=1, gyro=(-32768, 32767, 0), battery=Battery(10, 2)),
    ]
    with CaptureWriter(HERE / "bt_short.jsonl", headers(BT)) as w:
        for i, r in enumerate(reports):
            w.write(i * 0.001, r)


def bt_malformed():
    good = bt_report(seq=1, lx=1)
    bad_crc = bytearray(bt_report(seq=2))
    bad_crc[-1] ^= 0xFF
    reports = [
        good,
        bytes(bad_crc),
        bt_report(seq=3)[:40],  # cut short
        bytes([0x11]) + bytes(77),  # not an input report ID
        usb_report(seq=4),  # a USB layout over Bluetooth
        bytes([0x01]) + bytes(19),  # report 0x01, neither 10 nor 64 bytes
        bt_report(seq=5, lx=5),
    ]
    path = HERE / "bt_malformed.jsonl"
    with CaptureWriter(path, headers(BT)) as w:
        for i, r in enumerate(reports):
            w.write(i * 0.001, r)
    # The recording was killed mid-line: a truncated last line without newline.
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"t": 0.007, "report": "3100')


if __name__ == "__main__":
    usb_short()
    bt_short()
    bt_malformed()
