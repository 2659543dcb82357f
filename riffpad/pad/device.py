"""Find, open and read DualSense pads through hidapi's ``hidraw`` backend.

We use ``import hidraw``, not ``import hid``: the ``hid`` module of the hidapi wheel is
built on libusb on Linux, so it sees USB pads only (no Bluetooth) and claims the USB
interface, detaching the kernel's hid-playstation driver while open. ``hidraw`` reads
/dev/hidraw* next to the kernel driver, over USB and Bluetooth alike.

One ``PadDevice`` wraps one open hidapi handle (or anything with its interface: a
``ReplayHid`` capture, the tests' fake). ``PadReader`` is the loop around it: blocking reads
with a timeout, counters, the latest state, feedback writes on change, reconnect on unplug.

Longer than 500 lines on purpose: finding, opening (the kernel's start-up order) and the
read loop's reconnect share one notion of "this pad" (path, MAC, transport); split, each half
would reach into the other's internals.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from riffpad.pad import features
from riffpad.pad.features import Calibration, FeatureError, Firmware
from riffpad.pad.output import Feedback, build_output_report, uses_vibration_v2
from riffpad.pad.reports import Rejected, parse_input
from riffpad.pad.state import (
    NEUTRAL,
    PRODUCTS,
    VENDOR_SONY,
    PadState,
    Transport,
)

log = logging.getLogger(__name__)

BUS_USB = 1  # hidapi HID_API_BUS_USB
BUS_BLUETOOTH = 2  # hidapi HID_API_BUS_BLUETOOTH
USB_HID_INTERFACE = 3  # interfaces 0-2 are USB audio
READ_SIZE = 78  # the largest input report (Bluetooth 0x31)

PERMISSION_HINT = (
    'install riffpad\'s udev rules with `sudo "$(command -v riffpad)" udev install`, then '
    "re-plug the pad (or reconnect it over Bluetooth); over SSH or in a service, where the "
    "seat-based rule does not apply, use `riffpad udev install --group NAME` and join that "
    "group (README: Permissions)"
)


class PadError(Exception):
    """Anything that stops riffpad from talking to a pad."""


class PadNotFound(PadError):
    pass


class PadPermissionError(PadError):
    pass


class PadDisconnected(PadError):
    """The open pad went away (read or write failed)."""


@dataclass(frozen=True)
class PadInfo:
    path: bytes
    transport: Transport
    product_id: int
    model: str
    serial: str  # hidapi's serial_number: the MAC on Bluetooth
    interface_number: int

    @property
    def path_text(self) -> str:
        return self.path.decode(errors="replace")


def default_backend():
    import hidraw  # the hidraw backend, not libusb: see the module docstring

    return hidraw


# The kernel names a HID device BBBB:VVVV:PPPP.NNNN; BBBB is the bus (linux/input.h).
_KERNEL_BUS = {"0003": Transport.USB, "0005": Transport.BLUETOOTH}


def _kernel_transport(path: bytes, sysfs: str = "/sys") -> Transport | None:
    """The bus of a hidraw node's HID parent, read from sysfs (Linux only)."""
    node = os.path.basename(path.decode(errors="replace"))
    parent = os.path.realpath(os.path.join(sysfs, "class", "hidraw", node, "device"))
    return _KERNEL_BUS.get(os.path.basename(parent).split(":")[0])


def _transport(entry: dict, sysfs: str = "/sys") -> Transport:
    bus = entry.get("bus_type")
    if bus == BUS_BLUETOOTH:
        return Transport.BLUETOOTH
    if bus == BUS_USB:
        return Transport.USB
    # hidapi says "unknown" (0) for a USB HID device with no usb_device parent in sysfs
    # (uhid, some hubs), and older hidapi has no bus_type: ask the kernel, then fall back to
    # "Bluetooth HID has no USB interface number".
    kernel = _kernel_transport(entry.get("path", b""), sysfs)
    if kernel is not None:
        return kernel
    return Transport.BLUETOOTH if entry.get("interface_number", -1) == -1 else Transport.USB


def enumerate_pads(backend=None, sysfs: str = "/sys") -> list[PadInfo]:
    """Every DualSense and DualSense Edge, USB and Bluetooth, one entry per hidraw node."""
    backend = backend or default_backend()
    pads: list[PadInfo] = []
    seen: set[bytes] = set()
    for product_id, model in PRODUCTS.items():
        for entry in backend.enumerate(VENDOR_SONY, product_id):
            transport = _transport(entry, sysfs)
            interface = entry.get("interface_number", -1)
            # -1: no USB parent to name the interface (uhid); the node is the HID one anyway.
            if transport is Transport.USB and interface not in (USB_HID_INTERFACE, -1):
                continue
            path = entry["path"]
            if path in seen:  # hidapi lists a node once per top-level usage
                continue
            seen.add(path)
            pads.append(
                PadInfo(
                    path=path,
                    transport=transport,
                    product_id=product_id,
                    model=model,
                    serial=entry.get("serial_number") or "",
                    interface_number=interface,
                )
            )
    return pads


def _same_pad(a: str, b: str) -> bool:
    norm = [s.replace(":", "").replace("-", "").lower() for s in (a, b)]
    return bool(norm[0]) and norm[0] == norm[1]


def _open_error(handle, path: bytes, err: Exception) -> PadError:
    try:
        detail = handle.error()  # hidapi's message, e.g. "...: Permission denied"
    except Exception:
        detail = ""
    spath = path.decode(errors="replace")
    denied = "Permission denied" in detail or (
        os.path.exists(spath) and not os.access(spath, os.R_OK | os.W_OK)
    )
    if denied:
        return PadPermissionError(f"permission denied opening {spath}: {PERMISSION_HINT}")
    return PadError(f"cannot open {spath}: {detail or err}")


def open_pad(path: bytes | str | None = None, backend=None, serial: str | None = None):
    """Open a pad: by hidraw path, else the one with this serial/MAC, else the first found."""
    backend = backend or default_backend()
    pads = enumerate_pads(backend)
    if isinstance(path, str):
        path = path.encode()
    if path is not None:
        chosen = [p for p in pads if p.path == path]
        if not chosen:
            raise PadNotFound(f"no DualSense at {path.decode(errors='replace')}")
    else:
        chosen = [p for p in pads if serial and _same_pad(p.serial, serial)] or pads
        if not chosen:
            raise PadNotFound("no DualSense or DualSense Edge found (USB or Bluetooth)")
    info = chosen[0]
    handle = backend.device()
    try:
        handle.open_path(info.path)
    except (OSError, ValueError) as err:
        raise _open_error(handle, info.path, err) from err
    dev = PadDevice(handle, info)
    try:
        dev.initialize()
    except PadDisconnected:
        dev.close()
        raise
    return dev


class PadDevice:
    """One open pad. Not thread-safe: use it from one thread (PadReader's)."""

    def __init__(self, handle, info: PadInfo):
        self.handle = handle
        self.info = info
        self.transport = info.transport
        self.feature_replies: dict[int, bytes] = {}  # raw replies, for capture headers
        self._mac: str | None = None
        self._firmware: Firmware | None = None
        self._calibration: Calibration | None = None
        self._last_written: Feedback | None = None
        self._bt_seq = 0  # Bluetooth output sequence number, 0..15
        self.writes = 0

    # --- features ------------------------------------------------------------------------

    def _feature(self, report_id: int) -> bytes:
        try:
            data = self.handle.get_feature_report(report_id, features.SIZES[report_id])
        except (OSError, ValueError) as err:
            raise PadDisconnected(f"feature 0x{report_id:02x}: {err}") from err
        data = features.check_feature(bytes(data), report_id, self.transport)
        self.feature_replies[report_id] = data
        return data

    def initialize(self) -> None:
        """Read features 0x09, 0x20, 0x05 in the kernel's order.

        That fills mac/firmware/calibration and, on Bluetooth, switches a pad still sending
        10-byte simple reports to full 0x31 reports. A bad reply is logged, not fatal: the pad
        still works, with firmware unknown.
        """
        for report_id in features.INIT_ORDER:
            try:
                data = self._feature(report_id)
            except FeatureError as err:
                log.warning("%s: %s", self.info.path_text, err)
                continue
            if report_id == features.PAIRING_ID:
                self._mac = features.parse_mac(data, self.transport)
            elif report_id == features.FIRMWARE_ID:
                self._firmware = features.parse_firmware(data, self.transport)
            else:
                self._calibration = features.parse_calibration(data, self.transport)

    def mac(self) -> str | None:
        return self._mac

    def firmware(self) -> Firmware | None:
        return self._firmware

    def calibration(self) -> Calibration | None:
        return self._calibration

    @property
    def serial(self) -> str:
        """The MAC when known (the same over USB and Bluetooth), else hidapi's serial."""
        return self._mac or self.info.serial

    @property
    def vibration_v2(self) -> bool:
        fw = self._firmware
        return uses_vibration_v2(self.info.product_id, fw.update_version if fw else None)

    # --- input ---------------------------------------------------------------------------

    def read_raw(self, timeout_ms: int) -> bytes | None:
        """One raw input report, or None on timeout. Raises PadDisconnected on unplug."""
        assert timeout_ms > 0, "hidapi reads with timeout 0 block forever"
        try:
            data = self.handle.read(READ_SIZE, timeout_ms)
        except (OSError, ValueError) as err:
            raise PadDisconnected(str(err) or type(err).__name__) from err
        if type(data) is bytes:  # a replayed capture's report, possibly 0 bytes long
            return data
        return bytes(data) if data else None  # hidapi: [] means the read timed out

    def read(self, timeout_ms: int) -> PadState | Rejected | None:
        raw = self.read_raw(timeout_ms)
        return None if raw is None else parse_input(raw, self.transport)

    @property
    def finished(self) -> bool:
        """True when the handle is a capture that has run out of reports."""
        return bool(getattr(self.handle, "finished", False))

    # --- output --------------------------------------------------------------------------

    def _write(self, fb: Feedback, fade_out_lightbar: bool = False) -> None:
        report = build_output_report(
            fb,
            self.transport,
            seq=self._bt_seq,
            vibration_v2=self.vibration_v2,
            fade_out_lightbar=fade_out_lightbar,
        )
        try:
            n = self.handle.write(report)
        except (OSError, ValueError) as err:
            raise PadDisconnected(f"write: {err}") from err
        if n < 0:  # hidapi's write returns -1 rather than raising
            raise PadDisconnected("write failed")
        self.writes += 1
        if self.transport is Transport.BLUETOOTH:
            self._bt_seq = (self._bt_seq + 1) & 0x0F

    def reset_leds(self) -> None:
        """Kernel dualsense_reset_leds: end the Bluetooth start-up lightbar animation so the
        lightbar can be programmed (harmless over USB)."""
        self._write(Feedback(rumble=None), fade_out_lightbar=True)  # nothing else touched

    def send_feedback(self, fb: Feedback) -> bool:
        """Write ``fb`` unless it is what was written last. True if a report was written."""
        last = self._last_written
        if fb is last or fb == last:  # the policy hands back the same object while unchanged
            return False
        self._write(fb)
        self._last_written = fb
        return True

    def close(self) -> None:
        try:
            self.handle.close()
        except Exception as err:  # closing a vanished device must not mask the real error
            log.debug("close: %s", err)


# --- the reader loop -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReportEvent:
    t: float
    raw: bytes
    state: PadState


@dataclass(frozen=True)
class RejectEvent:
    t: float
    raw: bytes
    rejected: Rejected


@dataclass(frozen=True)
class ConnectionEvent:
    t: float
    connected: bool
    info: PadInfo | None
    reason: str = ""


PadEvent = ReportEvent | RejectEvent | ConnectionEvent


class PadReader:
    """Reads a pad: ``for event in reader.events()`` or ``reader.start(on_event)``.

    Never raises while reading. On unplug ``connected`` turns False and ``state`` goes back
    to NEUTRAL (so nothing held, such as R2, stays held), then enumeration is polled every
    ``poll_interval`` seconds and the pad is reopened over either transport: the same pad
    (MAC/serial) if present, else the first one. With ``reconnect=False`` (captures,
    ``record``) the events end instead, as they do when a capture is finished.
    """

    def __init__(
        self,
        device: PadDevice | None = None,
        *,
        backend=None,
        path: bytes | str | None = None,
        reconnect: bool = True,
        timeout_ms: int = 100,
        poll_interval: float = 0.5,
        reset_leds: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.device = device
        self._backend = backend
        self._path = path
        self.reconnect = reconnect
        self.timeout_ms = timeout_ms
        self.poll_interval = poll_interval
        self._reset_leds = reset_leds
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wanted: Feedback | None = None
        self._needs_setup = device is not None
        self._had_device = device is not None
        self._iterating = False
        self._last_serial = device.serial if device else None
        self._open_error: str | None = None
        self.state: PadState = NEUTRAL
        self.connected = device is not None
        self.accepted = 0
        self.rejected: dict[str, int] = {}
        self.reports_per_second = 0.0
        self._rate_start = clock()
        self._rate_count = 0

    # --- public --------------------------------------------------------------------------

    @property
    def info(self) -> PadInfo | None:
        return self.device.info if self.device else None

    def set_feedback(self, fb: Feedback | None) -> None:
        """What the pad should show; written by the reader loop, only when it changes."""
        self._wanted = fb

    def events(self) -> Iterator[PadEvent]:
        """Yield reports, rejections and connection changes until ``stop()`` (or, without
        reconnect, until the pad goes away or a capture ends). Breaking out and iterating
        again carries on; after ``stop()`` the pad is closed."""
        self._iterating = True
        try:
            while not self._stop.is_set():
                if self.device is None:
                    if self._had_device and not self.reconnect:
                        return
                    event = self._try_open()
                elif self.device.finished:
                    return
                else:
                    event = self._step()
                if event is not None:
                    yield event
        finally:
            self._iterating = False
            if self._stop.is_set():
                self._close()

    def run(self, on_event: Callable[[PadEvent], None] | None = None) -> None:
        """The loop, with ``on_event`` called for each event on this thread."""
        try:
            for event in self.events():
                if on_event is None:
                    continue
                try:
                    on_event(event)
                except Exception:  # a broken callback must not stop the pad
                    log.exception("pad event callback failed")
        finally:
            self._close()

    def start(self, on_event: Callable[[PadEvent], None] | None = None) -> None:
        """Run the loop on a daemon thread; read ``state`` or get events via ``on_event``
        (called on the reader thread: keep it short)."""
        assert self._thread is None, "already started"
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, args=(on_event,), name="pad-reader", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the loop and close the pad. Safe from any thread (a timer, a signal
        handler): a running loop ends within one read timeout and closes the pad itself."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("pad reader thread did not stop within %.1f s", timeout)
                return
            self._thread = None
        if not self._iterating:
            self._close()

    def __enter__(self) -> PadReader:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the loop ------------------------------------------------------------------------

    def _step(self) -> PadEvent | None:
        """Set the pad up if new, write wanted feedback, read one report."""
        dev = self.device
        assert dev is not None
        try:
            if self._needs_setup:
                self._needs_setup = False
                if self._reset_leds:
                    dev.reset_leds()
            if self._wanted is not None:
                dev.send_feedback(self._wanted)
            raw = dev.read_raw(self.timeout_ms)
        except PadDisconnected as err:
            return self._disconnected(str(err))
        if raw is None:
            return None
        now = self._clock()
        result = parse_input(raw, dev.transport)
        if isinstance(result, Rejected):
            self.rejected[result.reason] = self.rejected.get(result.reason, 0) + 1
            return RejectEvent(now, raw, result)
        self.accepted += 1
        self.state = result
        self._count_rate(now)
        return ReportEvent(now, raw, result)

    def _count_rate(self, now: float) -> None:
        self._rate_count += 1
        elapsed = now - self._rate_start
        if elapsed >= 1.0:
            self.reports_per_second = self._rate_count / elapsed
            self._rate_start = now
            self._rate_count = 0

    def _disconnected(self, reason: str) -> ConnectionEvent:
        info = self.device.info if self.device else None
        log.warning("pad disconnected: %s", reason)
        self._close()
        self._path = None  # the node is gone; when it comes back it may have another path
        self.connected = False
        self.state = NEUTRAL
        self.reports_per_second = 0.0
        self._rate_count = 0
        return ConnectionEvent(self._clock(), False, info, reason)

    def _try_open(self) -> ConnectionEvent | None:
        """One enumeration attempt; sleeps ``poll_interval`` (interruptibly) on failure."""
        try:
            dev = open_pad(self._path, self._backend, serial=self._last_serial)
        except (PadError, OSError) as err:
            message = str(err)
            event = None
            if message != self._open_error and not isinstance(err, PadNotFound):
                event = ConnectionEvent(self._clock(), False, None, message)
            self._open_error = message
            self._stop.wait(self.poll_interval)
            return event
        self._open_error = None
        self.device = dev
        self._had_device = True
        self._last_serial = dev.serial
        self._needs_setup = True
        self.connected = True
        self._rate_start = self._clock()
        log.info("pad connected: %s %s", dev.info.model, dev.info.path_text)
        return ConnectionEvent(self._clock(), True, dev.info)

    def _close(self) -> None:
        if self.device is not None:
            self.device.close()
            self.device = None
