import json
import logging
import threading

import pytest
from click.testing import CliRunner
from support.fakehid import (
    FakeBackend,
    FakeDevice,
    FakePad,
    bt_report,
    bt_simple_report,
    usb_report,
)

from riffpad.cli import main
from riffpad.pad import device as devmod
from riffpad.pad.device import (
    ConnectionEvent,
    PadPermissionError,
    PadReader,
    RejectEvent,
    ReportEvent,
    enumerate_pads,
    open_pad,
)
from riffpad.pad.features import Firmware
from riffpad.pad.output import Feedback
from riffpad.pad.state import (
    NEUTRAL,
    PRODUCT_DUALSENSE,
    PRODUCT_DUALSENSE_EDGE,
    Battery,
    ReportKind,
    Transport,
)

USB, BT = Transport.USB, Transport.BLUETOOTH


def _collect(reader, limit=10_000):
    out = []
    for event in reader.events():
        out.append(event)
        if len(out) >= limit:
            break
    return out


# --- the fake is held to the real module's contract --------------------------------------------


def test_fake_open_errors_match_real_hidraw():
    hidraw = pytest.importorskip("hidraw")
    real, fake = hidraw.device(), FakeBackend().device()
    for handle in (real, fake):
        with pytest.raises(OSError, match="open failed"):
            handle.open_path(b"/nonexistent")
        assert handle.error() == (
            "Failed to open a device with path '/nonexistent': No such file or directory"
        )
        with pytest.raises(ValueError, match="not open"):
            handle.read(64, 10)
        with pytest.raises(ValueError, match="not open"):
            handle.get_feature_report(0x09, 20)
        handle.close()  # closing an unopened handle is fine


def test_fake_enumerate_keys_match_real_hidraw():
    hidraw = pytest.importorskip("hidraw")
    # No pads here, so compare against the keys cython-hidapi 0.15 documents and builds.
    assert hidraw.enumerate(0x054C, 0x0CE6) == []
    keys = set(FakePad(USB).entries()[0])
    assert keys == {
        "path",
        "vendor_id",
        "product_id",
        "serial_number",
        "release_number",
        "manufacturer_string",
        "product_string",
        "usage_page",
        "usage",
        "interface_number",
        "bus_type",
    }


def test_fake_read_contract():
    pad = FakePad(USB, reports=[usb_report(lx=1)])
    handle = FakeBackend(pad).device()
    handle.open_path(pad.path)
    with pytest.raises(RuntimeError, match="already open"):
        handle.open_path(pad.path)
    assert handle.read(10, 5) == list(usb_report(lx=1)[:10])  # cut to max_length
    assert handle.read(64, 5) == []  # timeout
    pad.unplug()
    with pytest.raises(OSError):
        handle.read(64, 5)
    assert handle.write(b"\x02") == -1


# --- enumeration -------------------------------------------------------------------------------


def test_enumerates_usb_bluetooth_and_edge_once_each():
    usb = FakePad(USB, usages=2)  # listed twice by hidapi (two usages): deduped
    bt = FakePad(BT, mac="a0:ab:51:00:00:02")
    edge = FakePad(USB, product_id=PRODUCT_DUALSENSE_EDGE, mac="a0:ab:51:00:00:03")
    backend = FakeBackend(usb, bt, edge)
    pads = enumerate_pads(backend)
    by_path = {p.path: p for p in pads}
    assert len(pads) == 3 and set(by_path) == {usb.path, bt.path, edge.path}
    assert by_path[usb.path].transport is USB and by_path[usb.path].model == "DualSense"
    assert by_path[bt.path].transport is BT and by_path[bt.path].serial == "a0:ab:51:00:00:02"
    assert by_path[edge.path].model == "DualSense Edge"


def test_transport_fallback_and_non_hid_usb_interfaces():
    class OldHidapi(FakeBackend):
        def enumerate(self, vendor_id=0, product_id=0):
            entries = super().enumerate(vendor_id, product_id)
            for e in entries:
                del e["bus_type"]  # hidapi before bus_type existed
            if product_id == PRODUCT_DUALSENSE:
                entries.append(dict(entries[0], path=b"/dev/hidraw-audio", interface_number=0))
            return entries

    usb, bt = FakePad(USB), FakePad(BT)
    pads = enumerate_pads(OldHidapi(usb, bt))
    assert [(p.path, p.transport) for p in pads] == [(usb.path, USB), (bt.path, BT)]


def test_unknown_bus_type_asks_the_kernel_through_sysfs(tmp_path):
    # hidapi reports bus_type 0 and interface -1 for a USB HID device without a usb_device
    # parent (uhid: the kernel VM tests' emulated pad). The kernel's HID name gives the bus.
    class UnknownBus(FakeBackend):
        def enumerate(self, vendor_id=0, product_id=0):
            entries = super().enumerate(vendor_id, product_id)
            for e in entries:
                e["bus_type"], e["interface_number"] = 0, -1
            return entries

    usb, bt = FakePad(USB), FakePad(BT, mac="a0:ab:51:00:00:09")
    for pad, hid_name in ((usb, "0003:054C:0CE6.0001"), (bt, "0005:054C:0CE6.0002")):
        parent = tmp_path / "devices" / hid_name
        parent.mkdir(parents=True)
        node = tmp_path / "class" / "hidraw" / pad.path.decode().rsplit("/", 1)[-1]
        node.mkdir(parents=True)
        (node / "device").symlink_to(parent)
    pads = enumerate_pads(UnknownBus(usb, bt), sysfs=str(tmp_path))
    assert [(p.path, p.transport) for p in pads] == [(usb.path, USB), (bt.path, BT)]


# --- opening -------------------------------------------------------------------------------


def test_bluetooth_simple_mode_is_switched_to_full_like_the_kernel():
    def source(pad):
        return bt_simple_report(lx=7) if pad.simple_mode else bt_report(lx=7, seq=pad.served)

    pad = FakePad(BT, simple_mode=True, source=source)
    backend = FakeBackend(pad)
    # Before opening, the pad only sends 10-byte simple reports.
    raw = backend.device()
    raw.open_path(pad.path)
    assert len(raw.read(78, 5)) == 10
    raw.close()

    dev = open_pad(backend=backend)
    assert pad.feature_requests == [0x09, 0x20, 0x05]  # the kernel's probe order
    assert dev.mac() == pad.mac
    assert dev.firmware() == pad.firmware
    assert dev.calibration() is not None
    events = _collect(PadReader(dev, reconnect=False), limit=3)
    assert [e.state.kind for e in events] == [ReportKind.BT_FULL] * 3
    assert events[0].state.lx == 7


def test_bad_feature_crc_is_logged_and_firmware_unknown(caplog):
    pad = FakePad(BT, firmware=Firmware(1, 2, 0x0100))
    pad.bad_feature_crc = {0x20}
    with caplog.at_level(logging.WARNING):
        dev = open_pad(backend=FakeBackend(pad))
    assert "feature 0x20: CRC32 mismatch" in caplog.text
    assert dev.firmware() is None and dev.mac() == pad.mac
    assert dev.vibration_v2  # unknown firmware is treated as new, as SDL does


def test_vibration_v2_from_firmware():
    old = open_pad(backend=FakeBackend(FakePad(USB, firmware=Firmware(0, 0, 0x0214))))
    new = open_pad(backend=FakeBackend(FakePad(USB, firmware=Firmware(0, 0, 0x0215))))
    edge = FakePad(USB, product_id=PRODUCT_DUALSENSE_EDGE, firmware=Firmware(0, 0, 0x0100))
    assert (old.vibration_v2, new.vibration_v2) == (False, True)
    assert open_pad(backend=FakeBackend(edge)).vibration_v2


def test_permission_denied_names_the_udev_fix():
    pad = FakePad(USB, permission_denied=True)
    with pytest.raises(PadPermissionError) as info:
        open_pad(backend=FakeBackend(pad))
    message = str(info.value)
    assert pad.path.decode() in message
    assert "riffpad udev install" in message and "README" in message


def test_open_by_path_and_missing_path():
    a, b = FakePad(USB), FakePad(BT, mac="a0:ab:51:00:00:09")
    backend = FakeBackend(a, b)
    assert open_pad(b.path.decode(), backend).info.path == b.path
    with pytest.raises(devmod.PadNotFound, match="/dev/nope"):
        open_pad(b"/dev/nope", backend)
    with pytest.raises(devmod.PadNotFound, match="no DualSense"):
        open_pad(backend=FakeBackend())


# --- reading -------------------------------------------------------------------------------


def test_reports_and_rejections_are_counted_never_raised():
    good = [usb_report(seq=i, lx=i) for i in range(5)]
    junk = [b"", b"\x01" + bytes(62), b"\x31" + bytes(77), bt_report(), b"\x05" + bytes(10)]
    pad = FakePad(
        USB, reports=[good[0], junk[1], good[1], junk[2], junk[3], good[2], junk[4]], end="unplug"
    )
    reader = PadReader(open_pad(backend=FakeBackend(pad)), reconnect=False)
    events = _collect(reader)
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "ReportEvent",
        "RejectEvent",
        "ReportEvent",
        "RejectEvent",
        "RejectEvent",
        "ReportEvent",
        "RejectEvent",
        "ConnectionEvent",
    ]
    assert reader.accepted == 3
    assert reader.rejected == {"bad_length": 1, "wrong_transport": 2, "unknown_id": 1}
    assert events[1].rejected.length == 63 and events[1].raw == junk[1]


def test_unplug_mid_read_disconnects_without_exception():
    pad = FakePad(USB, reports=[usb_report(r2=255, buttons=0x800)] * 3)
    backend = FakeBackend(pad)
    reader = PadReader(open_pad(backend=backend), reconnect=False)
    seen = []
    for event in reader.events():
        seen.append(event)
        if len(seen) == 3:
            assert reader.state.r2 == 255 and reader.connected
            backend.unplug(pad)  # yanked while the reader waits for the next report
    assert isinstance(seen[-1], ConnectionEvent) and not seen[-1].connected
    assert "read error" in seen[-1].reason
    assert not reader.connected
    assert reader.state == NEUTRAL  # nothing stays held after an unplug
    assert reader.device is None


def test_reconnects_over_the_other_transport_preferring_the_same_pad(monkeypatch):
    usb = FakePad(USB, mac="a0:ab:51:00:00:01", reports=[usb_report(lx=1)] * 2)
    other = FakePad(BT, mac="a0:ab:51:99:99:99", reports=[bt_report(lx=99)])
    same_bt = FakePad(BT, mac="a0:ab:51:00:00:01", reports=[bt_report(lx=2)])
    backend = FakeBackend(usb)
    reader = PadReader(open_pad(backend=backend), backend=backend, poll_interval=0.25)
    waits = []

    def wait(timeout):  # the reader's sleep between enumeration polls
        waits.append(timeout)
        if len(waits) == 3:  # gone for three polls, then back over Bluetooth
            backend.add(other)  # listed first, but not the pad we had
            backend.add(same_bt)

    monkeypatch.setattr(reader._stop, "wait", wait)
    events = []
    for event in reader.events():
        events.append(event)
        if len(events) == 2:
            backend.unplug(usb)
        if isinstance(event, ConnectionEvent):
            assert reader.state == NEUTRAL
            if event.connected:
                break
    assert [type(e).__name__ for e in events] == [
        "ReportEvent",
        "ReportEvent",
        "ConnectionEvent",
        "ConnectionEvent",
    ]
    assert events[2].connected is False and events[2].info.path == usb.path
    assert waits == [0.25] * 3  # polled, sleeping between tries (not busy)
    assert backend.enumerations >= 4
    assert events[3].info.path == same_bt.path and events[3].info.transport is BT
    assert reader.connected and reader.device.mac() == "a0:ab:51:00:00:01"
    nxt = next(iter(reader.events()))
    assert isinstance(nxt, ReportEvent) and nxt.state.lx == 2
    assert same_bt.writes, "the reader set the reconnected pad up (LED reset)"


def test_reader_without_device_waits_for_a_pad_and_reports_permission_once(monkeypatch):
    backend = FakeBackend()
    reader = PadReader(backend=backend, poll_interval=0.5)
    assert not reader.connected and reader.state == NEUTRAL
    denied = FakePad(USB, permission_denied=True)
    polls = []

    def wait(timeout):
        polls.append(timeout)
        if len(polls) == 2:
            backend.add(denied)
        if len(polls) == 5:  # permissions fixed (udev rule installed, pad re-plugged)
            backend.unplug(denied)
            backend.add(FakePad(USB, reports=[usb_report(lx=9)]))

    monkeypatch.setattr(reader._stop, "wait", wait)
    events = []
    for event in reader.events():
        events.append(event)
        if isinstance(event, ReportEvent):
            break
    assert [(type(e).__name__, getattr(e, "connected", None)) for e in events] == [
        ("ConnectionEvent", False),  # reported once, not once per poll
        ("ConnectionEvent", True),
        ("ReportEvent", None),
    ]
    assert "riffpad udev install" in events[0].reason
    assert polls == [0.5] * 5 and events[2].state.lx == 9


def test_reconnect_falls_back_to_first_pad():
    usb = FakePad(USB, reports=[usb_report()], end="unplug")
    stranger = FakePad(BT, mac="a0:ab:51:77:77:77", reports=[bt_report(lx=77)])
    backend = FakeBackend(usb)
    reader = PadReader(open_pad(backend=backend), backend=backend, poll_interval=0.001)
    for event in reader.events():
        if isinstance(event, ConnectionEvent) and not event.connected:
            backend.add(stranger)
        if isinstance(event, ReportEvent) and event.state.lx == 77:
            break
    assert reader.device.mac() == "a0:ab:51:77:77:77"


def test_writes_only_when_feedback_changes():
    n = 1000
    pad = FakePad(BT, reports=[bt_report(seq=i % 256) for i in range(n)], end="unplug")
    reader = PadReader(open_pad(backend=FakeBackend(pad)), reconnect=False)
    reader.set_feedback(Feedback(lightbar=(0, 0, 255)))
    writes_before_change = None
    for _event in reader.events():
        if reader.accepted == 599:
            writes_before_change = len(pad.writes)
        if reader.accepted == 500:
            reader.set_feedback(Feedback(lightbar=(0, 0, 255)))  # equal: no write
        if reader.accepted == 600:
            reader.set_feedback(Feedback(lightbar=(255, 0, 0)))
    assert reader.accepted == n
    # 599 reports with constant feedback: the LED reset at start and that feedback, once.
    assert writes_before_change == 2
    # Then one change: 3 writes for 1000 reports.
    assert len(pad.writes) == 3
    assert all(len(w) == 78 and w[0] == 0x31 for w in pad.writes)
    # Bluetooth output sequence number in the high nibble of byte 1, counting up.
    assert [w[1] >> 4 for w in pad.writes] == [0, 1, 2]


def test_bluetooth_output_sequence_wraps_at_16():
    pad = FakePad(BT)
    dev = open_pad(backend=FakeBackend(pad))
    for i in range(20):
        assert dev.send_feedback(Feedback(lightbar=(i, 0, 0)))
    assert not dev.send_feedback(Feedback(lightbar=(19, 0, 0)))
    assert [w[1] >> 4 for w in pad.writes] == [i % 16 for i in range(20)]


def test_led_reset_is_sent_once_at_start():
    pad = FakePad(USB, reports=[usb_report()] * 50, end="unplug")
    reader = PadReader(open_pad(backend=FakeBackend(pad)), reconnect=False)
    _collect(reader)
    assert len(pad.writes) == 1
    # Kernel dualsense_reset_leds: only valid_flag2 = LIGHTBAR_SETUP_CONTROL_ENABLE and
    # lightbar_setup = LIGHT_OUT (USB bytes 39 and 42); no rumble, no colours.
    report = pad.writes[0]
    assert report[0] == 0x02
    assert {i: b for i, b in enumerate(report) if b and i} == {39: 0x02, 42: 0x02}


def test_rumble_uses_the_vibration_mode_the_firmware_wants():
    for update, v2 in ((0x0214, False), (0x0215, True)):
        pad = FakePad(USB, firmware=Firmware(0, 0, update))
        open_pad(backend=FakeBackend(pad)).send_feedback(Feedback(rumble=(200, 100)))
        report = pad.writes[-1]
        assert (report[3], report[4]) == (100, 200)  # motor right (weak), left (strong)
        assert bool(report[39] & 0x04) is v2  # valid_flag2 COMPATIBLE_VIBRATION2
        assert bool(report[1] & 0x01) is not v2  # valid_flag0 COMPATIBLE_VIBRATION


def test_thread_mode_with_callback_and_stop():
    pad = FakePad(USB, source=lambda p: usb_report(seq=p.served % 256, lx=p.served % 256))
    reader = PadReader(open_pad(backend=FakeBackend(pad)), timeout_ms=20)
    got = threading.Event()
    seen = []

    def on_event(event):
        seen.append(event)
        if len(seen) == 200:
            got.set()
        if len(seen) == 5:
            raise RuntimeError("a broken callback must not stop the reader")

    reader.start(on_event)
    assert got.wait(5)
    reader.stop()
    assert reader.accepted >= 200 and reader.state.kind is ReportKind.USB
    assert pad.served >= 200
    assert reader.device is None  # closed by stop()


def test_reports_per_second_uses_the_clock():
    now = [0.0]
    pad = FakePad(USB, reports=[usb_report()] * 1001, end="unplug")
    reader = PadReader(open_pad(backend=FakeBackend(pad)), reconnect=False, clock=lambda: now[0])
    rates = []
    for event in reader.events():
        if isinstance(event, ReportEvent):
            now[0] += 0.004  # 250 Hz, the USB DualSense rate
            rates.append(reader.reports_per_second)
    assert rates[-1] == pytest.approx(250, rel=0.01)


def test_reject_event_carries_raw_bytes():
    pad = FakePad(BT, reports=[bt_report()[:-1] + b"\x00"], end="unplug")
    events = _collect(PadReader(open_pad(backend=FakeBackend(pad)), reconnect=False))
    assert isinstance(events[0], RejectEvent) and events[0].rejected.reason == "bad_crc"


# --- riffpad devices ----------------------------------------------------------------------------


@pytest.fixture
def fake_backend(monkeypatch):
    backend = FakeBackend()
    monkeypatch.setattr(devmod, "default_backend", lambda: backend)
    return backend


def test_devices_json_lists_every_pad(fake_backend):
    fake_backend.add(
        FakePad(USB, mac="a0:ab:51:00:00:01", reports=[usb_report(battery=Battery(8, 1))])
    )
    bt = FakePad(BT, mac="a0:ab:51:00:00:02", firmware=Firmware(0x615, 0x0110002A, 0x0221))
    bt.push(bt_report(battery=Battery(3, 0)))
    fake_backend.add(bt)
    result = CliRunner().invoke(main, ["devices", "--json"])
    assert result.exit_code == 0, result.output
    pads = json.loads(result.output)
    assert [p["transport"] for p in pads] == ["usb", "bluetooth"]
    assert pads[0]["mac"] == "a0:ab:51:00:00:01"
    assert pads[0]["battery"] == {"percent": 85, "charging": True, "status": 1, "level": 8}
    assert pads[1]["serial"] == "a0:ab:51:00:00:02"
    assert pads[1]["battery"]["percent"] == 35
    assert pads[1]["firmware"] == {
        "hw_version": "0x00000615",
        "fw_version": "0x0110002a",
        "update_version": "2.33",
    }
    assert pads[1]["model"] == "DualSense" and pads[1]["error"] is None
    assert bt.writes == [] and bt.feature_requests == [0x09, 0x20, 0x05]  # read-only


def test_devices_text_and_permission_row(fake_backend):
    fake_backend.add(FakePad(USB, reports=[usb_report()]))
    fake_backend.add(FakePad(BT, mac="a0:ab:51:00:00:05", permission_denied=True))
    result = CliRunner().invoke(main, ["devices"])
    assert result.exit_code == 0, result.output
    assert "DualSense" in result.output and "bluetooth" in result.output
    assert "permission denied" in result.output and "riffpad udev install" in result.output


def test_devices_without_pads(fake_backend):
    result = CliRunner().invoke(main, ["devices", "--json"])
    assert result.exit_code == 0 and json.loads(result.output) == []
    result = CliRunner().invoke(main, ["devices"])
    assert result.exit_code == 1
    assert "No DualSense" in result.output


def test_fake_device_refuses_blocking_read():
    pad = FakePad(USB)
    handle = FakeDevice(FakeBackend(pad))
    handle.open_path(pad.path)
    with pytest.raises(AssertionError):
        handle.read(64)
