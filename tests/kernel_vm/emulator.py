"""hid-tools' DualSense emulators, made usable from a test script inside the VM.

Runs in the guest only (needs /dev/uhid). hid-tools answers the kernel's requests (feature
reports at probe, output reports) only while ``UHIDDevice.dispatch`` runs, so a ``Pump``
thread keeps dispatching; it is paused around the calls that touch hid-tools' shared poll
set (creating and destroying devices), because two readers of one uhid fd can hang.
"""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import sys
import threading
import time
import types
from contextlib import contextmanager
from pathlib import Path


class UeventSocket:
    """The part of pyroute2.UeventSocket hid-tools uses (bind, get, with), on a plain
    NETLINK_KOBJECT_UEVENT socket. hid-tools imports pyroute2 only for this, and importing
    pyroute2 costs tens of seconds in the TCG guest."""

    def __init__(self):
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15)

    def bind(self):
        self._sock.bind((0, 1))  # any port id, group 1: the kernel's uevents
        self._sock.setblocking(False)

    def get(self) -> list[dict]:
        events = []
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return events
            fields = (f.split(b"=", 1) for f in data.split(b"\0")[1:] if b"=" in f)
            events.append({k.decode(): v.decode(errors="replace") for k, v in fields})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._sock.close()


if "pyroute2" not in sys.modules:
    sys.modules["pyroute2"] = types.SimpleNamespace(UeventSocket=UeventSocket)

from hidtools.device.sony_gamepad import (  # noqa: E402
    PS5ControllerBluetooth,
    PS5ControllerUSB,
    PSTouchPoint,
)
from hidtools.uhid import UHIDDevice  # noqa: E402

__all__ = ["PSTouchPoint", "Pump", "plug", "unplug"]


class _Recording:
    """Adds what the stock emulator lacks: analog triggers, a fixed MAC, and a record of the
    output reports the kernel delivers (hid-tools only logs them)."""

    def __init__(self, mac: str):
        super().__init__()
        self.uniq = mac  # hid-tools answers feature 0x09 (pairing info) with this MAC
        self.triggers = (0, 0)
        self.outputs: list[bytes] = []
        # (report ID, asked at, answered at): monotonic seconds, as evidence when a probe fails
        self.feature_requests: list[tuple[int, float, float]] = []
        self._out_lock = threading.Lock()

    def get_report(self, req, rnum, rtype):
        asked = time.monotonic()
        reply = super().get_report(req, rnum, rtype)
        self.feature_requests.append((rnum, round(asked, 2), round(time.monotonic(), 2)))
        return reply

    def warm_up(self):
        """Answer each probe request once in-process first: the first answer pays for
        hid-tools' lazy work, which under TCG can exceed the kernel's 5 s wait."""
        for rnum in (0x09, 0x20, 0x05):
            self.get_report(0, rnum, 0)
        self.feature_requests.clear()

    def store_axes(self, which, gamepad, data):
        super().store_axes(which, gamepad, data)
        if which == "right_stick":  # called once per report: put L2/R2 (Rx/Ry) in too
            gamepad.rx, gamepad.ry = self.triggers  # hid-tools matches usage names lowercased

    def output_report(self, data, size, rtype):
        with self._out_lock:
            self.outputs.append(bytes(data[:size]))

    def received(self) -> list[bytes]:
        with self._out_lock:
            return list(self.outputs)

    def send(self, *, l2=None, r2=None, touch=None, **kw) -> bytes:
        """One input report; ``touch=[]`` lifts all fingers (hid-tools' own ``[]`` does not)."""
        if l2 is not None or r2 is not None:
            old = self.triggers
            self.triggers = (old[0] if l2 is None else l2, old[1] if r2 is None else r2)
        if touch is not None and len(touch) == 0:
            self.store_touchpad_state([])
            touch = None
        report = self.create_report(touch=touch, **kw)
        self.call_input_event(report)
        return bytes(report)


class USBPad(_Recording, PS5ControllerUSB):
    transport = "usb"


class BluetoothPad(_Recording, PS5ControllerBluetooth):
    transport = "bluetooth"


class Pump:
    """Calls hid-tools' dispatch on a thread so the emulators answer the kernel."""

    def __init__(self):
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _loop(self):
        try:
            while not self._stop.is_set():
                UHIDDevice.dispatch(20)  # milliseconds (poll)
        except BaseException as err:
            self.error = err
            raise

    def start(self):
        assert self._thread is None
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="uhid-pump", daemon=True)
        self._thread.start()

    def stop(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join(10)
            if self._thread.is_alive():
                raise RuntimeError("uhid pump did not stop")
            self._thread = None

    @contextmanager
    def paused(self):
        running = self._thread is not None
        self.stop()
        try:
            yield
        finally:
            if running:
                self.start()


def _find_sysfs(uniq: str, exclude: set[str]) -> Path | None:
    """hid-tools waits only ~10 ms for the 'add' uevent, which TCG can miss: find it."""
    for uevent in glob.glob("/sys/bus/hid/devices/*/uevent"):
        if os.path.dirname(uevent) in exclude:
            continue
        try:
            text = Path(uevent).read_text()
        except OSError:
            continue
        if f"HID_UNIQ={uniq}\n" in text:
            return Path(uevent).parent
    return None


def hidraw_node(emu) -> str | None:
    nodes = emu.hidraw_nodes
    return nodes[0] if nodes and os.path.exists(nodes[0]) else None


def driver_of(emu) -> str | None:
    link = Path(emu.sys_path or "/nonexistent") / "driver"
    return os.path.basename(os.readlink(link)) if link.is_symlink() else None


def probed(emu) -> bool:
    """hid-playstation finished its probe: it adds firmware_version only once it succeeded
    (the driver link and hidraw node already exist while the probe still runs)."""
    return emu.sys_path is not None and (Path(emu.sys_path) / "firmware_version").exists()


def dmesg_tail(lines: int = 15) -> str:
    out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=30).stdout
    return "\n".join(out.splitlines()[-lines:])


PLUG_LOG: list[dict] = []  # every plug attempt, for the results' meta (flakiness evidence)


def plug(transport: str, mac: str, pump: Pump, timeout: float = 15.0, attempts: int = 3):
    """Create an emulated pad and wait until hid-playstation has probed it and udev is done.

    A probe that fails (seen under TCG: the kernel's feature request times out after 5 s)
    is retried with a fresh device; each failure is logged in PLUG_LOG."""
    cls = USBPad if transport == "usb" else BluetoothPad
    for attempt in range(1, attempts + 1):
        with pump.paused():  # registering the new fd in hid-tools' poll set
            emu = cls(mac)
        emu.warm_up()
        before = set(glob.glob("/sys/bus/hid/devices/*"))
        # hid-tools drops answers to the kernel while _ready is False, and sets it only after
        # seeing the 'add' uevent; the probe's first request can come sooner (or the uevent
        # be missed under TCG) and the probe then fails after 5 s. The device exists once
        # CREATE2 is written, so answer from the start.
        emu._ready = True
        t0 = time.monotonic()
        emu.create_kernel_device()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if emu.sys_path is None:
                found = _find_sysfs(mac, before)
                if found is not None:
                    emu._sys_path = found
                    emu.hid_id = int(found.name[15:], 16)
                    emu._ready = True
            if probed(emu) and hidraw_node(emu):
                subprocess.run(["udevadm", "settle", "--timeout=30"], timeout=60)
                PLUG_LOG.append(
                    {
                        "transport": transport,
                        "attempt": attempt,
                        "ok": True,
                        "seconds": round(time.monotonic() - t0, 2),
                    }
                )
                return emu
            time.sleep(0.05)
        PLUG_LOG.append(
            {
                "transport": transport,
                "attempt": attempt,
                "ok": False,
                "sysfs": str(emu.sys_path),
                "driver": driver_of(emu),
                "feature_requests": emu.feature_requests,
                "now": round(time.monotonic(), 2),
                "dmesg": dmesg_tail(),
            }
        )
        unplug(emu, pump)
    raise TimeoutError(f"{transport} pad not probed after {attempts} attempts: {PLUG_LOG[-1]}")


def unplug(emu, pump: Pump) -> None:
    with pump.paused():
        emu.destroy()
