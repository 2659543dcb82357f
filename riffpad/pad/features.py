"""DualSense feature reports: pairing info (0x09), firmware (0x20), calibration (0x05).

Parsers check the size and report ID, and on Bluetooth the CRC32 (seed 0xA3) the pad puts in
the last 4 bytes of every feature reply, as the kernel's ``ps_get_report`` does. The
``*_report`` builders are the inverse; replays and tests use them to answer feature requests.
Layouts and maths: the kernel's hid-playstation.c (``dualsense_get_mac_address``,
``dualsense_get_firmware_info``, ``dualsense_get_calibration_data``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from riffpad.pad.reports import CRC_SEED_FEATURE_IN, crc32_ok, sign
from riffpad.pad.state import Transport

CALIBRATION_ID = 0x05
PAIRING_ID = 0x09
FIRMWARE_ID = 0x20
SIZES = {CALIBRATION_ID: 41, PAIRING_ID: 20, FIRMWARE_ID: 64}
# Read in this order at open, like the kernel's probe; on Bluetooth this is also what moves a
# pad from 10-byte "simple" reports to full 0x31 reports.
INIT_ORDER = (PAIRING_ID, FIRMWARE_ID, CALIBRATION_ID)

GYRO_RES_PER_DEG_S = 1024  # kernel DS_GYRO_RES_PER_DEG_S
ACC_RES_PER_G = 8192  # kernel DS_ACC_RES_PER_G
_S16_MAX = 0x7FFF
_GYRO_RANGE = 2048 * GYRO_RES_PER_DEG_S
_ACC_RANGE = 4 * ACC_RES_PER_G


class FeatureError(ValueError):
    """A feature reply with the wrong size, ID or CRC."""


def check_feature(data: bytes, report_id: int, transport: Transport) -> bytes:
    """Return ``data`` as bytes if it is a whole, intact reply to feature ``report_id``."""
    data = bytes(data)
    size = SIZES[report_id]
    if len(data) != size:
        raise FeatureError(f"feature 0x{report_id:02x}: {len(data)} bytes, expected {size}")
    if data[0] != report_id:
        raise FeatureError(f"feature 0x{report_id:02x}: reply has report ID 0x{data[0]:02x}")
    if transport is Transport.BLUETOOTH and not crc32_ok(data, CRC_SEED_FEATURE_IN):
        raise FeatureError(f"feature 0x{report_id:02x}: CRC32 mismatch")
    return data


def _frame(report_id: int, body: bytes, transport: Transport) -> bytes:
    """Pad ``body`` (bytes after the ID) to the feature size; sign it on Bluetooth."""
    size = SIZES[report_id]
    buf = bytes((report_id,)) + body
    assert len(buf) <= size - 4, (report_id, len(buf))
    buf = buf.ljust(size, b"\0")
    return sign(buf, CRC_SEED_FEATURE_IN) if transport is Transport.BLUETOOTH else buf


# --- 0x09 pairing info -------------------------------------------------------------------


def parse_mac(data: bytes, transport: Transport) -> str:
    """The pad's Bluetooth MAC, ``aa:bb:cc:dd:ee:ff``; stored reversed at bytes 1..6."""
    data = check_feature(data, PAIRING_ID, transport)
    return ":".join(f"{b:02x}" for b in reversed(data[1:7]))


def pairing_report(mac: str, transport: Transport) -> bytes:
    octets = bytes.fromhex(mac.replace(":", ""))
    if len(octets) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return _frame(PAIRING_ID, octets[::-1], transport)


# --- 0x20 firmware info ------------------------------------------------------------------

_FIRMWARE = struct.Struct("<24xII12xH")  # hw_version @24, fw_version @28, update_version @44


@dataclass(frozen=True)
class Firmware:
    hw_version: int
    fw_version: int
    update_version: int  # "feature version": major << 8 | minor

    @property
    def update_text(self) -> str:
        return f"{self.update_version >> 8}.{self.update_version & 0xFF:02d}"

    def as_dict(self) -> dict:
        return {
            "hw_version": f"0x{self.hw_version:08x}",
            "fw_version": f"0x{self.fw_version:08x}",
            "update_version": self.update_text,
        }


def parse_firmware(data: bytes, transport: Transport) -> Firmware:
    data = check_feature(data, FIRMWARE_ID, transport)
    return Firmware(*_FIRMWARE.unpack_from(data))


def firmware_report(fw: Firmware, transport: Transport) -> bytes:
    body = _FIRMWARE.pack(fw.hw_version, fw.fw_version, fw.update_version)[1:]
    return _frame(FIRMWARE_ID, body, transport)


# --- 0x05 calibration --------------------------------------------------------------------

# int16 LE at 1..33: gyro pitch/yaw/roll bias, pitch +/-, yaw +/-, roll +/-, speed +/-,
# accel x +/-, y +/-, z +/-.
_CALIBRATION = struct.Struct("<x17h")


@dataclass(frozen=True)
class AxisCalibration:
    bias: int
    numer: int
    denom: int

    def apply(self, raw: int) -> int:
        # Kernel mult_frac(numer, raw - bias, denom): integer maths, truncating toward zero.
        x = (raw - self.bias) * self.numer
        q = abs(x) // abs(self.denom)
        return q if (x >= 0) == (self.denom > 0) else -q


@dataclass(frozen=True)
class Calibration:
    """Per-axis factors; ``apply`` gives gyro in 1/1024 deg/s and accel in 1/8192 g."""

    gyro: tuple[AxisCalibration, AxisCalibration, AxisCalibration]
    accel: tuple[AxisCalibration, AxisCalibration, AxisCalibration]
    raw: tuple[int, ...]  # the 17 int16 fields as read

    def apply(
        self, gyro: tuple[int, int, int], accel: tuple[int, int, int]
    ) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        g = tuple(c.apply(v) for c, v in zip(self.gyro, gyro, strict=True))
        a = tuple(c.apply(v) for c, v in zip(self.accel, accel, strict=True))
        return g, a  # type: ignore[return-value]


def parse_calibration(data: bytes, transport: Transport) -> Calibration:
    """Kernel dualsense_get_calibration_data, including its fallback for zero denominators."""
    data = check_feature(data, CALIBRATION_ID, transport)
    raw = _CALIBRATION.unpack_from(data)
    biases = raw[0:3]
    plus_minus = ((raw[3], raw[4]), (raw[5], raw[6]), (raw[7], raw[8]))
    speed_2x = raw[9] + raw[10]
    gyro = []
    for bias, (plus, minus) in zip(biases, plus_minus, strict=True):
        denom = abs(plus - bias) + abs(minus - bias)
        if denom == 0:
            gyro.append(AxisCalibration(0, _GYRO_RANGE, _S16_MAX))
        else:
            # The kernel drops the gyro bias ("bias is 0 ... compensated by firmware").
            gyro.append(AxisCalibration(0, speed_2x * GYRO_RES_PER_DEG_S, denom))
    accel = []
    for i in range(3):
        plus, minus = raw[11 + 2 * i], raw[12 + 2 * i]
        range_2g = plus - minus
        if range_2g == 0:
            accel.append(AxisCalibration(0, _ACC_RANGE, _S16_MAX))
        else:
            bias = plus - int(range_2g / 2)  # C division truncates toward zero
            accel.append(AxisCalibration(bias, 2 * ACC_RES_PER_G, range_2g))
    return Calibration(gyro=tuple(gyro), accel=tuple(accel), raw=raw)  # type: ignore[arg-type]


def calibration_report(fields: tuple[int, ...], transport: Transport) -> bytes:
    """Feature 0x05 from the 17 int16 fields in report order."""
    return _frame(CALIBRATION_ID, _CALIBRATION.pack(*fields)[1:], transport)


# Plausible values (a pad at rest, unit sensitivities) for replays without recorded features.
DEFAULT_CALIBRATION_FIELDS = (
    0, 0, 0,  # gyro bias
    8192, -8192, 8192, -8192, 8192, -8192,  # pitch, yaw, roll +/-
    540, 540,  # gyro speed +/-
    8192, -8192, 8192, -8192, 8192, -8192,  # accel x, y, z +/-
)  # fmt: skip
DEFAULT_FIRMWARE = Firmware(hw_version=0x00000615, fw_version=0x0110002A, update_version=0x0224)
