"""A fake of hidapi's ``hidraw`` module with simulated DualSense pads.

Held to the contract of cython-hidapi 0.15 on Linux (checked against the real module here):

* ``enumerate(vendor_id, product_id)`` -> list of dicts with hidapi's keys, ``path`` as bytes,
  ``bus_type`` 1 (USB) / 2 (Bluetooth), ``interface_number`` -1 on Bluetooth.
* ``device()`` -> an unopened handle; ``open_path(bytes)`` raises ``OSError('open failed')``
  for a missing node or one without permission, and ``error()`` then gives hidapi's text
  ("Failed to open a device with path '...': No such file or directory" / "Permission
  denied"); a second ``open_path`` raises ``RuntimeError('already open')``.
* ``read(max_length, timeout_ms)`` -> ``list[int]`` (cut to ``max_length``), ``[]`` after the
  timeout, ``OSError('read error')`` once unplugged; ``timeout_ms=0`` would block forever in
  hidapi, so the fake refuses it loudly instead of hanging a test.
* ``write`` returns the byte count, or -1 once unplugged (hidapi does not raise there).
* ``get_feature_report(id, length)`` -> list with the ID at [0]; ``OSError`` once unplugged.
* Any call on a closed handle raises ``ValueError('not open')``.

A ``FakePad`` serves queued reports (``push``), then whatever ``source`` makes, then idles or
unplugs (``end="unplug"``). Bluetooth pads can start in simple mode and switch to full
reports when feature 0x09 or 0x20 is read (SDL's observation).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable

from riffpad.pad import features
from riffpad.pad.state import PRODUCT_DUALSENSE, VENDOR_SONY, Transport

from .reportgen import bt_full_report, bt_simple_report, usb_report

__all__ = ["FakeBackend", "FakeDevice", "FakePad", "bt_report", "bt_simple_report", "usb_report"]

# Report builders: hid-parse's tests/reportgen.py (written independently of the parser).
bt_report = bt_full_report

# --- pads and backend ------------------------------------------------------------------------

_numbers = itertools.count()


class FakePad:
    def __init__(
        self,
        transport: Transport,
        *,
        product_id: int = PRODUCT_DUALSENSE,
        mac: str = "a0:ab:51:00:00:01",
        serial: str | None = None,
        path: bytes | None = None,
        firmware: features.Firmware = features.DEFAULT_FIRMWARE,
        calibration: tuple[int, ...] = features.DEFAULT_CALIBRATION_FIELDS,
        simple_mode: bool = False,
        reports: Iterable[bytes] = (),
        source: Callable[[FakePad], bytes | None] | None = None,
        end: str = "idle",
        permission_denied: bool = False,
        usages: int = 1,
    ):
        self.transport = transport
        self.product_id = product_id
        self.mac = mac
        # Bluetooth: hidapi's serial is HID_UNIQ, the MAC. USB: whatever the node reports.
        if serial is None:
            serial = mac if transport is Transport.BLUETOOTH else mac.replace(":", "")
        self.serial = serial
        self.path = path or f"/dev/hidraw{next(_numbers)}".encode()
        self.firmware = firmware
        self.calibration = calibration
        self.simple_mode = simple_mode
        self.reports: deque[bytes] = deque(reports)
        self.source = source
        self.end = end
        self.permission_denied = permission_denied
        self.usages = usages
        self.plugged = True
        self.bad_feature_crc: set[int] = set()
        self.feature_requests: list[int] = []
        self.writes: list[bytes] = []
        self.served = 0
        self.cond = threading.Condition()

    def push(self, *reports: bytes) -> None:
        with self.cond:
            self.reports.extend(reports)
            self.cond.notify_all()

    def unplug(self) -> None:
        with self.cond:
            self.plugged = False
            self.cond.notify_all()

    def entries(self) -> list[dict]:
        usb = self.transport is Transport.USB
        entry = {
            "path": self.path,
            "vendor_id": VENDOR_SONY,
            "product_id": self.product_id,
            "serial_number": self.serial,
            "release_number": 0x100,
            "manufacturer_string": "Sony Interactive Entertainment",
            "product_string": "DualSense Wireless Controller",
            "usage_page": 1,
            "usage": 5,
            "interface_number": 3 if usb else -1,
            "bus_type": 1 if usb else 2,
        }
        # hidapi lists a node once per top-level usage: same path, other usage.
        return [dict(entry, usage=5 + i) for i in range(self.usages)]

    def next_report(self) -> bytes | None:
        if self.reports:
            return self.reports.popleft()
        if self.source is not None:
            return self.source(self)
        return None

    def feature(self, report_id: int) -> bytes:
        t = self.transport
        if report_id == features.PAIRING_ID:
            data = features.pairing_report(self.mac, t)
        elif report_id == features.FIRMWARE_ID:
            data = features.firmware_report(self.firmware, t)
        elif report_id == features.CALIBRATION_ID:
            data = features.calibration_report(self.calibration, t)
        else:
            raise OSError("read error")
        if report_id in (features.PAIRING_ID, features.FIRMWARE_ID):
            self.simple_mode = False
        if report_id in self.bad_feature_crc:
            data = data[:-1] + bytes((data[-1] ^ 0xFF,))
        return data


class FakeBackend:
    """Stands in for ``import hidraw``: module-level ``enumerate`` and ``device``."""

    def __init__(self, *pads: FakePad):
        self.pads: list[FakePad] = list(pads)
        self.enumerations = 0
        self.handles: list[FakeDevice] = []

    def add(self, pad: FakePad) -> FakePad:
        self.pads.append(pad)
        return pad

    def unplug(self, pad: FakePad) -> None:
        pad.unplug()
        self.pads.remove(pad)

    def enumerate(self, vendor_id: int = 0, product_id: int = 0) -> list[dict]:
        self.enumerations += 1
        out = []
        for pad in self.pads:
            if not pad.plugged:
                continue
            for entry in pad.entries():
                if vendor_id and entry["vendor_id"] != vendor_id:
                    continue
                if product_id and entry["product_id"] != product_id:
                    continue
                out.append(entry)
        return out

    def device(self) -> FakeDevice:
        handle = FakeDevice(self)
        self.handles.append(handle)
        return handle


class FakeDevice:
    def __init__(self, backend: FakeBackend):
        self._backend = backend
        self.pad: FakePad | None = None
        self._error = "Success"
        self.nonblocking = 0

    def _live(self) -> FakePad:
        if self.pad is None:
            raise ValueError("not open")
        return self.pad

    def open_path(self, path: bytes) -> None:
        if not isinstance(path, bytes):
            raise TypeError(f"expected bytes, {type(path).__name__} found")
        if self.pad is not None:
            raise RuntimeError("already open")
        spath = path.decode()
        pad = next((p for p in self._backend.pads if p.plugged and p.path == path), None)
        if pad is None:
            self._error = f"Failed to open a device with path '{spath}': No such file or directory"
            raise OSError("open failed")
        if pad.permission_denied:
            self._error = f"Failed to open a device with path '{spath}': Permission denied"
            raise OSError("open failed")
        self.pad = pad

    def error(self) -> str:
        return self._error

    def read(self, max_length: int, timeout_ms: int = 0) -> list[int]:
        pad = self._live()
        if timeout_ms <= 0 and not self.nonblocking:
            raise AssertionError("blocking read without a timeout would hang (hidapi)")
        with pad.cond:
            while True:
                if not pad.plugged:
                    self._error = "hid_read_timeout: unexpected poll error (device disconnected)"
                    raise OSError("read error")
                report = pad.next_report()
                if report is not None:
                    pad.served += 1
                    if not pad.reports and pad.source is None and pad.end == "unplug":
                        pad.plugged = False  # the next read sees the unplug
                    return list(report[:max_length])
                if pad.end == "unplug" and pad.source is None:
                    pad.plugged = False
                    continue
                if self.nonblocking or not pad.cond.wait(timeout_ms / 1000):
                    return []

    def write(self, data) -> int:
        pad = self._live()
        data = bytes(data)
        if not pad.plugged:
            return -1
        pad.writes.append(data)
        return len(data)

    def get_feature_report(self, report_id: int, max_length: int) -> list[int]:
        pad = self._live()
        if not pad.plugged:
            raise OSError("read error")
        pad.feature_requests.append(report_id)
        return list(pad.feature(report_id)[:max_length])

    def set_nonblocking(self, v: int) -> int:
        self._live()
        self.nonblocking = int(v)
        return 0

    def close(self) -> None:
        self.pad = None
