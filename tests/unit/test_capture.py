import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.fakehid import FakeBackend, FakePad, bt_report, bt_simple_report, usb_report

from riffpad.cli import main
from riffpad.pad import device as devmod
from riffpad.pad import features
from riffpad.pad.capture import (
    CaptureError,
    CaptureWriter,
    ReplayHid,
    make_header,
    read_capture,
    replay_device,
)
from riffpad.pad.device import PadReader, RejectEvent, ReportEvent
from riffpad.pad.output import Feedback
from riffpad.pad.state import PRODUCT_DUALSENSE_EDGE, Transport

DATA = Path(__file__).resolve().parents[1] / "data"
USB, BT = Transport.USB, Transport.BLUETOOTH


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


HEADER = json.dumps(make_header(USB))


def test_writer_and_reader_round_trip(tmp_path):
    path = tmp_path / "c.jsonl"
    reports = [usb_report(seq=i) for i in range(3)] + [b"\x31\x00"]
    with CaptureWriter(path, make_header(BT, PRODUCT_DUALSENSE_EDGE, mac="a0:ab:51:00:00:01")) as w:
        for i, r in enumerate(reports):
            w.write(i * 0.0041234567, r)
    header, got = read_capture(path)
    assert header["transport"] == "bluetooth" and header["product_id"] == 0x0DF2
    assert header["mac"] == "a0:ab:51:00:00:01"
    assert [r for _, r in got] == reports
    assert [t for t, _ in got] == [0.0, 0.004123, 0.008247, 0.01237]
    first = path.read_text().splitlines()[1]
    assert first == '{"t": 0.0, "report": "' + reports[0].hex() + '"}'


@pytest.mark.parametrize(
    ("lines", "where", "what"),
    [
        (["{not json"], ":1:", "header is not JSON"),
        (['{"format": "other"}'], ":1:", "not a riffpad capture header"),
        ([HEADER.replace('"version": 1', '"version": 7')], ":1:", "unsupported capture version"),
        ([HEADER.replace("3302", "1234")], ":1:", "not a DualSense"),
        ([HEADER, '{"t": 0, "report": "01"}', '{"t": 1, "report": "zz"}'], ":3:", "bad report"),
        ([HEADER, '{"t": 0.5, "report": "01"}', '{"t": 0.1, "report": "01"}'], ":3:", "backwards"),
        ([HEADER, '{"report": "01"}'], ":2:", "missing 't'"),
        ([HEADER, '{"t": "x", "report": "01"}'], ":2:", "not a number"),
        ([HEADER, "", "[1, 2]"], ":3:", "bad report line"),
    ],
)
def test_read_capture_errors_name_file_and_line(tmp_path, lines, where, what):
    path = _write(tmp_path / "broken.jsonl", lines)
    with pytest.raises(CaptureError) as info:
        read_capture(path)
    assert str(info.value).startswith(f"{path}{where}")
    assert what in str(info.value)


def test_read_capture_missing_or_empty_file(tmp_path):
    with pytest.raises(CaptureError, match="cannot read capture"):
        read_capture(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(CaptureError, match=r"empty.jsonl:1: empty file"):
        read_capture(tmp_path / "empty.jsonl")


def test_truncated_last_line_is_dropped_with_a_warning(caplog):
    _, reports = read_capture(DATA / "bt_malformed.jsonl")
    assert len(reports) == 7
    assert "bt_malformed.jsonl:9: dropping a truncated last line" in caplog.text


def test_replay_hid_follows_the_hidapi_contract():
    header, reports = read_capture(DATA / "usb_short.jsonl")
    hid = ReplayHid((header, reports), realtime=False)
    assert hid.read(10, 100) == list(reports[0][1][:10])  # cut to max_length
    for _, r in reports[1:]:
        assert hid.read(64, 100) == list(r)
    assert hid.finished
    assert hid.read(64, 1) == []  # after the end: timeouts, like an idle pad
    assert hid.write(b"\x02\x00") == 2 and hid.writes[0][1] == b"\x02\x00"
    hid.close()
    with pytest.raises(ValueError, match="not open"):
        hid.read(64, 1)


def test_replay_unplug_at_end_raises_like_a_pad():
    hid = ReplayHid(DATA / "bt_short.jsonl", realtime=False, unplug_at_end=True)
    for _ in range(4):
        hid.read(78, 10)
    with pytest.raises(OSError):
        hid.read(78, 10)


def test_replay_realtime_keeps_recorded_timing():
    header = make_header(USB)
    reports = [(0.0, usb_report(seq=0)), (0.05, usb_report(seq=1)), (0.1, usb_report(seq=2))]
    hid = ReplayHid((header, reports), realtime=True)
    start = time.monotonic()
    assert hid.read(64, 100)[7] == 0
    assert hid.read(64, 10) == []  # the next one is due in 50 ms: a 10 ms read times out
    assert hid.read(64, 100)[7] == 1
    assert hid.read(64, 100)[7] == 2
    assert time.monotonic() - start >= 0.095


def test_replay_answers_features_from_header_else_defaults():
    hid = ReplayHid(DATA / "bt_short.jsonl", realtime=False)
    mac = features.parse_mac(bytes(hid.get_feature_report(0x09, 20)), BT)
    assert mac == "a0:ab:51:5e:c0:01"
    bare = ReplayHid((make_header(BT), []), realtime=False)
    for rid, parse in (
        (0x09, features.parse_mac),
        (0x20, features.parse_firmware),
        (0x05, features.parse_calibration),
    ):
        parse(bytes(bare.get_feature_report(rid, features.SIZES[rid])), BT)  # valid CRC
    assert bare.feature_requests == [0x09, 0x20, 0x05]
    with pytest.raises(OSError):
        bare.get_feature_report(0x42, 10)


def test_replay_goes_through_device_and_reader_and_records_output():
    dev = replay_device(DATA / "bt_short.jsonl", realtime=False)
    assert dev.handle.feature_requests == [0x09, 0x20, 0x05]
    assert dev.mac() == "a0:ab:51:5e:c0:01" and dev.transport is BT
    reader = PadReader(dev, reconnect=False)
    reader.set_feedback(Feedback(lightbar=(1, 2, 3)))
    events = list(reader.events())
    assert [e.state.kind.value for e in events] == ["bt_simple", "bt_simple", "bt_full", "bt_full"]
    writes = dev.handle.writes
    assert len(writes) == 2  # the LED reset and the feedback, each once
    assert all(len(w) == 78 and w[0] == 0x31 for _, w in writes)
    assert writes[0][0] <= writes[1][0]  # timestamped in order


def test_record_then_replay_is_byte_exact(tmp_path, monkeypatch):
    reports = [
        bt_simple_report(lx=3),
        bt_report(seq=1, lx=1),
        bt_report(seq=2)[:-1] + b"\x00",  # bad CRC: kept in the capture all the same
        b"\x31\x00\x01",
        bt_report(seq=3, r2=255),
    ]
    pad = FakePad(BT, mac="a0:ab:51:12:34:56", reports=reports, end="unplug")
    monkeypatch.setattr(devmod, "default_backend", lambda: FakeBackend(pad))
    out = tmp_path / "rec.jsonl"
    result = CliRunner().invoke(main, ["record", str(out)])
    assert result.exit_code == 0, result.output
    assert "recorded 5 reports (3 parsed, 2 refused)" in result.stderr
    assert pad.writes == []  # recording is passive

    header, got = read_capture(out)
    assert [r for _, r in got] == reports
    assert header["mac"] == "a0:ab:51:12:34:56" and header["transport"] == "bluetooth"
    assert bytes.fromhex(header["features"]["20"]) == pad.feature(0x20)
    ts = [t for t, _ in got]
    assert ts[0] == 0.0 and ts == sorted(ts)

    # Replay through the same device/reader path gives back the very same bytes.
    dev = replay_device(out, realtime=False)
    events = list(PadReader(dev, reconnect=False, reset_leds=False).events())
    assert [e.raw for e in events] == reports
    assert [type(e) for e in events] == [
        ReportEvent,
        ReportEvent,
        RejectEvent,
        RejectEvent,
        ReportEvent,
    ]
    # And recording the replay writes the same reports again.
    again = tmp_path / "again.jsonl"
    with CaptureWriter(again, header) as w:
        for t, r in got:
            w.write(t, r)
    assert again.read_bytes() == out.read_bytes()


def test_record_seconds_stops_a_live_recording(tmp_path, monkeypatch):
    pad = FakePad(USB, source=lambda p: usb_report(seq=p.served % 256))
    monkeypatch.setattr(devmod, "default_backend", lambda: FakeBackend(pad))
    out = tmp_path / "rec.jsonl"
    start = time.monotonic()
    result = CliRunner().invoke(main, ["record", str(out), "--seconds", "0.2"])
    assert result.exit_code == 0, result.output
    assert 0.15 < time.monotonic() - start < 5
    _, got = read_capture(out)
    assert len(got) > 10 and [r[7] for _, r in got[:3]] == [0, 1, 2]


def test_record_without_pad_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr(devmod, "default_backend", lambda: FakeBackend())
    result = CliRunner().invoke(main, ["record", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 1 and "no DualSense" in result.output
    assert not (tmp_path / "x.jsonl").exists()


def test_record_to_an_unwritable_place_fails_clearly(tmp_path, monkeypatch):
    pad = FakePad(USB, reports=[usb_report()])
    monkeypatch.setattr(devmod, "default_backend", lambda: FakeBackend(pad))
    target = tmp_path / "missing-dir" / "x.jsonl"
    result = CliRunner().invoke(main, ["record", str(target)])
    assert result.exit_code == 1
    assert f"cannot write {target}: No such file or directory" in result.output


def test_replay_reader_events_carry_capture_time_even_when_fast(tmp_path):
    # Time-based controls (relative sticks, PS hold) must follow the capture, not the
    # wall clock, so a fast replay gives the same params as a real-time one.
    path = tmp_path / "c.jsonl"
    times = [0.0, 0.25, 1.5, 4.0]
    with CaptureWriter(path, make_header(Transport.USB)) as writer:
        for t in times:
            writer.write(t, usb_report())
    dev = replay_device(path, realtime=False)
    reader = PadReader(dev, reconnect=False, reset_leds=False, clock=dev.handle.capture_time)
    got = [e.t for e in reader.events() if isinstance(e, ReportEvent)]
    assert got == times
