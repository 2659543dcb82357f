import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.fakehid import FakeBackend, FakePad, bt_report, usb_report

from riffpad.cli import main
from riffpad.commands import monitor as monmod
from riffpad.pad import device as devmod
from riffpad.pad.capture import replay_device
from riffpad.pad.device import PadReader
from riffpad.pad.state import Battery, Button, Transport

DATA = Path(__file__).resolve().parents[1] / "data"
IDLE_TOUCH = (
    '[{"active": false, "id": 0, "x": 0, "y": 0}, {"active": false, "id": 0, "x": 0, "y": 0}]'
)


def _state(
    lx=128,
    ly=128,
    rx=128,
    ry=128,
    l2=0,
    r2=0,
    seq=0,
    buttons="[]",
    dpad="null",
    touch=IDLE_TOUCH,
    gyro="[0, 0, 0]",
    accel="[0, 0, 0]",
):
    return (
        f'{{"lx": {lx}, "ly": {ly}, "rx": {rx}, "ry": {ry}, "l2": {l2}, "r2": {r2}, '
        f'"seq": {seq}, "buttons": {buttons}, "dpad": {dpad}, "touch": {touch}, '
        f'"gyro": {gyro}, "accel": {accel}}}'
    )


def _pad_fields(line: str) -> str:
    """The line without the controls layer's "params"/"events" (tested in test_controls)."""
    record = json.loads(line)
    if "rejected" not in record:
        assert set(record.pop("params")) == {"alpha", "seed", "cfg", "steps"}
        assert isinstance(record.pop("events"), list)
    return json.dumps(record)


def _monitor_json(*args):
    result = CliRunner().invoke(main, ["monitor", "--json", *args])
    assert result.exit_code == 0, result.output
    return [_pad_fields(line) for line in result.stdout.splitlines()]


def test_monitor_json_usb_capture_exact_lines():
    assert _monitor_json("--replay", str(DATA / "usb_short.jsonl")) == [
        _state(seq=0),
        _state(lx=0, ly=255, seq=1, buttons='["cross"]', dpad='"n"'),
        _state(rx=200, ry=60, l2=128, r2=255, seq=2, buttons='["l1", "r2"]', dpad='"se"'),
        _state(
            seq=3,
            touch='[{"active": true, "id": 5, "x": 1919, "y": 1079}, '
            '{"active": false, "id": 4, "x": 0, "y": 0}]',
            gyro="[1, -2, 3]",
            accel="[-8192, 0, 8192]",
        ),
        _state(seq=4, buttons='["mute", "ps", "touchpad"]'),
    ]


def test_monitor_json_bluetooth_simple_then_full_exact_lines():
    assert _monitor_json("--replay", str(DATA / "bt_short.jsonl")) == [
        _state(
            lx=10,
            r2=200,
            seq="null",
            buttons='["ps", "triangle"]',
            dpad='"w"',
            touch="[]",
            gyro="null",
            accel="null",
        ),
        _state(lx=11, seq="null", touch="[]", gyro="null", accel="null"),
        _state(
            lx=12,
            seq=7,
            touch='[{"active": true, "id": 1, "x": 960, "y": 540}, '
            '{"active": true, "id": 2, "x": 100, "y": 200}]',
        ),
        _state(ly=1, seq=8, gyro="[-32768, 32767, 0]"),
    ]


def test_monitor_json_counts_malformed_reports_and_goes_on(caplog):
    lines = _monitor_json("--replay", str(DATA / "bt_malformed.jsonl"))
    assert lines == [
        _state(lx=1, seq=1),
        '{"rejected": "bad_crc", "length": 78}',
        '{"rejected": "bad_length", "length": 40}',
        '{"rejected": "unknown_id", "length": 78}',
        '{"rejected": "wrong_transport", "length": 64}',
        '{"rejected": "bad_length", "length": 20}',
        _state(lx=5, seq=5),
    ]
    assert "bt_malformed.jsonl:9: dropping a truncated last line" in caplog.text


def test_monitor_replay_broken_capture_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    lines = (DATA / "usb_short.jsonl").read_text().splitlines()
    lines.insert(3, "{not json")
    bad.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["monitor", "--json", "--replay", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:4: bad report line" in result.output


def test_extras_hook_adds_keys_to_each_object():
    # The place a mapping/calibration hook plugs in: "params" and "events" per report.
    dev = replay_device(DATA / "usb_short.jsonl", realtime=False)

    def extra(state, t):
        return {"params": {"alpha": state.rx / 255}, "events": ["fire"] if state.r2 > 200 else []}

    out = list(monmod.records(PadReader(dev, reconnect=False).events(), extras=[extra]))
    assert [r["events"] for r in out] == [[], [], ["fire"], [], []]
    assert out[2]["params"] == {"alpha": 200 / 255}
    assert list(out[0])[:6] == ["lx", "ly", "rx", "ry", "l2", "r2"]


def test_monitor_live_json_from_a_pad_through_disconnect(monkeypatch):
    reports = [usb_report(seq=1, buttons=Button.CIRCLE), b"\x31" + bytes(77), usb_report(seq=2)]
    pad = FakePad(Transport.USB, reports=reports)
    backend = FakeBackend(pad)
    monkeypatch.setattr(devmod, "default_backend", lambda: backend)
    # The pad goes away after its reports; the monitor keeps waiting until --seconds ends.
    pad.end = "unplug"
    result = CliRunner().invoke(main, ["monitor", "--json", "--seconds", "0.3"])
    assert result.exit_code == 0, result.output
    assert [_pad_fields(line) for line in result.stdout.splitlines()] == [
        _state(seq=1, buttons='["circle"]'),
        '{"rejected": "wrong_transport", "length": 78}',
        _state(seq=2),
    ]
    assert "pad disconnected" in result.stderr
    assert backend.enumerations > 1  # it polled for the pad to come back
    assert pad.writes == []  # monitoring is passive


def test_monitor_live_view_renders_counts():
    result = CliRunner().invoke(
        main, ["monitor", "--fast", "--replay", str(DATA / "bt_malformed.jsonl")]
    )
    assert result.exit_code == 0, result.output
    assert "2 accepted" in result.output
    assert "bad_crc 1" in result.output and "bad_length 2" in result.output
    assert "left stick" in result.output


def test_live_view_render_shows_state():
    from rich.console import Console

    pad = FakePad(
        Transport.BLUETOOTH,
        reports=[bt_report(lx=42, buttons=Button.L3, hat=2, battery=Battery(3, 1))],
        end="unplug",
    )
    reader = PadReader(devmod.open_pad(backend=FakeBackend(pad)), reconnect=False)
    next(iter(reader.events()))
    console = Console(width=120, record=True)
    console.print(monmod.render(reader, "test pad"))
    text = console.export_text()
    assert "x  42" in text and "l3" in text and "35% charging" in text and "connected" in text


@pytest.mark.parametrize("flag", ["--realtime", "--fast"])
def test_realtime_flag_accepted(flag):
    lines = _monitor_json(flag, "--replay", str(DATA / "bt_short.jsonl"))
    assert len(lines) == 4 and json.loads(lines[3])["seq"] == 8


def test_monitor_replay_prints_an_empty_report_as_refused_and_goes_on(tmp_path):
    # Issue 13: a 0-byte report in a capture aborted the replay ("bad report line").
    from riffpad.pad.capture import make_header

    cap = tmp_path / "gap.jsonl"
    lines = [json.dumps(make_header(Transport.USB))]
    for i, report in enumerate([usb_report(seq=0), b"", usb_report(seq=1)]):
        lines.append(json.dumps({"t": i * 0.004, "report": report.hex()}))
    cap.write_text("\n".join(lines) + "\n")
    out = _monitor_json("--replay", str(cap))
    assert len(out) == 3
    assert json.loads(out[1]) == {"rejected": "empty", "length": 0}
    assert json.loads(out[0])["seq"] == 0 and json.loads(out[2])["seq"] == 1
