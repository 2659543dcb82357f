"""A readable DualSense input-report *builder* for tests, written independently of the parser.

It writes each field at the byte offset the reference table gives (dualsense-hid.md §2.1,
"offset in block"), one assignment per field, with no struct formats shared with
``riffpad.pad.reports``. The CRC is computed straight from zlib over seed byte + report,
as the kernel's ps_check_crc32 describes, without ``reports.sign``.
"""

from __future__ import annotations

import zlib

from riffpad.pad.state import Battery, PadState, ReportKind, TouchPoint

BLOCK_SIZE = 63

# Offsets inside the 63-byte common block (kernel struct dualsense_input_report).
LX, LY, RX, RY = 0, 1, 2, 3
L2_ANALOG, R2_ANALOG = 4, 5
SEQ = 6
BUTTONS0, BUTTONS1, BUTTONS2, BUTTONS3 = 7, 8, 9, 10
GYRO = 15  # x, y, z int16 LE
ACCEL = 21  # x, y, z int16 LE
SENSOR_TIMESTAMP = 27  # u32 LE
TOUCH0, TOUCH1 = 32, 36
STATUS = 52  # battery level | charging state << 4


def _int16(value: int) -> bytes:
    return value.to_bytes(2, "little", signed=True)


def touch_bytes(tp: TouchPoint) -> bytes:
    """The 4 bytes of one touch point: contact (bit 7 = inactive), x_lo, x_hi|y_lo<<4, y_hi."""
    contact = (tp.id & 0x7F) | (0 if tp.active else 0x80)
    return bytes(
        [
            contact,
            tp.x & 0xFF,
            ((tp.x >> 8) & 0x0F) | ((tp.y & 0x0F) << 4),
            (tp.y >> 4) & 0xFF,
        ]
    )


NO_TOUCH = TouchPoint(active=False, id=0, x=0, y=0)
HALF_BATTERY = Battery(level=5, status=0)


def common_block(
    *,
    lx: int = 128,
    ly: int = 128,
    rx: int = 128,
    ry: int = 128,
    l2: int = 0,
    r2: int = 0,
    seq: int = 0,
    buttons: int = 0,
    hat: int = 8,
    gyro: tuple[int, int, int] = (0, 0, 0),
    accel: tuple[int, int, int] = (0, 0, 0),
    sensor_timestamp: int = 0,
    touch: tuple[TouchPoint, TouchPoint] = (NO_TOUCH, NO_TOUCH),
    battery: Battery = HALF_BATTERY,
    filler: int = 0,
) -> bytearray:
    """The 63-byte block; ``filler`` goes in every byte no field owns (reserved/unknown)."""
    b = bytearray([filler]) * BLOCK_SIZE
    b[LX], b[LY], b[RX], b[RY] = lx, ly, rx, ry
    b[L2_ANALOG], b[R2_ANALOG] = l2, r2
    b[SEQ] = seq
    b[BUTTONS0] = (hat & 0x0F) | (buttons & 0xF0)
    b[BUTTONS1] = (buttons >> 8) & 0xFF
    # bit 3 of buttons[2] has no known meaning: the filler keeps it
    b[BUTTONS2] = ((buttons >> 16) & 0xF7) | (filler & 0x08)
    for i, v in enumerate(gyro):
        b[GYRO + 2 * i : GYRO + 2 * i + 2] = _int16(v)
    for i, v in enumerate(accel):
        b[ACCEL + 2 * i : ACCEL + 2 * i + 2] = _int16(v)
    b[SENSOR_TIMESTAMP : SENSOR_TIMESTAMP + 4] = sensor_timestamp.to_bytes(4, "little")
    b[TOUCH0 : TOUCH0 + 4] = touch_bytes(touch[0])
    b[TOUCH1 : TOUCH1 + 4] = touch_bytes(touch[1])
    b[STATUS] = (battery.level & 0x0F) | ((battery.status & 0x0F) << 4)
    return b


def usb_report(**fields) -> bytes:
    """USB input report 0x01: 64 bytes."""
    return bytes([0x01]) + bytes(common_block(**fields))


def bt_crc(body: bytes, seed: int = 0xA1) -> bytes:
    """CRC-32 over the seed byte then ``body``, little-endian (kernel ps_check_crc32)."""
    return zlib.crc32(bytes([seed]) + body).to_bytes(4, "little")


def bt_full_report(*, byte1: int = 0, tail: bytes = bytes(9), **fields) -> bytes:
    """Bluetooth input report 0x31: 78 bytes, CRC (seed 0xA1) in the last 4."""
    body = bytes([0x31, byte1]) + bytes(common_block(**fields)) + tail
    assert len(body) == 74
    return body + bt_crc(body)


def bt_simple_report(
    *,
    lx: int = 128,
    ly: int = 128,
    rx: int = 128,
    ry: int = 128,
    l2: int = 0,
    r2: int = 0,
    buttons: int = 0,
    hat: int = 8,
    counter: int = 0,
) -> bytes:
    """Bluetooth simple report 0x01: 10 bytes (SDL PS5SimpleStatePacket_t)."""
    return bytes(
        [
            0x01,
            lx,
            ly,
            rx,
            ry,
            (hat & 0x0F) | (buttons & 0xF0),
            (buttons >> 8) & 0xFF,
            ((buttons >> 16) & 0x03) | ((counter & 0x3F) << 2),
            l2,
            r2,
        ]
    )


def report_for(state: PadState, **extra) -> bytes:
    """The report that should parse back to ``state`` (extra: filler, byte1, tail, counter)."""
    if state.kind is ReportKind.BT_SIMPLE:
        return bt_simple_report(
            lx=state.lx,
            ly=state.ly,
            rx=state.rx,
            ry=state.ry,
            l2=state.l2,
            r2=state.r2,
            buttons=state.buttons,
            hat=state.hat,
            **extra,
        )
    fields = dict(
        lx=state.lx,
        ly=state.ly,
        rx=state.rx,
        ry=state.ry,
        l2=state.l2,
        r2=state.r2,
        seq=state.seq,
        buttons=state.buttons,
        hat=state.hat,
        gyro=state.gyro,
        accel=state.accel,
        sensor_timestamp=state.sensor_timestamp,
        touch=state.touch,
        battery=state.battery,
    )
    if state.kind is ReportKind.USB:
        return usb_report(**fields, **extra)
    return bt_full_report(**fields, **extra)
