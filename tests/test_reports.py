"""Input report parsing: golden vectors from the reference (§10), rejections, CRC."""

from riffpad.pad.reports import (
    CRC_SEED_INPUT,
    Rejected,
    crc32_ok,
    parse_input,
    sign,
)
from riffpad.pad.state import Battery, Button, DPad, ReportKind, TouchPoint, Transport

# dualsense-hid.md §10 (hid-tools 0.12 emulation): left=(10,20), right=(30,40), hat E,
# Cross + Options, touch id 1 at (100,200), battery byte 0x2a.
GOLDEN_USB = bytes.fromhex(
    "01 0a 14 1e 28 00 00 00 22 20 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
    "83 1f 02 00 00 00 00 00 00 01 64 80 0c 80 00 00 00 00 00 00 00 00 00 00 "
    "00 00 00 00 00 2a 00 00 00 00 00 00 00 00 00 00"
)
GOLDEN_BT = bytes.fromhex(
    "31 00 0a 14 1e 28 00 00 00 22 20 00 00 00 00 00 00 00 00 00 00 00 00 00 "
    "00 83 1f 02 00 00 00 00 00 00 01 64 80 0c 80 00 00 00 00 00 00 00 00 00 "
    "00 00 00 00 00 00 2a 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
    "00 00 bf 36 78 e6"
)


def test_golden_lengths():
    assert len(GOLDEN_USB) == 64 and len(GOLDEN_BT) == 78


def test_golden_usb_and_bt_parse_to_same_fields():
    for data, transport, kind in (
        (GOLDEN_USB, Transport.USB, ReportKind.USB),
        (GOLDEN_BT, Transport.BLUETOOTH, ReportKind.BT_FULL),
    ):
        s = parse_input(data, transport)
        assert s.kind is kind
        assert (s.lx, s.ly, s.rx, s.ry, s.l2, s.r2) == (10, 20, 30, 40, 0, 0)
        assert s.buttons == Button.CROSS | Button.OPTIONS
        assert s.dpad is DPad.E
        assert s.touch == (TouchPoint(True, 1, 100, 200), TouchPoint(False, 0, 0, 0))
        # hid-tools converts accel (0, 8192, 0) back to raw through its calibration.
        assert s.accel == (0, 0x1F83, 2) and s.gyro == (0, 0, 0)
        assert s.battery == Battery(level=10, status=2)


def test_golden_bt_crc_and_sign():
    assert crc32_ok(GOLDEN_BT, CRC_SEED_INPUT)
    assert sign(GOLDEN_BT[:74] + bytes(4), CRC_SEED_INPUT) == GOLDEN_BT


def test_rejections():
    assert parse_input(GOLDEN_BT, Transport.USB) == Rejected("wrong_transport", 78)
    assert parse_input(GOLDEN_USB, Transport.BLUETOOTH) == Rejected("wrong_transport", 64)
    bad = bytearray(GOLDEN_BT)
    bad[5] ^= 1
    assert parse_input(bad, Transport.BLUETOOTH) == Rejected("bad_crc", 78)
    assert parse_input(b"", Transport.USB) == Rejected("empty", 0)
    assert parse_input(GOLDEN_USB[:63], Transport.USB) == Rejected("bad_length", 63)
    assert parse_input(b"\x05" + GOLDEN_USB[1:], Transport.USB) == Rejected("unknown_id", 64)
