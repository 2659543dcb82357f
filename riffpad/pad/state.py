"""The typed, immutable state of one DualSense, as parsed from one input report.

This module is the contract between the HID layer (which builds PadState from
raw reports) and everything downstream (controls, monitor, the instrument).
It holds no I/O and no parsing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

VENDOR_SONY = 0x054C
PRODUCT_DUALSENSE = 0x0CE6
PRODUCT_DUALSENSE_EDGE = 0x0DF2
PRODUCTS = {PRODUCT_DUALSENSE: "DualSense", PRODUCT_DUALSENSE_EDGE: "DualSense Edge"}

TOUCHPAD_WIDTH = 1920  # x in 0..1919 (hid-playstation DS_TOUCHPAD_WIDTH)
TOUCHPAD_HEIGHT = 1080  # y in 0..1079


class Transport(str, enum.Enum):
    USB = "usb"
    BLUETOOTH = "bluetooth"


class ReportKind(str, enum.Enum):
    USB = "usb"  # ID 0x01, 64 bytes
    BT_FULL = "bt_full"  # ID 0x31, 78 bytes, CRC32 seed 0xA1
    BT_SIMPLE = "bt_simple"  # ID 0x01, 10 bytes, no touch/IMU/battery


class Button(enum.IntFlag):
    """Button bits, laid out as the report's three button bytes read little-endian.

    Bits 0-3 (the hat) are not buttons; see ``PadState.dpad``.
    """

    SQUARE = 1 << 4
    CROSS = 1 << 5
    CIRCLE = 1 << 6
    TRIANGLE = 1 << 7
    L1 = 1 << 8
    R1 = 1 << 9
    L2 = 1 << 10
    R2 = 1 << 11
    CREATE = 1 << 12
    OPTIONS = 1 << 13
    L3 = 1 << 14
    R3 = 1 << 15
    PS = 1 << 16
    TOUCHPAD = 1 << 17
    MUTE = 1 << 18
    FN_LEFT = 1 << 20  # DualSense Edge
    FN_RIGHT = 1 << 21
    PADDLE_LEFT = 1 << 22
    PADDLE_RIGHT = 1 << 23


BUTTON_MASK = sum(int(b) for b in Button)
# (bit, lowercase name) sorted by name, so name lists come out sorted without a sort.
BUTTON_NAMES: tuple[tuple[int, str], ...] = tuple(
    sorted(((int(b), b.name.lower()) for b in Button), key=lambda pair: pair[1])
)


class DPad(str, enum.Enum):
    N = "n"
    NE = "ne"
    E = "e"
    SE = "se"
    S = "s"
    SW = "sw"
    W = "w"
    NW = "nw"


# Hat value 0..7 -> direction; 8 (and anything >= 9, as the kernel does) is released.
HAT_TO_DPAD: tuple[DPad | None, ...] = (*DPad, *([None] * 8))


@dataclass(frozen=True, slots=True)
class TouchPoint:
    active: bool
    id: int  # 7-bit contact counter
    x: int  # 0..1919
    y: int  # 0..1079


@dataclass(frozen=True, slots=True)
class Battery:
    level: int  # raw 0..10 nibble
    status: int  # raw charging nibble: 0 discharging, 1 charging, 2 full, 0xA/0xB/0xF errors

    @property
    def percent(self) -> int | None:
        """Capacity as the kernel computes it; None when the pad reports an error."""
        if self.status in (0, 1):
            return min(self.level * 10 + 5, 100)
        if self.status == 2:
            return 100
        if self.status in (0xA, 0xB):
            return 0
        return None

    @property
    def charging(self) -> bool:
        return self.status == 1


@dataclass(frozen=True, slots=True)
class PadState:
    """One parsed input report. Sticks and triggers are raw 0..255 (128 ~ centre)."""

    kind: ReportKind
    lx: int
    ly: int  # 0 = up, 255 = down (raw HID convention)
    rx: int
    ry: int
    l2: int
    r2: int
    buttons: int  # Button bits
    hat: int  # raw 0..15; see dpad
    seq: int | None = None  # the report's counter byte; None for Bluetooth simple reports
    touch: tuple[TouchPoint, ...] = ()  # two points for full reports, () for simple
    gyro: tuple[int, int, int] | None = None  # raw int16
    accel: tuple[int, int, int] | None = None  # raw int16
    sensor_timestamp: int | None = None  # u32, 0.33 us units
    battery: Battery | None = None

    @property
    def transport(self) -> Transport:
        return Transport.USB if self.kind is ReportKind.USB else Transport.BLUETOOTH

    @property
    def dpad(self) -> DPad | None:
        return HAT_TO_DPAD[self.hat & 0x0F]

    def pressed(self, button: Button) -> bool:
        return bool(self.buttons & button)

    @property
    def button_names(self) -> list[str]:
        """Sorted lowercase names of the pressed buttons."""
        b = self.buttons
        return [name for bit, name in BUTTON_NAMES if b & bit]


# The state reported before any report arrives, and after a pad is unplugged:
# sticks centred, triggers released, nothing pressed.
NEUTRAL = PadState(
    kind=ReportKind.USB, lx=128, ly=128, rx=128, ry=128, l2=0, r2=0, buttons=0, hat=8
)
