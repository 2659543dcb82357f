from riffpad.pad.state import NEUTRAL, Battery, Button, DPad, PadState, ReportKind, Transport


def test_button_names_sorted_and_dpad():
    s = PadState(
        kind=ReportKind.BT_FULL,
        lx=0,
        ly=0,
        rx=0,
        ry=0,
        l2=0,
        r2=0,
        buttons=int(Button.CROSS | Button.PADDLE_RIGHT | Button.L1),
        hat=3,
    )
    assert s.button_names == ["cross", "l1", "paddle_right"]
    assert s.dpad is DPad.SE
    assert s.transport is Transport.BLUETOOTH
    assert s.pressed(Button.CROSS) and not s.pressed(Button.CIRCLE)


def test_hat_released_values():
    for hat in range(8, 16):
        assert PadState(ReportKind.USB, 0, 0, 0, 0, 0, 0, 0, hat).dpad is None
    assert NEUTRAL.dpad is None and NEUTRAL.button_names == []


def test_battery_percent_like_kernel():
    assert Battery(level=3, status=0).percent == 35
    assert Battery(level=10, status=1).percent == 100
    assert Battery(level=10, status=1).charging
    assert Battery(level=0, status=2).percent == 100
    assert Battery(level=5, status=0xB).percent == 0
    assert Battery(level=5, status=0xF).percent is None
