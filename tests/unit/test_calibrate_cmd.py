"""``riffpad calibrate`` end to end: a scripted capture through ReplayHid, the same
device/reader/parser path as a live pad, answered through click's input stream."""

from __future__ import annotations

from pathlib import Path

import pytest
import support.calib_capture as cc
from click.testing import CliRunner

from riffpad.cli import main
from riffpad.controls import Calibration, Controls, TriggerCal, load_calibration, load_mapping
from riffpad.controls.calibration import save_calibration
from riffpad.pad.state import NEUTRAL

CAPTURE = cc.DATA / "calib_usb.jsonl"
ENTER3 = "\n\n\n"


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


def run(*args: str, input: str = ENTER3 + "y\n"):
    return CliRunner().invoke(main, ["calibrate", *args], input=input)


def check_measured(cal: Calibration) -> None:
    """What the scripted performer did, measured back."""
    left, right = cal.left_stick, cal.right_stick
    assert left.center == cc.LEFT_CENTRE and right.center == cc.RIGHT_CENTRE
    assert (left.noise, right.noise) == (cc.LEFT_JITTER, cc.RIGHT_JITTER)
    assert (left.min, left.max) == (cc.LEFT_MIN, cc.LEFT_MAX)
    assert (right.min, right.max) == (cc.RIGHT_MIN, cc.RIGHT_MAX)
    assert left.deadzone == right.deadzone == 6  # max(6, 2 * noise + 2)
    assert cal.l2 == TriggerCal(rest=cc.L2_REST_MAX + 2, full=cc.L2_PEAK - 3)
    assert cal.r2 == TriggerCal(rest=cc.R2_REST_MAX + 2, full=cc.R2_PEAK - 3)
    assert cal.serial == cc.MAC


def test_checked_in_capture_is_what_the_builder_makes():
    assert CAPTURE.read_text() == "\n".join(cc.lines("usb")) + "\n"


def test_calibrate_a_capture_and_save_after_confirming(tmp_path):
    out = tmp_path / "pad.toml"
    result = run("--replay", str(CAPTURE), "--output", str(out))
    assert result.exit_code == 0, result.output
    for n in (1, 2, 3):
        assert f"Step {n} done." in result.output
    assert "a stick moved: measuring again" in result.output  # the scripted bump
    assert "centre 130,126  noise 2  deadzone 6  x 3..252  y 1..254" in result.output
    assert f"Save to {out}? [Y/n]" in result.output
    check_measured(load_calibration(path=out))
    # The measured calibration puts the drifted rest exactly on the documented values.
    controls = Controls(load_mapping(), load_calibration(path=out))
    rest = NEUTRAL.__class__(
        kind=NEUTRAL.kind,
        lx=cc.LEFT_CENTRE[0] + 2,
        ly=cc.LEFT_CENTRE[1] - 2,
        rx=cc.RIGHT_CENTRE[0] - 1,
        ry=cc.RIGHT_CENTRE[1] + 1,
        l2=cc.L2_REST_MAX,
        r2=0,
        buttons=0,
        hat=8,
    )
    p, _ = controls.update(rest, 0.0)
    assert (p.alpha, p.nudge, p.cfg, p.steps) == (0.5, 0, 9.0, 15)


def test_default_location_is_the_pads_file_in_the_config_dir(config_home):
    result = run("--replay", str(CAPTURE), "--yes", input=ENTER3)
    assert result.exit_code == 0, result.output
    path = config_home / "riffpad" / "calibration" / "a0-ab-51-12-34-56.toml"
    assert path.is_file()
    check_measured(load_calibration(cc.MAC))  # found by serial, no path given


def test_declining_saves_nothing_and_keeps_the_old_file(tmp_path):
    out = tmp_path / "pad.toml"
    save_calibration(Calibration(l2=TriggerCal(10, 200)), out)
    before = out.read_text()
    result = run("--replay", str(CAPTURE), "--output", str(out), input=ENTER3 + "n\n")
    assert result.exit_code == 0, result.output
    assert "Not saved" in result.output
    assert out.read_text() == before


def test_rerunning_replaces_the_old_values_and_shows_them(tmp_path):
    out = tmp_path / "pad.toml"
    save_calibration(Calibration(l2=TriggerCal(10, 200)), out)
    result = run("--replay", str(CAPTURE), "--output", str(out), "--yes", input=ENTER3)
    assert result.exit_code == 0, result.output
    assert "before" in result.output and "rest 10  full 200" in result.output
    check_measured(load_calibration(path=out))
    assert [p.name for p in tmp_path.iterdir()] == ["pad.toml"]


def test_bluetooth_capture_measures_the_same(tmp_path):
    capture = cc.write(tmp_path / "calib_bt.jsonl", "bluetooth")
    out = tmp_path / "bt.toml"
    result = run("--replay", str(capture), "--output", str(out))
    assert result.exit_code == 0, result.output
    check_measured(load_calibration(path=out))


@pytest.mark.parametrize(("keep", "step"), [(200, 1), (700, 2), (1200, 3)])
def test_a_capture_that_ends_early_saves_nothing(tmp_path, keep, step):
    capture = cc.write(tmp_path / "short.jsonl", "usb", keep=keep)
    out = tmp_path / "pad.toml"
    result = run("--replay", str(capture), "--output", str(out))
    assert result.exit_code == 1
    assert f"the capture ended during step {step}" in result.output
    assert "nothing was saved" in result.output
    assert not out.exists()


def test_measurements_that_make_no_calibration_are_refused():
    from riffpad.controls import calibrator

    rest = calibrator.RestStep()
    for _ in range(calibrator.SETTLE_REPORTS + calibrator.REST_REPORTS):
        rest.feed(NEUTRAL)
    circle = calibrator.CircleStep({"left_stick": (128, 128), "right_stick": (128, 128)})
    squeeze = calibrator.SqueezeStep({"l2": 0, "r2": 0})
    cal = calibrator.result(rest, circle, squeeze, serial=None)  # sticks never moved
    found = calibrator.problems(cal)
    assert any(p.startswith("left_stick center") for p in found)
    assert not any(p.startswith("r2") for p in found)  # full = rest + 10 is still usable


def test_a_broken_capture_names_file_and_line(tmp_path):
    capture = tmp_path / "bad.jsonl"
    rows = cc.lines("usb")[:5]
    rows[3] = '{"t": 0.5, "report": "zz"}'
    capture.write_text("\n".join(rows) + "\n")
    result = run("--replay", str(capture))
    assert result.exit_code == 1
    assert f"{capture}:4" in result.output


def test_no_pad_is_a_clear_error(monkeypatch):
    import riffpad.pad.device as device

    class NoPads:
        def enumerate(self, vendor_id=0, product_id=0):
            return []

    monkeypatch.setattr(device, "default_backend", lambda: NoPads())
    result = run()
    assert result.exit_code == 1
    assert "no DualSense" in result.output


def live_pad(**kw):
    """A simulated pad behind a fake ``hidraw`` (hid-device's fakehid, held to hidapi's
    contract) that plays the scripted performance, then is unplugged."""
    import json

    from support.fakehid import FakeBackend, FakePad

    from riffpad.pad.state import Transport

    reports = [bytes.fromhex(json.loads(line)["report"]) for line in cc.lines("usb")[1:]]
    pad = FakePad(Transport.USB, mac=cc.MAC, reports=reports, end="unplug", **kw)
    return FakeBackend(pad), pad


def test_calibrate_a_live_pad_by_device_path(tmp_path, monkeypatch):
    import riffpad.pad.device as device

    backend, pad = live_pad(path=b"/dev/hidraw7")
    monkeypatch.setattr(device, "default_backend", lambda: backend)
    out = tmp_path / "live.toml"
    result = run("--device", "/dev/hidraw7", "--output", str(out))
    assert result.exit_code == 0, result.output
    check_measured(load_calibration(path=out))
    assert pad.writes == []  # passive: nothing written to the pad


def test_a_pad_unplugged_mid_step_saves_nothing(tmp_path, monkeypatch):
    import riffpad.pad.device as device

    backend, pad = live_pad()
    while len(pad.reports) > 900:  # unplugged during the circling
        pad.reports.pop()
    monkeypatch.setattr(device, "default_backend", lambda: backend)
    out = tmp_path / "live.toml"
    result = run("--output", str(out))
    assert result.exit_code == 1
    assert "the pad went away during step 2" in result.output
    assert not out.exists()


def test_yes_runs_unattended_without_a_terminal(tmp_path):
    # Issue 13: --yes still waited for Enter before each step; with no input it must run.
    out = tmp_path / "pad.toml"
    result = run("--replay", str(CAPTURE), "--output", str(out), "--yes", input="")
    assert result.exit_code == 0, result.output
    assert "Press Enter" not in result.output
    for n in (1, 2, 3):
        assert f"Step {n} done." in result.output
    check_measured(load_calibration(path=out))
