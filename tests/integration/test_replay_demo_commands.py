"""`--replay demo` for every command that takes --replay; without a pad, the pad commands
say how to try them with the demo."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from riffpad.cli import main
from riffpad.pad import device as pad_device
from riffpad.resources import DEMO_CAPTURE, replay_path


def test_monitor_replays_the_shipped_demo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no file named "demo" here
    result = CliRunner().invoke(main, ["monitor", "--replay", "demo", "--json", "--fast"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert len(lines) > 10 and "params" in lines[0]


def test_calibrate_reads_the_demo_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "cal.toml"
    args = ["calibrate", "--replay", "demo", "--output", str(out), "--yes"]
    result = CliRunner().invoke(main, args, input="\n\n\n")
    # The demo is a performance, not a calibration routine: it is read (the pad it recorded
    # is named), and the calibration stops cleanly without saving.
    assert "Calibrating DualSense" in result.output and "does not exist" not in result.output
    assert not out.exists()


def test_a_file_named_demo_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert replay_path("demo") == DEMO_CAPTURE
    (tmp_path / "demo").write_text("")
    assert replay_path("demo") == "demo"


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["monitor"], "riffpad monitor --replay demo"),
        (["calibrate"], "riffpad calibrate --replay demo"),
        (["record", "take.jsonl"], "riffpad monitor --replay demo"),
    ],
)
def test_without_a_pad_the_pad_commands_suggest_the_demo(args, hint, tmp_path, monkeypatch):
    def no_pad(path=None, *a, **k):
        raise pad_device.PadNotFound("no DualSense or DualSense Edge found (USB or Bluetooth)")

    monkeypatch.setattr(pad_device, "open_pad", no_pad)
    monkeypatch.setattr("riffpad.commands.pad.open_pad", no_pad)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "no DualSense" in result.output and hint in result.output
