"""Parse DualSense input reports (raw hidapi bytes) into ``PadState``.

Pure functions only: no I/O, no counters, never raises. Layouts follow the Linux kernel's
hid-playstation.c (``struct dualsense_input_report``, 63 bytes after the report ID) and
SDL's ``PS5SimpleStatePacket_t`` (SDL_hidapi_ps5.c) for the 10-byte Bluetooth "simple"
report.

Accepted reports:

* USB 0x01, 64 bytes: ID + common block.
* Bluetooth 0x31, 78 bytes: ID, one unknown byte, common block at 2, CRC32 at 74..77
  (seed 0xA1 over bytes 0..73).
* Bluetooth 0x01, 10 bytes ("simple" mode, before the pad is switched to full reports).

Everything else comes back as ``Rejected(reason, length)`` with one of ``REASONS``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import fields
from typing import NamedTuple

from .state import Battery, PadState, ReportKind, TouchPoint, Transport

__all__ = [
    "BT_FULL_ID",
    "BT_FULL_SIZE",
    "BT_SIMPLE_SIZE",
    "CRC_SEED_FEATURE_IN",
    "CRC_SEED_FEATURE_OUT",
    "CRC_SEED_INPUT",
    "CRC_SEED_OUTPUT",
    "REASONS",
    "USB_ID",
    "USB_SIZE",
    "Rejected",
    "crc32",
    "crc32_ok",
    "parse_input",
    "sign",
]

# Bluetooth CRC seeds = the HIDP transaction header byte (kernel PS_*_CRC32_SEED; 0x53 from
# dualsensectl, for SET_REPORT of a feature).
CRC_SEED_INPUT = 0xA1
CRC_SEED_OUTPUT = 0xA2
CRC_SEED_FEATURE_IN = 0xA3
CRC_SEED_FEATURE_OUT = 0x53

USB_ID = 0x01
USB_SIZE = 64
BT_FULL_ID = 0x31
BT_FULL_SIZE = 78
BT_SIMPLE_ID = 0x01
BT_SIMPLE_SIZE = 10

# Rejection reasons (stable strings: readers count them, logs and tests name them).
BAD_TYPE = "bad_type"  # not bytes / bytearray / memoryview / sequence of 0..255
EMPTY = "empty"  # zero-length read
UNKNOWN_ID = "unknown_id"  # first byte is neither 0x01 nor 0x31
BAD_LENGTH = "bad_length"  # known ID, but no layout of that size
WRONG_TRANSPORT = "wrong_transport"  # a valid layout that this transport never sends
BAD_CRC = "bad_crc"  # Bluetooth 0x31 whose CRC32 does not match
BAD_TRANSPORT = "bad_transport"  # the transport argument is not a Transport
REASONS = (BAD_TYPE, EMPTY, UNKNOWN_ID, BAD_LENGTH, WRONG_TRANSPORT, BAD_CRC, BAD_TRANSPORT)


class Rejected(NamedTuple):
    """A report that was not parsed: why, and how many bytes it had (-1 if not countable)."""

    reason: str
    length: int


# --- CRC ------------------------------------------------------------------------------

# zlib.crc32 of the one-byte seed: the running CRC that the report bytes continue from.
_SEED_STATE = {seed: zlib.crc32(bytes((seed,))) for seed in range(256)}


def crc32(data: bytes, seed: int) -> int:
    """CRC-32 (IEEE) over ``bytes([seed]) + data``, as the pad computes it."""
    return zlib.crc32(data, _SEED_STATE[seed & 0xFF])


def crc32_ok(data: bytes | bytearray, seed: int) -> bool:
    """True when the last 4 bytes of ``data`` are the little-endian CRC of the rest."""
    if not isinstance(data, (bytes, bytearray)):
        data = bytes(data)  # memoryview, or hidapi's list of ints
    n = len(data)
    if n < 4:
        return False
    stored = int.from_bytes(data[n - 4 :], "little")
    return zlib.crc32(memoryview(data)[: n - 4], _SEED_STATE[seed & 0xFF]) == stored


def sign(data: bytes | bytearray, seed: int) -> bytes:
    """Return ``data`` with its last 4 bytes replaced by the CRC of the bytes before them."""
    buf = bytearray(data)
    n = len(buf)
    if n < 4:
        raise ValueError(f"a signed report needs at least 4 bytes, got {n}")
    buf[n - 4 :] = crc32(bytes(buf[: n - 4]), seed).to_bytes(4, "little")
    return bytes(buf)


# --- Layouts --------------------------------------------------------------------------

# The 63-byte common block (kernel struct dualsense_input_report), read from the byte after
# the report ID (USB) or after ID + one unknown byte (Bluetooth). Only up to the status
# byte (block offset 52) is parsed.
_COMMON = struct.Struct(
    "<"
    "4B"  # 0-3    lx, ly, rx, ry
    "2B"  # 4-5    l2, r2 (analogue)
    "B"  # 6      seq counter
    "I"  # 7-10   buttons[0..3]: hat in bits 0-3, buttons above (buttons[3] masked off)
    "4x"  # 11-14  reserved (SDL: packet sequence)
    "3h"  # 15-20  gyro x, y, z
    "3h"  # 21-26  accel x, y, z
    "I"  # 27-30  sensor timestamp, 0.33 us units
    "x"  # 31     reserved (SDL: sensor temperature)
    "Q"  # 32-39  touch points 0 and 1 (read as one LE word, decoded below)
    "12x"  # 40-51  reserved
    "B"  # 52     status: battery level (low nibble), charging state (high nibble)
)
assert _COMMON.size == 53  # block offsets 0..52
_COMMON_BLOCK_SIZE = 63  # kernel: static_assert(sizeof(struct dualsense_input_report) == 63)
assert 1 + _COMMON_BLOCK_SIZE == USB_SIZE
assert 2 + _COMMON_BLOCK_SIZE + 9 + 4 == BT_FULL_SIZE  # 9 unparsed bytes, then the CRC

# Bluetooth simple report 0x01 (SDL PS5SimpleStatePacket_t), after the ID.
_SIMPLE = struct.Struct(
    "<"
    "4B"  # 1-4  lx, ly, rx, ry
    "B"  # 5    hat (bits 0-3) + square/cross/circle/triangle
    "B"  # 6    L1 R1 L2 R2 Create Options L3 R3
    "B"  # 7    bit0 PS, bit1 touchpad, bits 2-7 counter
    "2B"  # 8-9  l2, r2 (analogue)
)
assert 1 + _SIMPLE.size == BT_SIMPLE_SIZE

# Hat bits 0-3 are not buttons; buttons[2] bit 3 and all of buttons[3] have no known meaning.
_BUTTON_BITS = 0x00F7FFF0
_SIMPLE_BYTE7_BUTTONS = 0x03  # PS, touchpad; the rest is a counter

_unpack_common = _COMMON.unpack_from
_unpack_simple = _SIMPLE.unpack_from
_crc = zlib.crc32
_BT_CRC_START = _SEED_STATE[CRC_SEED_INPUT]
_BT_CRC_AT = BT_FULL_SIZE - 4
_unpack_crc = struct.Struct("<I").unpack_from


def _fast_constructor(cls, names: tuple[str, ...]):
    """A positional constructor for the frozen slots dataclass ``cls`` that fills its slots
    directly. A frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__`` by name, which costs about half the parse; the result is the same
    object (tests compare the two). Falls back to ``cls`` itself if ``cls`` no longer has
    exactly the fields ``names`` (a field added to the contract keeps working, just slower).
    """
    if (
        tuple(f.name for f in fields(cls)) != names
        or getattr(cls, "__slots__", None) != names
        or hasattr(cls, "__post_init__")
    ):
        return cls
    setters = tuple(getattr(cls, name).__set__ for name in names)
    new = object.__new__

    def build(*values):
        obj = new(cls)
        for set_slot, value in zip(setters, values):  # noqa: B905 (same length by construction)
            set_slot(obj, value)
        return obj

    return build


_new_touch_point = _fast_constructor(TouchPoint, ("active", "id", "x", "y"))
_new_pad_state = _fast_constructor(
    PadState,
    (
        "kind",
        "lx",
        "ly",
        "rx",
        "ry",
        "l2",
        "r2",
        "buttons",
        "hat",
        "seq",
        "touch",
        "gyro",
        "accel",
        "sensor_timestamp",
        "battery",
    ),
)

# Shared immutable sub-objects, so a steady stream allocates little beyond the PadState.
_BATTERY = tuple(Battery(level=b & 0x0F, status=b >> 4) for b in range(256))
_POINT_CACHE: dict[int, TouchPoint] = {}
_PAIR_CACHE: dict[int, tuple[TouchPoint, TouchPoint]] = {}
_CACHE_MAX = 4096  # a moving finger makes new entries; clearing bounds the memory
# Shared by reader threads without a lock: single dict operations are atomic and the cached
# values are immutable, so a race costs at most a recomputation.


def _touch_point(word: int) -> TouchPoint:
    """Decode one 4-byte touch point (kernel struct dualsense_touch_point), read as LE u32."""
    tp = _POINT_CACHE.get(word)
    if tp is None:
        if len(_POINT_CACHE) >= _CACHE_MAX:
            _POINT_CACHE.clear()
        contact = word & 0xFF
        tp = _POINT_CACHE[word] = _new_touch_point(
            not contact & 0x80,  # active: bit 7 set = no finger
            contact & 0x7F,  # id
            ((word >> 8) & 0xFF) | ((word >> 8) & 0x0F00),  # x = x_lo | x_hi nibble << 8
            ((word >> 20) & 0x0F) | ((word >> 20) & 0xFF0),  # y = y_lo nibble | y_hi << 4
        )
    return tp


def _touch_pair(word: int) -> tuple[TouchPoint, TouchPoint]:
    """Both touch points from their 8 bytes read as one LE u64 (mostly "no finger": cached)."""
    pair = _PAIR_CACHE.get(word)
    if pair is None:
        if len(_PAIR_CACHE) >= _CACHE_MAX:
            _PAIR_CACHE.clear()
        pair = _PAIR_CACHE[word] = (_touch_point(word & 0xFFFFFFFF), _touch_point(word >> 32))
    return pair


def _common(data: bytes, offset: int, kind: ReportKind) -> PadState:
    (
        lx,
        ly,
        rx,
        ry,
        l2,
        r2,
        seq,
        buttons,
        gx,
        gy,
        gz,
        ax,
        ay,
        az,
        timestamp,
        touch,
        status,
    ) = _unpack_common(data, offset)
    return _new_pad_state(
        kind,
        lx,
        ly,
        rx,
        ry,
        l2,
        r2,
        buttons & _BUTTON_BITS,
        buttons & 0x0F,
        seq,
        _touch_pair(touch),
        (gx, gy, gz),
        (ax, ay, az),
        timestamp,
        _BATTERY[status],
    )


def _simple(data: bytes) -> PadState:
    lx, ly, rx, ry, b5, b6, b7, l2, r2 = _unpack_simple(data, 1)
    buttons = (b5 & 0xF0) | (b6 << 8) | ((b7 & _SIMPLE_BYTE7_BUTTONS) << 16)
    return _new_pad_state(
        ReportKind.BT_SIMPLE,
        lx,
        ly,
        rx,
        ry,
        l2,
        r2,
        buttons,
        b5 & 0x0F,
        None,
        (),
        None,
        None,
        None,
        None,
    )


def parse_input(data, transport: Transport) -> PadState | Rejected:
    """Parse one input report as hidapi returns it (report ID first).

    ``data`` may be bytes, bytearray, memoryview or a list of ints (hidapi's ``read``).
    Returns a ``PadState`` or a ``Rejected``; never raises.
    """
    if type(data) is not bytes:
        try:
            if isinstance(data, (int, str)):  # bytes(5) would make 5 zero bytes
                raise TypeError
            data = bytes(data)
        except Exception:
            try:
                n = len(data)
            except Exception:
                n = -1
            return Rejected(BAD_TYPE, n)
    n = len(data)
    if n == 0:
        return Rejected(EMPTY, 0)
    if transport is Transport.USB or transport is Transport.BLUETOOTH:
        usb = transport is Transport.USB
    else:
        try:
            usb = Transport(transport) is Transport.USB
        except Exception:
            return Rejected(BAD_TRANSPORT, n)
    report_id = data[0]
    if report_id == USB_ID:  # same ID as BT_SIMPLE_ID: told apart by length
        if n == USB_SIZE:
            return _common(data, 1, ReportKind.USB) if usb else Rejected(WRONG_TRANSPORT, n)
        if n == BT_SIMPLE_SIZE:
            return Rejected(WRONG_TRANSPORT, n) if usb else _simple(data)
        return Rejected(BAD_LENGTH, n)
    if report_id == BT_FULL_ID:
        if n != BT_FULL_SIZE:
            return Rejected(BAD_LENGTH, n)
        if usb:
            return Rejected(WRONG_TRANSPORT, n)
        if _crc(data[:_BT_CRC_AT], _BT_CRC_START) != _unpack_crc(data, _BT_CRC_AT)[0]:
            return Rejected(BAD_CRC, n)
        return _common(data, 2, ReportKind.BT_FULL)
    return Rejected(UNKNOWN_ID, n)
