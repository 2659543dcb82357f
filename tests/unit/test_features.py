import struct
import zlib

import pytest

from riffpad.pad import features
from riffpad.pad.features import FeatureError, Firmware
from riffpad.pad.state import Transport

BT, USB = Transport.BLUETOOTH, Transport.USB


def _bt_sign(buf: bytearray) -> bytes:
    # Independent of the module under test: zlib over seed 0xA3 + bytes, LE in the last 4.
    crc = zlib.crc32(bytes(buf[:-4]), zlib.crc32(b"\xa3"))
    buf[-4:] = crc.to_bytes(4, "little")
    return bytes(buf)


def test_mac_is_reversed_bytes_1_to_6():
    buf = bytearray(20)
    buf[0] = 0x09
    buf[1:7] = bytes((0x66, 0x55, 0x44, 0x33, 0x22, 0x11))
    assert features.parse_mac(bytes(buf), USB) == "11:22:33:44:55:66"
    assert features.parse_mac(_bt_sign(buf), BT) == "11:22:33:44:55:66"


def test_firmware_fields_at_kernel_offsets():
    buf = bytearray(64)
    buf[0] = 0x20
    struct.pack_into("<I", buf, 24, 0x00000615)
    struct.pack_into("<I", buf, 28, 0x0110002A)
    struct.pack_into("<H", buf, 44, 0x0221)
    fw = features.parse_firmware(_bt_sign(buf), BT)
    assert fw == Firmware(hw_version=0x615, fw_version=0x0110002A, update_version=0x0221)
    assert fw.update_text == "2.33"
    assert fw.as_dict() == {
        "hw_version": "0x00000615",
        "fw_version": "0x0110002a",
        "update_version": "2.33",
    }


def test_bluetooth_crc_is_checked_usb_is_not():
    good = features.pairing_report("a0:ab:51:01:02:03", BT)
    bad = good[:-1] + bytes((good[-1] ^ 1,))
    assert features.parse_mac(good, BT) == "a0:ab:51:01:02:03"
    with pytest.raises(FeatureError, match="CRC"):
        features.parse_mac(bad, BT)
    # Over USB there is no CRC: the last 4 bytes are whatever the pad put there.
    assert features.parse_mac(bad, USB) == "a0:ab:51:01:02:03"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (bytes([0x09] + [0] * 18), "19 bytes, expected 20"),
        (bytes([0x20] + [0] * 19), "report ID 0x20"),
    ],
)
def test_size_and_id_are_asserted(data, match):
    with pytest.raises(FeatureError, match=match):
        features.parse_mac(data, USB)


def test_builders_round_trip_and_sizes():
    for t in (USB, BT):
        fw = Firmware(1, 2, 0x0215)
        assert len(features.firmware_report(fw, t)) == 64
        assert features.parse_firmware(features.firmware_report(fw, t), t) == fw
        cal = features.calibration_report(features.DEFAULT_CALIBRATION_FIELDS, t)
        assert len(cal) == 41
        assert features.parse_calibration(cal, t).raw == features.DEFAULT_CALIBRATION_FIELDS


def test_calibration_follows_kernel_formulas():
    fields = (
        *(3, -2, 1),  # gyro bias pitch/yaw/roll (dropped by the kernel)
        *(8000, -8100, 7900, -7950, 8050, -8000),  # pitch, yaw, roll +/-
        *(540, 540),  # speed +/-
        *(8300, -8100, 8200, -8000, 8250, -8150),  # accel x, y, z +/-
    )
    cal = features.parse_calibration(features.calibration_report(fields, USB), USB)
    pitch = cal.gyro[0]
    assert (pitch.bias, pitch.numer, pitch.denom) == (0, 1080 * 1024, 8000 - 3 + 8100 + 3)
    ax = cal.accel[0]
    assert (ax.bias, ax.numer, ax.denom) == (8300 - 8200, 2 * 8192, 16400)
    # raw accel at +1 g reads 8192 after calibration; raw gyro at speed_2x reads 1080*1024.
    g, a = cal.apply((16100, 0, 0), (8300, -8000, 0))
    assert a[0] == 8192 and a[1] == -8192
    assert g[0] == 1080 * 1024
    # Integer maths truncating toward zero, like the kernel's mult_frac.
    assert cal.apply((-1, 0, 0), (0, 0, 0))[0][0] == -(1080 * 1024 // 16100)


def test_zero_range_calibration_falls_back_like_kernel():
    cal = features.parse_calibration(features.calibration_report((0,) * 17, USB), USB)
    assert all((c.bias, c.numer, c.denom) == (0, 2048 * 1024, 0x7FFF) for c in cal.gyro)
    assert all((c.bias, c.numer, c.denom) == (0, 4 * 8192, 0x7FFF) for c in cal.accel)
