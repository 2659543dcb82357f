"""Build DualSense output reports (lightbar, player LEDs, rumble, adaptive triggers).

Pure functions: a ``Feedback`` value in, the exact bytes to ``write()`` out.

Layouts (dualsense-hid.md §4, kernel hid-playstation.c):

* USB: report 0x02, **48 bytes** = ID + the 47-byte common block. That is the size the USB
  report descriptor declares and what SDL sends; the kernel pads to 63 and pydualsense to 64,
  but nothing is carried in the extra bytes.
* Bluetooth: report 0x31, 78 bytes, the kernel layout: [1] = seq << 4, [2] = 0x10 tag,
  common block at 3, zeros to 73, CRC32 (seed 0xA2 over bytes 0..73) little-endian at 74..77.

The audio fields (headphone/speaker/mic volume, audio control, mute LED, power save) are never
enabled or written: a zero volume with its enable bit set would silence the pad's jack.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from .reports import CRC_SEED_OUTPUT, sign
from .state import PRODUCT_DUALSENSE_EDGE, Transport

__all__ = [
    "BT_OUTPUT_ID",
    "BT_OUTPUT_SIZE",
    "PLAYER_LEDS",
    "USB_OUTPUT_ID",
    "USB_OUTPUT_SIZE",
    "Feedback",
    "TriggerEffect",
    "build_output_report",
    "uses_vibration_v2",
]

USB_OUTPUT_ID = 0x02
USB_OUTPUT_SIZE = 48
BT_OUTPUT_ID = 0x31
BT_OUTPUT_SIZE = 78
BT_OUTPUT_TAG = 0x10  # kernel DS_OUTPUT_TAG: "magic value required"
COMMON_SIZE = 47

# valid_flag0
COMPATIBLE_VIBRATION = 0x01
HAPTICS_SELECT = 0x02
RIGHT_TRIGGER_MOTOR_ENABLE = 0x04
LEFT_TRIGGER_MOTOR_ENABLE = 0x08
AUDIO_ENABLE_BITS = 0xF0  # headphone/speaker/mic volume, audio control: never set here
# valid_flag1
LIGHTBAR_CONTROL_ENABLE = 0x04
PLAYER_INDICATOR_CONTROL_ENABLE = 0x10
# valid_flag2
LED_BRIGHTNESS_CONTROL_ENABLE = 0x01
LIGHTBAR_SETUP_CONTROL_ENABLE = 0x02
COMPATIBLE_VIBRATION2 = 0x04
# lightbar_setup
LIGHTBAR_SETUP_LIGHT_OUT = 0x02  # fade the startup animation out (kernel dualsense_reset_leds)

# Kernel dualsense_set_player_leds: the mask for player 1..5. Bit 5 (0x20) = set instantly.
PLAYER_LEDS = (0x04, 0x0A, 0x15, 0x1B, 0x1F)
PLAYER_LEDS_INSTANT = 0x20

# The 47-byte common block (kernel struct dualsense_output_report_common). Only the fields
# riffpad drives are packed; "x" bytes stay zero.
_COMMON = struct.Struct(
    "<"
    "B"  # 0      valid_flag0
    "B"  # 1      valid_flag1
    "B"  # 2      motor_right (weak)
    "B"  # 3      motor_left (strong)
    "4x"  # 4-7    headphone, speaker, mic volume, audio control: never written
    "2x"  # 8-9    mute button LED, power save control
    "11s"  # 10-20  right trigger: mode + 10 params
    "11s"  # 21-31  left trigger
    "4x"  # 32-35  host timestamp
    "2x"  # 36-37  reduce motor power, audio control 2
    "B"  # 38     valid_flag2
    "2x"  # 39-40  haptics flags, reserved
    "B"  # 41     lightbar_setup
    "B"  # 42     led_brightness (player/mic LEDs): 0 high, 1 medium, 2 low
    "B"  # 43     player_leds
    "3B"  # 44-46  lightbar R, G, B
)
assert _COMMON.size == COMMON_SIZE
assert 1 + COMMON_SIZE == USB_OUTPUT_SIZE
assert 3 + COMMON_SIZE + 24 + 4 == BT_OUTPUT_SIZE  # 24 reserved bytes, then the CRC
_USB_AT = 1
_BT_AT = 3


def _check_byte(name: str, value: int, low: int = 0, high: int = 255) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in {low}..{high}, got {value!r}")
    return value


# --- Adaptive triggers --------------------------------------------------------------------

# Sony's effect IDs (dualsensectl, Bluepad32; after Nielk1's trigger-effect notes).
EFFECT_OFF = 0x05
EFFECT_FEEDBACK = 0x21
EFFECT_WEAPON = 0x25
EFFECT_VIBRATION = 0x26

_ZONES = struct.Struct("<HI")  # active-zone mask (10 bits), 3-bit strength-1 per zone


def _pack_zones(strengths: Sequence[int]) -> bytes:
    """Per-zone strengths 0..8 (0 = zone off) -> 6 bytes: active mask u16, strengths u32."""
    if len(strengths) != 10:
        raise ValueError(f"need 10 zone strengths, got {len(strengths)}")
    active = packed = 0
    for zone, strength in enumerate(strengths):
        if _check_byte(f"zone {zone} strength", strength, 0, 8):
            active |= 1 << zone
            packed |= (strength - 1) << (3 * zone)
    return _ZONES.pack(active, packed)


@dataclass(frozen=True)
class TriggerEffect:
    """One adaptive-trigger block: effect mode + 10 parameter bytes (11 bytes on the wire).

    Build it with the named constructors; ``raw`` takes any mode for experiments.
    """

    mode: int
    params: bytes = field(default=bytes(10))

    def __post_init__(self) -> None:
        _check_byte("trigger mode", self.mode)
        params = bytes(self.params)
        if len(params) > 10:
            raise ValueError(f"a trigger effect has at most 10 parameter bytes, got {len(params)}")
        object.__setattr__(self, "params", params.ljust(10, b"\x00"))

    def to_bytes(self) -> bytes:
        return bytes((self.mode,)) + self.params

    @classmethod
    def raw(cls, mode: int, params: Sequence[int] | bytes = b"") -> TriggerEffect:
        return cls(mode, bytes(params))

    @classmethod
    def off(cls) -> TriggerEffect:
        """No resistance (Sony effect 0x05)."""
        return cls(EFFECT_OFF)

    @classmethod
    def feedback(cls, position: int, strength: int) -> TriggerEffect:
        """Resistance from zone ``position`` (0..9) to the end, ``strength`` 1..8; 0 = off."""
        _check_byte("position", position, 0, 9)
        if _check_byte("strength", strength, 0, 8) == 0:
            return cls.off()
        return cls(EFFECT_FEEDBACK, _pack_zones([0] * position + [strength] * (10 - position)))

    @classmethod
    def feedback_zones(cls, strengths: Sequence[int]) -> TriggerEffect:
        """Resistance per zone: 10 strengths 0..8 (0 = free)."""
        return cls(EFFECT_FEEDBACK, _pack_zones(strengths))

    @classmethod
    def weapon(cls, start: int, end: int, strength: int) -> TriggerEffect:
        """A trigger "break": resistance from ``start`` (2..7) that snaps at ``end`` (..8)."""
        _check_byte("start", start, 2, 7)
        _check_byte("end", end, start + 1, 8)
        _check_byte("strength", strength, 1, 8)
        zones = (1 << start) | (1 << end)
        return cls(EFFECT_WEAPON, struct.pack("<HB", zones, strength - 1))

    @classmethod
    def vibration(cls, position: int, amplitude: int, frequency: int) -> TriggerEffect:
        """Vibrate from zone ``position`` (0..9) on, ``amplitude`` 1..8, ``frequency`` Hz."""
        _check_byte("position", position, 0, 9)
        _check_byte("amplitude", amplitude, 1, 8)
        _check_byte("frequency", frequency, 1, 255)
        zones = _pack_zones([0] * position + [amplitude] * (10 - position))
        return cls(EFFECT_VIBRATION, zones + bytes((0, 0, frequency)))


# --- Feedback -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Feedback:
    """What the pad should show. ``None`` = leave that part as the pad has it.

    ``rumble`` is (left/strong, right/weak) 0..255 and is always sent ((0, 0) stops the
    motors) unless set to ``None``. To release a trigger effect send ``TriggerEffect.off()``.
    """

    lightbar: tuple[int, int, int] | None = None
    player_leds: int | None = None  # 5-bit mask (PLAYER_LEDS[n]); | PLAYER_LEDS_INSTANT
    led_brightness: int | None = None  # 0 high, 1 medium, 2 low
    rumble: tuple[int, int] | None = (0, 0)
    right_trigger: TriggerEffect | None = None
    left_trigger: TriggerEffect | None = None

    def __post_init__(self) -> None:
        if self.lightbar is not None:
            rgb = tuple(self.lightbar)
            if len(rgb) != 3:
                raise ValueError(f"lightbar must be (r, g, b), got {self.lightbar!r}")
            for name, v in zip("rgb", rgb, strict=True):
                _check_byte(f"lightbar {name}", v)
            object.__setattr__(self, "lightbar", rgb)
        if self.player_leds is not None:
            _check_byte("player_leds", self.player_leds, 0, 0x3F)
        if self.led_brightness is not None:
            _check_byte("led_brightness", self.led_brightness, 0, 2)
        if self.rumble is not None:
            pair = tuple(self.rumble)
            if len(pair) != 2:
                raise ValueError(f"rumble must be (left, right), got {self.rumble!r}")
            _check_byte("rumble left", pair[0])
            _check_byte("rumble right", pair[1])
            object.__setattr__(self, "rumble", pair)
        for name in ("right_trigger", "left_trigger"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, TriggerEffect):
                raise ValueError(f"{name} must be a TriggerEffect or None, got {value!r}")


def uses_vibration_v2(product_id: int, update_version: int | None) -> bool:
    """Whether rumble needs COMPATIBLE_VIBRATION2, decided as the kernel does.

    The Edge always; a DualSense from feature report 0x20's update_version 0x0215 ("2.21") on.
    An unknown version (feature 0x20 unreadable) counts as new, as SDL does: current pads
    run far newer firmware.
    """
    if product_id == PRODUCT_DUALSENSE_EDGE:
        return True
    if update_version is None:
        return True
    return update_version >= 0x0215


_NO_TRIGGER = bytes(11)


def _common_fields(fb: Feedback, vibration_v2: bool, fade_out_lightbar: bool) -> tuple:
    flag0 = flag1 = flag2 = 0
    motor_left = motor_right = 0
    if fb.rumble is not None:
        motor_left, motor_right = fb.rumble
        flag0 |= HAPTICS_SELECT
        if vibration_v2:
            flag2 |= COMPATIBLE_VIBRATION2
        else:
            flag0 |= COMPATIBLE_VIBRATION
    right = left = _NO_TRIGGER
    if fb.right_trigger is not None:
        flag0 |= RIGHT_TRIGGER_MOTOR_ENABLE
        right = fb.right_trigger.to_bytes()
    if fb.left_trigger is not None:
        flag0 |= LEFT_TRIGGER_MOTOR_ENABLE
        left = fb.left_trigger.to_bytes()
    lightbar_setup = 0
    if fade_out_lightbar:
        flag2 |= LIGHTBAR_SETUP_CONTROL_ENABLE
        lightbar_setup = LIGHTBAR_SETUP_LIGHT_OUT
    red = green = blue = 0
    if fb.lightbar is not None:
        flag1 |= LIGHTBAR_CONTROL_ENABLE
        red, green, blue = fb.lightbar
    player_leds = 0
    if fb.player_leds is not None:
        flag1 |= PLAYER_INDICATOR_CONTROL_ENABLE
        player_leds = fb.player_leds
    brightness = 0
    if fb.led_brightness is not None:
        flag2 |= LED_BRIGHTNESS_CONTROL_ENABLE
        brightness = fb.led_brightness
    assert not flag0 & AUDIO_ENABLE_BITS
    return (
        flag0,
        flag1,
        motor_right,
        motor_left,
        right,
        left,
        flag2,
        lightbar_setup,
        brightness,
        player_leds,
        red,
        green,
        blue,
    )


def build_output_report(
    fb: Feedback,
    transport: Transport,
    *,
    seq: int = 0,
    vibration_v2: bool,
    fade_out_lightbar: bool = False,
) -> bytes:
    """The output report to write for ``fb``: USB 0x02 (48 bytes) or Bluetooth 0x31 (78).

    ``seq`` is the Bluetooth sequence number (its low 4 bits are used; the kernel counts
    0..15). ``fade_out_lightbar`` ends the Bluetooth startup animation; send it once after
    connecting, as the kernel's dualsense_reset_leds does, before setting colours.
    """
    fields = _common_fields(fb, vibration_v2, fade_out_lightbar)
    if Transport(transport) is Transport.USB:
        buf = bytearray(USB_OUTPUT_SIZE)
        buf[0] = USB_OUTPUT_ID
        _COMMON.pack_into(buf, _USB_AT, *fields)
        return bytes(buf)
    buf = bytearray(BT_OUTPUT_SIZE)
    buf[0] = BT_OUTPUT_ID
    buf[1] = (seq & 0x0F) << 4  # seq_tag: sequence in the high nibble, tag 0
    buf[2] = BT_OUTPUT_TAG
    _COMMON.pack_into(buf, _BT_AT, *fields)
    return sign(buf, CRC_SEED_OUTPUT)
