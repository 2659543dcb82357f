"""Calibration files: defaults, the per-pad location, TOML round trip, errors with lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riffpad.controls import (
    Calibration,
    CalibrationError,
    StickCal,
    TriggerCal,
    load_calibration,
    save_calibration,
)
from riffpad.controls.calibration import (
    DEFAULT_DEADZONE,
    default_path,
    dumps,
    pad_key,
    parse_calibration,
)


@pytest.fixture
def config_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


def test_defaults_without_a_file(config_home):
    cal = load_calibration("a0:b1:c2:d3:e4:f5")
    assert cal == Calibration(serial="a0:b1:c2:d3:e4:f5")
    assert cal.source is None
    assert cal.right_stick.center == (128, 128)
    assert cal.right_stick.deadzone == DEFAULT_DEADZONE == 10
    assert (cal.l2.rest, cal.l2.full) == (4, 250)


def test_per_pad_file_in_the_user_config_dir(config_home):
    path = default_path("A0:B1:C2:D3:E4:F5")
    assert path == config_home / "riffpad" / "calibration" / "a0-b1-c2-d3-e4-f5.toml"
    mine = Calibration(right_stick=StickCal(center=(130, 126), noise=3, deadzone=12))
    save_calibration(mine, path)
    assert load_calibration("A0:B1:C2:D3:E4:F5").right_stick == mine.right_stick
    assert load_calibration("A0:B1:C2:D3:E4:F5").source == path
    assert load_calibration("another-pad") == Calibration(serial="another-pad")  # its own file


def test_pad_key_is_filename_safe():
    assert pad_key("a0:b1:c2:d3:e4:f5") == "a0-b1-c2-d3-e4-f5"
    assert pad_key("../../etc/passwd") == "etc-passwd"
    assert pad_key(None) == pad_key("") == "default"


@st.composite
def calibrations(draw):
    def stick():
        c = (draw(st.integers(100, 156)), draw(st.integers(100, 156)))
        lo = (draw(st.integers(0, 30)), draw(st.integers(0, 30)))
        hi = (draw(st.integers(226, 255)), draw(st.integers(226, 255)))
        return StickCal(
            center=c,
            noise=draw(st.integers(0, 10)),
            deadzone=draw(st.integers(0, 25)),
            min=lo,
            max=hi,
            outer=draw(st.floats(0.5, 1.0)),
        )

    def trig():
        rest = draw(st.integers(0, 100))
        return TriggerCal(rest=rest, full=draw(st.integers(rest + 1, 255)))

    serial = draw(
        st.one_of(st.none(), st.from_regex(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", fullmatch=True))
    )
    return Calibration(stick(), stick(), trig(), trig(), serial=serial)


@settings(max_examples=100, deadline=None)
@given(cal=calibrations())
def test_round_trip_through_toml(tmp_path_factory, cal):
    path = tmp_path_factory.mktemp("cal") / "pad.toml"
    save_calibration(cal, path, created="2026-11-26T13:00:00Z")
    back = parse_calibration(path)
    assert back == cal
    assert back.source == path
    assert list(path.parent.iterdir()) == [path]  # written aside, then renamed


def test_saving_again_replaces_the_old_values(tmp_path):
    path = tmp_path / "pad.toml"
    save_calibration(Calibration(l2=TriggerCal(10, 200)), path)
    save_calibration(Calibration(l2=TriggerCal(3, 240)), path)
    assert load_calibration(path=path).l2 == TriggerCal(3, 240)
    assert path.read_text().count("[l2]") == 1


def error_of(tmp_path: Path, text: str) -> CalibrationError:
    path = tmp_path / "cal.toml"
    path.write_text(text)
    with pytest.raises(CalibrationError) as info:
        load_calibration("x", path)
    assert str(info.value).startswith(f"{path}:{info.value.line}: ")
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("[right_stick]\ncenter = [128, 128\n", 2, "invalid TOML"),
        ("[right_stick]\nnoise = 1\ncenter = [0, 128]\n", 3, "min < center < max"),
        ("[right_stick]\ncenter = [128]\n", 2, "two integers"),
        ("[left_stick]\ndeadzone = 90\n", 2, "deadzone <"),
        ("[left_stick]\ndeadzone = 1.5\n", 2, "expected an integer"),
        ("[left_stick]\nouter = 0.1\n", 2, "0.5 .. 1.0"),
        ("[l2]\nrest = 0\n\n[r2]\nrest = 200\nfull = 100\n", 6, "rest < full"),
        ("[r2]\nmax = 3\n", 2, "expected one of: full, rest"),
        ("[thumbstick]\n", 1, "expected one of: l2, left_stick, r2, right_stick"),
        ('format = "riffpad-mapping"\n', 1, "riffpad-calibration"),
        ("l2 = 5\n", 1, "expected a table [l2]"),
    ],
)
def test_errors_name_file_line_and_expectation(tmp_path, text, line, fragment):
    err = error_of(tmp_path, text)
    assert err.line == line, err
    assert fragment in err.message, err


def test_partial_file_fills_in_defaults(tmp_path):
    path = tmp_path / "cal.toml"
    path.write_text("[r2]\nrest = 12\n")
    cal = load_calibration(None, path)
    assert cal.r2 == TriggerCal(rest=12, full=250)
    assert cal.right_stick == StickCal()


def test_an_explicit_path_must_exist(tmp_path):
    with pytest.raises(CalibrationError, match="no such file"):
        load_calibration("x", tmp_path / "missing.toml")


def test_dumps_is_commented_toml():
    text = dumps(Calibration(serial="aa:bb:cc:dd:ee:ff"))
    assert text.startswith("# riffpad calibration")
    assert 'serial = "aa:bb:cc:dd:ee:ff"' in text
    assert "[left_stick]" in text and "[r2]" in text


HUGE = "1" + "0" * 40


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        # Floats that are not numbers: before, `outer = nan` raised a bare ValueError and
        # `inf` an OverflowError from the deadzone limit's int().
        ("[left_stick]\nouter = nan\n", 2, "outer: expected a number 0.5 .. 1.0, got nan"),
        ("[left_stick]\nouter = inf\n", 2, "got inf"),
        ("[right_stick]\n\nouter = -inf\n", 3, "got -inf"),
        (f"[left_stick]\nouter = {HUGE}\n", 2, "0.5 .. 1.0, got an integer of 41 digits"),
        (f"[left_stick]\nnoise = {HUGE}\n", 2, "noise: expected an integer 0 .. 255"),
        (f"[left_stick]\ndeadzone = -{HUGE}\n", 2, "deadzone: expected an integer 0 .. 255"),
        (f"[l2]\nrest = {HUGE}\n", 2, "rest: expected an integer 0 .. 255"),
        (f"[r2]\nfull = -{HUGE}\n", 2, "full: expected an integer 0 .. 255"),
        (f"[left_stick]\ncenter = [{HUGE}, 1]\n", 2, "center: expected an integer 0 .. 255"),
        ("[left_stick]\nmax = [255, nan]\n", 2, "max: expected an integer 0 .. 255, got nan"),
        ("[left_stick]\nmin = [true, 0]\n", 2, "min: expected an integer 0 .. 255, got true"),
        ('[left_stick]\nouter = "0.9"\n', 2, 'expected a number 0.5 .. 1.0, got "0.9"'),
        ("[left_stick]\nnoise = 2.0\n", 2, "expected an integer 0 .. 255, got 2.0"),
        # Past Python's int digit limit tomllib raises a plain ValueError with no line.
        ("[l2]\n\nrest = 1" + "0" * 5000 + "\n", 3, "a number far too long"),
    ],
)
def test_every_number_is_finite_and_in_range(tmp_path, text, line, fragment):
    err = error_of(tmp_path, text)
    assert err.line == line, err
    assert fragment in err.message, err


def test_monitor_names_file_and_line_of_a_nan_calibration(tmp_path):
    from click.testing import CliRunner

    from riffpad.cli import main

    path = tmp_path / "cal.toml"
    path.write_text("[left_stick]\nouter = nan\n")
    data = Path(__file__).resolve().parents[1] / "data" / "usb_short.jsonl"
    result = CliRunner().invoke(
        main, ["monitor", "--json", "--replay", str(data), "--calibration", str(path)]
    )
    assert result.exit_code == 1, result.output
    assert f"{path}:2: outer: expected a number 0.5 .. 1.0, got nan" in result.output
    assert "Traceback" not in result.output
