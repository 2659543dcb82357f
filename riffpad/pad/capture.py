"""Captures: a pad's raw input reports as JSON Lines, and replay through the live code path.

Format (one JSON object per line)::

    {"format": "riffpad-capture", "version": 1, "transport": "usb", "vendor_id": 1356,
     "product_id": 3302, ...optional: "model", "serial", "mac", "features"}
    {"t": 0.0, "report": "01807f..."}
    {"t": 0.004012, "report": "01807f..."}

``t`` is seconds since the recording started, ``report`` the bytes as hidapi returned them
(report ID first) in lowercase hex. ``features`` maps a feature report ID in hex ("09", "20",
"05") to the raw reply read from the pad, so a replay answers feature requests as the pad
did. Every report is kept, including ones the parser refuses: a capture is evidence.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from riffpad.pad import features
from riffpad.pad.state import PRODUCT_DUALSENSE, PRODUCTS, VENDOR_SONY, Transport

log = logging.getLogger(__name__)

FORMAT = "riffpad-capture"
VERSION = 1


class CaptureError(ValueError):
    """A capture file that cannot be read; the message names the file and line."""


def make_header(
    transport: Transport,
    product_id: int = PRODUCT_DUALSENSE,
    *,
    serial: str | None = None,
    mac: str | None = None,
    feature_replies: dict[int, bytes] | None = None,
) -> dict:
    header = {
        "format": FORMAT,
        "version": VERSION,
        "transport": transport.value,
        "vendor_id": VENDOR_SONY,
        "product_id": product_id,
        "model": PRODUCTS.get(product_id, "unknown"),
    }
    if serial:
        header["serial"] = serial
    if mac:
        header["mac"] = mac
    if feature_replies:
        header["features"] = {f"{k:02x}": v.hex() for k, v in sorted(feature_replies.items())}
    return header


class CaptureWriter:
    """Writes a capture line by line, flushing each so an interrupted recording keeps
    everything up to the last whole line."""

    def __init__(self, target: str | os.PathLike | IO[str], header: dict):
        if hasattr(target, "write"):
            self._file, self._owned = target, False
            self.name = getattr(target, "name", "<stream>")
        else:
            self._file, self._owned = open(target, "w", encoding="utf-8"), True
            self.name = os.fspath(target)
        _check_header(header, self.name, 1)
        self._line(header)
        self.count = 0

    def _line(self, obj: dict) -> None:
        self._file.write(json.dumps(obj, separators=(", ", ": ")) + "\n")
        self._file.flush()

    def write(self, t: float, report: bytes) -> None:
        self._line({"t": round(t, 6), "report": bytes(report).hex()})
        self.count += 1

    def close(self) -> None:
        if self._owned:
            self._file.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_header(header: dict, name: str, line: int) -> None:
    def fail(msg: str) -> CaptureError:
        return CaptureError(f"{name}:{line}: {msg}")

    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise fail(f'not a riffpad capture header (expected "format": "{FORMAT}")')
    if header.get("version") != VERSION:
        raise fail(f"unsupported capture version {header.get('version')!r} (this reads {VERSION})")
    if header.get("transport") not in {t.value for t in Transport}:
        raise fail(f'"transport" must be "usb" or "bluetooth", not {header.get("transport")!r}')
    if header.get("vendor_id") != VENDOR_SONY or header.get("product_id") not in PRODUCTS:
        raise fail("vendor_id/product_id are not a DualSense (1356/3302) or Edge (1356/3570)")
    for key, value in header.get("features", {}).items():
        try:
            int(key, 16), bytes.fromhex(value)
        except (TypeError, ValueError):
            raise fail(f'"features" entry {key!r} is not hex ID -> hex bytes') from None


def read_capture(path: str | os.PathLike) -> tuple[dict, list[tuple[float, bytes]]]:
    """Header and ``(t, report)`` pairs. Raises CaptureError naming file and line.

    A last line cut short (no newline: the recording was killed mid-write) is dropped with a
    warning; any other broken line is an error. An empty report is kept: replayed, the parser
    refuses it (``empty``) like any report of the wrong length.
    """
    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CaptureError(f"{name}: cannot read capture: {err}") from err
    lines = text.split("\n")
    unterminated = lines[-1] != ""
    if not unterminated:
        lines.pop()
    if not lines or not lines[0].strip():
        raise CaptureError(f"{name}:1: empty file, expected a riffpad capture header")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError as err:
        raise CaptureError(f"{name}:1: header is not JSON: {err.msg}") from err
    _check_header(header, name, 1)
    reports: list[tuple[float, bytes]] = []
    last_t = 0.0
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            t, report = obj["t"], bytes.fromhex(obj["report"])
            if isinstance(t, bool) or not isinstance(t, (int, float)):
                raise ValueError('"t" is not a number')
            if t < last_t:
                raise ValueError(f'"t" goes backwards ({t} after {last_t})')
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            if unterminated and lineno == len(lines):
                log.warning("%s:%d: dropping a truncated last line", name, lineno)
                break
            what = err.msg if isinstance(err, json.JSONDecodeError) else err
            if isinstance(err, KeyError):
                what = f"missing {err}"
            raise CaptureError(
                f'{name}:{lineno}: bad report line ({what}); expected {{"t": '
                f'seconds, "report": "hex"}}'
            ) from err
        reports.append((float(t), report))
        last_t = t
    return header, reports


class ReplayHid:
    """A capture behind hidapi's device interface, so replays use the live code path.

    ``read`` serves the reports in recorded timing (``realtime=True``) or back to back, cut to
    ``max_length`` like hidapi, and returns ``[]`` when nothing is due within the timeout.
    After the last report ``finished`` is True and reads return ``[]`` (or raise OSError,
    like an unplugged pad, with ``unplug_at_end``). Writes are recorded with their time in
    ``writes``; feature requests are answered from the header or with plausible defaults.
    """

    def __init__(
        self,
        source: str | os.PathLike | tuple[dict, list[tuple[float, bytes]]],
        *,
        realtime: bool = True,
        unplug_at_end: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        if isinstance(source, tuple):
            self.header, self.reports = source
            self.name = "<capture>"
        else:
            self.header, self.reports = read_capture(source)
            self.name = os.fspath(source)
        self.transport = Transport(self.header["transport"])
        self.realtime = realtime
        self.unplug_at_end = unplug_at_end
        self._clock = clock
        self._index = 0
        self._served_t = 0.0
        self._start: float | None = None
        self._open = True
        self._wake = threading.Event()  # set by close() to end a wait early
        self.writes: list[tuple[float, bytes]] = []
        self.feature_requests: list[int] = []

    @property
    def finished(self) -> bool:
        return self._index >= len(self.reports)

    def _check_open(self) -> None:
        if not self._open:
            raise ValueError("not open")  # what hidapi raises on a closed device

    def read(self, max_length: int, timeout_ms: int = 0) -> list[int]:
        self._check_open()
        if self.finished:
            if self.unplug_at_end:
                raise OSError("read error")
            self._wake.wait(timeout_ms / 1000 if timeout_ms > 0 else None)
            return []
        t, report = self.reports[self._index]
        if self.realtime:
            now = self._clock()
            if self._start is None:
                self._start = now - t
            wait = self._start + t - now
            if timeout_ms > 0 and wait > timeout_ms / 1000:
                self._wake.wait(timeout_ms / 1000)
                return []
            if wait > 0:
                self._wake.wait(wait)
            self._check_open()
        self._index += 1
        self._served_t = t
        if not report:
            # A recorded 0-byte report: hidapi's [] would read as "timed out", so it is served
            # as b"" (PadDevice.read_raw passes bytes on as they are) and the parser refuses it.
            return b""  # type: ignore[return-value]
        return list(report[:max_length])

    def capture_time(self) -> float:
        """The recorded time of the last report served: a clock for readers of a replay, so
        time-based controls (relative sticks, holds) follow the capture, not the wall clock,
        even when it is replayed as fast as possible."""
        return self._served_t

    def write(self, data: Iterable[int]) -> int:
        self._check_open()
        data = bytes(data)
        self.writes.append((self._clock(), data))
        return len(data)

    def get_feature_report(self, report_id: int, max_length: int) -> list[int]:
        self._check_open()
        self.feature_requests.append(report_id)
        recorded = self.header.get("features", {}).get(f"{report_id:02x}")
        if recorded is not None:
            data = bytes.fromhex(recorded)
        elif report_id == features.PAIRING_ID:
            data = features.pairing_report(
                self.header.get("mac", "00:00:00:00:00:00"), self.transport
            )
        elif report_id == features.FIRMWARE_ID:
            data = features.firmware_report(features.DEFAULT_FIRMWARE, self.transport)
        elif report_id == features.CALIBRATION_ID:
            data = features.calibration_report(features.DEFAULT_CALIBRATION_FIELDS, self.transport)
        else:
            raise OSError("read error")  # hidapi: the pad refused the request
        return list(data[:max_length])

    def set_nonblocking(self, nonblock: int) -> int:
        self._check_open()
        return 0

    def error(self) -> str:
        return ""

    def close(self) -> None:
        self._open = False
        self._wake.set()


def replay_device(path: str | os.PathLike, *, realtime: bool = True, unplug_at_end: bool = False):
    """A PadDevice reading a capture: the same device/reader/parser code as a live pad."""
    from riffpad.pad.device import USB_HID_INTERFACE, PadDevice, PadInfo

    hid = ReplayHid(path, realtime=realtime, unplug_at_end=unplug_at_end)
    header = hid.header
    info = PadInfo(
        path=f"replay:{hid.name}".encode(),
        transport=hid.transport,
        product_id=header["product_id"],
        model=PRODUCTS[header["product_id"]],
        serial=header.get("serial") or header.get("mac") or "",
        interface_number=USB_HID_INTERFACE if hid.transport is Transport.USB else -1,
    )
    dev = PadDevice(hid, info)
    dev.initialize()
    return dev
