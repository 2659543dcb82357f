"""Output reports: byte-exact layouts on both transports, the §10 vector, and audio safety."""

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riffpad.pad.output import (
    PLAYER_LEDS,
    Feedback,
    TriggerEffect,
    build_output_report,
    uses_vibration_v2,
)
from riffpad.pad.state import PRODUCT_DUALSENSE, PRODUCT_DUALSENSE_EDGE, Transport

# dualsense-hid.md §10: Bluetooth 0x31, kernel layout, lightbar red, CRC seed 0xA2.
GOLDEN_BT_RED = bytes.fromhex(
    "31 00 10 00 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ff "
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
    "00 00 d5 70 a3 53"
)

USB, BT = Transport.USB, Transport.BLUETOOTH
# Common-block offset -> report byte (reference §4.1: USB = +1, Bluetooth = +3).
AT = {USB: 1, BT: 3}


def common(report: bytes, transport: Transport) -> bytes:
    return report[AT[transport] : AT[transport] + 47]


def crc_ok(report: bytes) -> bool:
    return zlib.crc32(b"\xa2" + report[:74]).to_bytes(4, "little") == report[74:]


def test_golden_bt_red_lightbar_byte_for_byte():
    fb = Feedback(lightbar=(255, 0, 0), rumble=None)
    assert build_output_report(fb, BT, vibration_v2=True) == GOLDEN_BT_RED


def test_framing_usb():
    r = build_output_report(Feedback(rumble=None), USB, vibration_v2=False)
    assert len(r) == 48 and r[0] == 0x02 and r[1:] == bytes(47)


@pytest.mark.parametrize("seq,byte1", [(0, 0x00), (1, 0x10), (15, 0xF0), (16, 0x00), (21, 0x50)])
def test_framing_bt_seq_tag_and_crc(seq, byte1):
    r = build_output_report(Feedback(rumble=None), BT, seq=seq, vibration_v2=False)
    assert len(r) == 78 and r[0] == 0x31 and r[1] == byte1 and r[2] == 0x10
    assert r[3:74] == bytes(71) and crc_ok(r)


@pytest.mark.parametrize("transport", [USB, BT])
def test_lightbar_player_leds_brightness(transport):
    fb = Feedback(lightbar=(1, 2, 3), player_leds=PLAYER_LEDS[2], led_brightness=1, rumble=None)
    c = common(build_output_report(fb, transport, vibration_v2=True), transport)
    assert c[0] == 0x00  # valid_flag0: nothing
    assert c[1] == 0x04 | 0x10  # valid_flag1: lightbar + player indicator
    assert c[38] == 0x01  # valid_flag2: LED brightness
    assert (c[42], c[43], c[44], c[45], c[46]) == (1, 0x15, 1, 2, 3)
    assert c[41] == 0  # lightbar_setup untouched


@pytest.mark.parametrize("transport", [USB, BT])
def test_fade_out_lightbar_like_kernel_reset_leds(transport):
    r = build_output_report(
        Feedback(rumble=None), transport, vibration_v2=True, fade_out_lightbar=True
    )
    c = common(r, transport)
    assert c[38] == 0x02 and c[41] == 0x02  # LIGHTBAR_SETUP_CONTROL_ENABLE, LIGHT_OUT
    assert c[:38] == bytes(38) and c[39:41] == bytes(2) and c[42:] == bytes(5)


@pytest.mark.parametrize("transport", [USB, BT])
def test_rumble_v1_and_v2(transport):
    fb = Feedback(rumble=(200, 50))  # left/strong, right/weak
    v1 = common(build_output_report(fb, transport, vibration_v2=False), transport)
    assert v1[0] == 0x02 | 0x01 and v1[38] == 0  # HAPTICS_SELECT + COMPATIBLE_VIBRATION
    assert (v1[2], v1[3]) == (50, 200)  # motor_right = weak, motor_left = strong
    v2 = common(build_output_report(fb, transport, vibration_v2=True), transport)
    assert v2[0] == 0x02 and v2[38] == 0x04  # HAPTICS_SELECT; COMPATIBLE_VIBRATION2
    assert (v2[2], v2[3]) == (50, 200)


def test_default_rumble_is_sent_as_stop():
    c = common(build_output_report(Feedback(), USB, vibration_v2=False), USB)
    assert c[0] == 0x03 and (c[2], c[3]) == (0, 0)


def test_vibration_v2_decision_like_kernel():
    assert uses_vibration_v2(PRODUCT_DUALSENSE_EDGE, 0x0100)
    assert uses_vibration_v2(PRODUCT_DUALSENSE_EDGE, None)
    assert not uses_vibration_v2(PRODUCT_DUALSENSE, 0x0214)
    assert uses_vibration_v2(PRODUCT_DUALSENSE, 0x0215)
    assert uses_vibration_v2(PRODUCT_DUALSENSE, 0x0300)
    assert uses_vibration_v2(PRODUCT_DUALSENSE, None)  # unknown firmware: new, as SDL


# --- Trigger effects ------------------------------------------------------------------------


def test_trigger_off():
    assert TriggerEffect.off().to_bytes() == bytes([0x05]) + bytes(10)


def test_trigger_feedback_packing():
    # zones 3..9 active: mask 0b11_1111_1000 = 0x03F8; strength 5 is stored as 4 (0b100) in
    # the 3-bit slot of each active zone: 0b100100100100100100100 << 9 = 0x24924800
    e = TriggerEffect.feedback(position=3, strength=5)
    assert e.to_bytes() == bytes([0x21, 0xF8, 0x03, 0x00, 0x48, 0x92, 0x24, 0, 0, 0, 0])
    full = TriggerEffect.feedback(0, 8).to_bytes()
    assert full == bytes([0x21, 0xFF, 0x03, 0xFF, 0xFF, 0xFF, 0x3F, 0, 0, 0, 0])
    assert TriggerEffect.feedback(4, 0) == TriggerEffect.off()


def test_trigger_feedback_zones_and_vibration_and_weapon():
    z = TriggerEffect.feedback_zones([1, 0, 0, 0, 0, 0, 0, 0, 0, 8])
    assert z.to_bytes() == bytes([0x21, 0x01, 0x02, 0x00, 0x00, 0x00, 0x38, 0, 0, 0, 0])
    v = TriggerEffect.vibration(position=9, amplitude=2, frequency=40)
    assert v.to_bytes() == bytes([0x26, 0x00, 0x02, 0x00, 0x00, 0x00, 0x08, 0, 0, 40, 0])
    w = TriggerEffect.weapon(start=2, end=6, strength=8)
    assert w.to_bytes() == bytes([0x25, 0x44, 0x00, 0x07]) + bytes(7)


@pytest.mark.parametrize(
    "make",
    [
        lambda: TriggerEffect.feedback(10, 1),
        lambda: TriggerEffect.feedback(0, 9),
        lambda: TriggerEffect.feedback_zones([1] * 9),
        lambda: TriggerEffect.weapon(1, 5, 3),
        lambda: TriggerEffect.weapon(5, 5, 3),
        lambda: TriggerEffect.weapon(2, 9, 3),
        lambda: TriggerEffect.weapon(2, 5, 0),
        lambda: TriggerEffect.vibration(0, 1, 0),
        lambda: TriggerEffect.raw(0x21, bytes(11)),
        lambda: TriggerEffect.raw(256),
    ],
)
def test_trigger_effect_range_errors(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("transport", [USB, BT])
def test_trigger_blocks_and_flags(transport):
    right = TriggerEffect.feedback(2, 3)
    left = TriggerEffect.weapon(3, 7, 6)
    fb = Feedback(right_trigger=right, left_trigger=left, rumble=None)
    c = common(build_output_report(fb, transport, vibration_v2=True), transport)
    assert c[0] == 0x04 | 0x08
    assert c[10:21] == right.to_bytes() and c[21:32] == left.to_bytes()
    only_left = Feedback(left_trigger=TriggerEffect.off(), rumble=None)
    c = common(build_output_report(only_left, transport, vibration_v2=True), transport)
    assert c[0] == 0x08 and c[10:21] == bytes(11) and c[21] == 0x05


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lightbar": (0, 0, 256)},
        {"lightbar": (0, 0)},
        {"player_leds": 0x40},
        {"led_brightness": 3},
        {"rumble": (-1, 0)},
        {"rumble": (1, 2, 3)},
        {"right_trigger": 0x21},
    ],
)
def test_feedback_range_errors(kwargs):
    with pytest.raises(ValueError):
        Feedback(**kwargs)


def test_feedback_is_hashable_and_normalised():
    a = Feedback(lightbar=[1, 2, 3], rumble=[4, 5])
    assert a == Feedback(lightbar=(1, 2, 3), rumble=(4, 5)) and hash(a) == hash(
        Feedback(lightbar=(1, 2, 3), rumble=(4, 5))
    )


# --- Audio safety: no Feedback ever touches volume or audio control ------------------------

BYTE = st.integers(0, 255)
EFFECTS = st.one_of(
    st.none(),
    st.builds(TriggerEffect.off),
    st.builds(TriggerEffect.feedback, st.integers(0, 9), st.integers(0, 8)),
    st.builds(TriggerEffect.vibration, st.integers(0, 9), st.integers(1, 8), st.integers(1, 255)),
    st.builds(TriggerEffect.weapon, st.just(2), st.integers(3, 8), st.integers(1, 8)),
    st.builds(TriggerEffect.raw, BYTE, st.binary(max_size=10)),
)
FEEDBACKS = st.builds(
    Feedback,
    lightbar=st.none() | st.tuples(BYTE, BYTE, BYTE),
    player_leds=st.none() | st.integers(0, 0x3F),
    led_brightness=st.none() | st.integers(0, 2),
    rumble=st.none() | st.tuples(BYTE, BYTE),
    right_trigger=EFFECTS,
    left_trigger=EFFECTS,
)


@settings(max_examples=300, deadline=None)
@given(
    fb=FEEDBACKS,
    transport=st.sampled_from([USB, BT]),
    v2=st.booleans(),
    fade=st.booleans(),
    seq=st.integers(0, 1000),
)
def test_audio_fields_never_enabled_or_written(fb, transport, v2, fade, seq):
    r = build_output_report(fb, transport, seq=seq, vibration_v2=v2, fade_out_lightbar=fade)
    c = common(r, transport)
    assert c[0] & 0xF0 == 0  # headphone/speaker/mic volume, audio control enables
    assert c[4:8] == bytes(4)  # the volume and audio-control bytes
    assert c[1] & (0x01 | 0x02 | 0x80) == 0  # mic LED, power save, audio control 2
    assert c[8:10] == bytes(2) and c[37] == 0  # mute LED, power save, audio control 2
    if transport is BT:
        assert len(r) == 78 and r[50:74] == bytes(24) and crc_ok(r)
    else:
        assert len(r) == 48


@settings(max_examples=100, deadline=None)
@given(fb=FEEDBACKS, seq=st.integers(0, 15))
def test_bt_crc_matches_pydualsense_table_crc(fb, seq):
    # pydualsense's own CRC (a pre-seeded table over 74 bytes) as an independent check.
    try:
        from pydualsense.checksum import compute
    except OSError as exc:  # the package __init__ loads the system hidapi library
        pytest.skip(f"pydualsense needs the system library libhidapi-hidraw0: {exc}")
    r = build_output_report(fb, BT, seq=seq, vibration_v2=True)
    assert compute(list(r)) == int.from_bytes(r[74:], "little")
