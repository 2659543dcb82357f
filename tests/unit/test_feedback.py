import itertools

import pytest

from riffpad.instrument.feedback import (
    RED,
    SANE,
    WHITE,
    FeedbackPolicy,
    blend,
    parse_colour,
    prompt_colour,
    step_leds,
)
from riffpad.pad.output import Feedback, TriggerEffect, build_output_report
from riffpad.pad.reports import crc32_ok
from riffpad.pad.state import Transport

A, B = (255, 0, 0), (0, 0, 255)


def test_idle_lightbar_is_alpha_between_prompt_colours():
    p = FeedbackPolicy(A, B)
    assert p.frame(0.0, alpha=0.0, steps=15, busy=False).lightbar == A
    assert p.frame(0.0, alpha=1.0, steps=15, busy=False).lightbar == B
    assert p.frame(0.0, alpha=0.5, steps=15, busy=False).lightbar == (128, 0, 128)
    assert blend(A, B, 7.0) == B and blend(A, B, -1) == A


def test_prompt_colours_are_stable_and_parse():
    assert prompt_colour("jazz piano") == prompt_colour("jazz piano")
    assert prompt_colour("jazz piano") != prompt_colour("dub bass")
    assert parse_colour("#ffb000") == (255, 176, 0)
    with pytest.raises(ValueError):
        parse_colour("#fff")


def test_step_leds_over_15_to_50():
    assert step_leds(15) == 0x01
    assert step_leds(50) == 0x1F
    levels = [step_leds(s) for s in range(15, 51)]
    assert levels == sorted(levels) and len(set(levels)) == 5
    assert step_leds(5) == 0x01 and step_leds(99) == 0x1F


def test_generating_pulses_a_few_times_per_second_not_per_report():
    p = FeedbackPolicy(A, B)
    # 250 reports/s for 2 s while generating.
    frames = [p.frame(i / 250, alpha=0.0, steps=20, busy=True) for i in range(500)]
    changes = sum(1 for a, b in itertools.pairwise(frames) if a != b)
    assert 8 <= changes <= 16 * 2  # ~8 updates/s, never 250
    brightness = {f.lightbar[0] for f in frames}
    assert len(brightness) > 3 and max(brightness) == 255 and min(brightness) < 128
    assert all(f.rumble == (0, 0) for f in frames)


def test_done_is_a_short_flash_and_rumble_then_idle():
    p = FeedbackPolicy(A, B)
    p.done(10.0)
    assert p.frame(10.01, alpha=0, steps=15, busy=False).lightbar == WHITE
    assert p.frame(10.01, alpha=0, steps=15, busy=False).rumble != (0, 0)
    assert p.animating(10.1, busy=False)
    later = p.frame(10.5, alpha=0, steps=15, busy=False)
    assert later.lightbar == A and later.rumble == (0, 0)
    assert not p.animating(10.5, busy=False)


def test_error_is_red_with_double_rumble():
    p = FeedbackPolicy(A, B)
    p.error(0.0)
    ts = [i / 100 for i in range(0, 60)]
    rumbles = [p.frame(t, alpha=1, steps=15, busy=False).rumble != (0, 0) for t in ts]
    pulses = sum(1 for a, b in itertools.pairwise([False, *rumbles]) if b and not a)
    assert pulses == 2
    assert p.frame(0.5, alpha=1, steps=15, busy=False).lightbar == RED
    assert p.frame(2.0, alpha=1, steps=15, busy=False).lightbar == B


def test_trigger_feel_rises_with_steps():
    p = FeedbackPolicy(A, B, trigger_feel=True)
    low = p.frame(0, alpha=0, steps=15, busy=False).left_trigger
    high = p.frame(0, alpha=0, steps=50, busy=False).left_trigger
    assert low != high
    assert low == TriggerEffect.feedback(0, 1) and high == TriggerEffect.feedback(0, 8)
    assert FeedbackPolicy(A, B).frame(0, alpha=0, steps=50, busy=False).left_trigger is None


@pytest.mark.parametrize("transport", list(Transport))
def test_every_frame_and_the_exit_state_build_valid_reports(transport):
    p = FeedbackPolicy(A, B, trigger_feel=True)
    p.done(0.0)
    frames = [p.frame(t / 10, alpha=t / 30, steps=15 + t, busy=t % 2 == 0) for t in range(30)]
    for fb in [*frames, SANE]:
        assert isinstance(fb, Feedback)
        report = build_output_report(fb, transport, seq=3, vibration_v2=True)
        if transport is Transport.BLUETOOTH:
            assert report[0] == 0x31 and crc32_ok(report, 0xA2)
        else:
            assert report[0] == 0x02
    assert SANE.lightbar == (0, 0, 128) and SANE.rumble == (0, 0) and SANE.player_leds == 0
    assert SANE.left_trigger == TriggerEffect.off() == SANE.right_trigger
