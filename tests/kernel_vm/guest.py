"""Runs inside the QEMU guest as root: emulated DualSense pads against riffpad's real code.

    python tests/kernel_vm/guest.py --out DIR [--watchdog SECONDS]

Loads uhid and hid-playstation, creates hid-tools' PS5 emulators over USB and Bluetooth,
and drives riffpad's enumeration, reader, output reports, reconnect and permission errors
through the kernel's hidraw nodes. Each check stores what was expected and what riffpad
produced in DIR/results.json (rewritten after every check, so a watchdog kill keeps what
finished); tests/integration/test_kernel_vm.py asserts on it from the host.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import traceback
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the checkout whose riffpad is tested (RIFFPAD_REPO: another checkout, for development)
REPO = Path(os.environ.get("RIFFPAD_REPO") or HERE.parents[1]).resolve()
sys.path.insert(0, str(REPO))

USB_MAC = "a0:5a:5d:00:00:01"
BT_MAC = "a0:5a:5d:00:00:02"
UDEV_RULES = REPO / "udev" / "70-riffpad-dualsense.rules"
# dualsense-hid.md §7 rules, used until riffpad's own rules file exists in the checkout
FALLBACK_RULES = """\
KERNEL=="hidraw*", ATTRS{idVendor}=="054c", ATTRS{idProduct}=="0ce6", MODE="0660", TAG+="uaccess"
KERNEL=="hidraw*", KERNELS=="*054C:0CE6*", MODE="0660", TAG+="uaccess"
"""

# Emulator button index (hid-tools PS5Controller.buttons_map) -> riffpad Button name
EMU_BUTTONS = {
    1: "square",
    2: "cross",
    3: "circle",
    4: "triangle",
    5: "l1",
    6: "r1",
    7: "l2",
    8: "r2",
    9: "create",
    10: "options",
    11: "l3",
    12: "r3",
}
DPADS = ["n", "ne", "e", "se", "s", "sw", "w", "nw"]


class Results:
    def __init__(self, out: Path):
        self.path = out / "results.json"
        self.data = {"meta": {"kernel": platform.release(), "started": time.time()}, "checks": {}}
        self.save()

    def save(self):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True, default=repr))
        tmp.replace(self.path)

    def check(self, name, fn, *args, **kw):
        """Run one check. Errors are recorded, not raised."""
        t0 = time.monotonic()
        entry = {"expected": None, "actual": None, "error": None, "info": None}
        try:
            # (expected, actual) or (expected, actual, info): info is stored, not compared
            out = fn(*args, **kw)
            entry["expected"], entry["actual"] = out[:2]
            entry["info"] = out[2] if len(out) > 2 else None
        except BaseException as err:  # a broken check must not stop the others
            entry["error"] = "".join(traceback.format_exception(err))[-4000:]
        entry["seconds"] = round(time.monotonic() - t0, 2)
        # round-trip through JSON so the comparison is the one the host makes
        entry = json.loads(json.dumps(entry, default=repr))
        entry["ok"] = entry["error"] is None and entry["expected"] == entry["actual"]
        self.data["checks"][name] = entry
        self.save()
        print(
            f"[guest] {name}: {'ok' if entry['ok'] else 'FAIL'} ({entry['seconds']}s)", flush=True
        )
        if not entry["ok"]:
            print(json.dumps(entry, indent=1)[-3000:], flush=True)
        return entry


def wait_for(pred, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    return pred()


def run(cmd, timeout=120, **kw):
    env = dict(os.environ, PYTHONPATH=str(REPO), HOME="/tmp")
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO, **kw
    )


# --- recording the bytes riffpad writes, around the real hidraw backend ---------------------


class SpyBackend:
    """The real ``hidraw`` module, with every write riffpad makes kept for comparison."""

    def __init__(self):
        import hidraw

        self._hidraw = hidraw
        self.writes: list[bytes] = []

    def enumerate(self, vid=0, pid=0):
        return self._hidraw.enumerate(vid, pid)

    def device(self):
        return _SpyHandle(self._hidraw.device(), self.writes)


class _SpyHandle:
    def __init__(self, handle, writes):
        self._h = handle
        self._writes = writes

    def write(self, data):
        n = self._h.write(data)
        if n >= 0:
            self._writes.append(bytes(data))
        return n

    def __getattr__(self, name):
        return getattr(self._h, name)


# --- expected values from what the emulator was told ----------------------------------------


def expected_state(left, right, l2, r2, hat, buttons, touch):
    return {
        "lx": left[0],
        "ly": left[1],
        "rx": right[0],
        "ry": right[1],
        "l2": l2,
        "r2": r2,
        "dpad": DPADS[hat] if hat is not None and hat < 8 else None,
        "buttons": sorted(EMU_BUTTONS[i] for i, down in buttons.items() if down),
        "touch": [[p.contactid, p.x, p.y] for p in touch],
    }


def observed_state(st):
    return {
        "lx": st.lx,
        "ly": st.ly,
        "rx": st.rx,
        "ry": st.ry,
        "l2": st.l2,
        "r2": st.r2,
        "dpad": st.dpad.value if st.dpad is not None else None,
        "buttons": st.button_names,
        "touch": [[p.id, p.x, p.y] for p in st.touch if p.active],
    }


def sweep():
    """States covering every stick extreme, both triggers, each d-pad direction, each button
    the emulator can press, and zero, one and two touch points at the touchpad's corners."""
    from emulator import PSTouchPoint

    states = []
    for i in range(12):
        stick = [(0, 255), (255, 0), (128, 128), (1, 254), (37, 200), (255, 255)][i % 6]
        other = [(200, 10), (128, 128), (0, 0), (254, 1), (90, 180), (17, 71)][i % 6]
        hat = i if i < 8 else None
        buttons = {b: (b == i + 1 or b == 12 - i) for b in EMU_BUTTONS}
        touch = [
            [],
            [PSTouchPoint(1, 0, 0)],
            [PSTouchPoint(2, 1919, 1079), PSTouchPoint(3, 960, 540)],
            [PSTouchPoint(4, 1023, 17)],
        ][i % 4]
        states.append(
            dict(
                left=stick,
                right=other,
                l2=(i * 23) % 256,
                r2=255 - i * 19,
                hat=hat,
                buttons=buttons,
                touch=touch,
            )
        )
    states.append(
        dict(
            left=(128, 128),
            right=(128, 128),
            l2=0,
            r2=0,
            hat=None,
            buttons={b: False for b in EMU_BUTTONS},
            touch=[],
        )
    )
    return states


# --- the checks -----------------------------------------------------------------------------


def kernel_sysfs(emu):
    """What hid-playstation itself read from the pad (sysfs), as the oracle for riffpad."""
    base = Path(emu.sys_path)
    fw = (base / "firmware_version").read_text().strip()
    hw = (base / "hardware_version").read_text().strip()
    uevent = dict(
        line.split("=", 1) for line in (base / "uevent").read_text().splitlines() if "=" in line
    )
    return {"firmware_version": fw, "hardware_version": hw, "uniq": uevent.get("HID_UNIQ")}


def check_kernel_bound(emu):
    from emulator import driver_of, hidraw_node

    sysfs = kernel_sysfs(emu)
    return (
        {"driver": "playstation", "hidraw": True, "uniq": emu.uniq},
        {"driver": driver_of(emu), "hidraw": bool(hidraw_node(emu)), "uniq": sysfs["uniq"]},
    )


def check_hidapi_raw(emu, transport):
    """hidapi's hidraw backend alone (no riffpad): what enumeration reports for this node,
    input bytes unchanged through the kernel, an output report unchanged to the pad."""
    import hidraw
    from emulator import hidraw_node

    node = hidraw_node(emu)
    entries = [e for e in hidraw.enumerate(0x054C, 0x0CE6) if e["path"] == node.encode()]
    handle = hidraw.device()
    handle.open_path(node.encode())
    try:
        sent = emu.send(left=(3, 250), right=(77, 88), hat_switch=2, buttons={2: True})
        got = b""
        deadline = time.monotonic() + 10
        while got != sent and time.monotonic() < deadline:
            got = bytes(handle.read(100, 1000))
        if transport == "usb":
            out = bytes([0x02, 0x00, 0x04]) + bytes(42) + bytes([1, 2, 3]) + bytes(15)
        else:
            body = bytes([0x31, 0x00, 0x10, 0x00, 0x04]) + bytes(42) + bytes([1, 2, 3])
            body += bytes(74 - len(body))
            crc = zlib.crc32(body, zlib.crc32(bytes([0xA2])))
            out = body + crc.to_bytes(4, "little")
        start = len(emu.received())
        handle.write(out)
        wait_for(lambda: out in emu.received()[start:], 10)
        arrived = out in emu.received()[start:]
    finally:
        handle.close()
    info = entries[0] if entries else {}
    return (
        {"listed": True, "serial": emu.uniq, "input": sent.hex(), "output_arrived": True},
        {
            "listed": bool(entries),
            "serial": info.get("serial_number"),
            "input": got.hex(),
            "output_arrived": arrived,
        },
        # what riffpad's transport detection has to work from (uhid has no USB parent)
        {"bus_type": info.get("bus_type"), "interface_number": info.get("interface_number")},
    )


def riffpad_devices_json() -> list[dict]:
    """`riffpad devices --json`, as the user runs it: riffpad's real hidraw enumeration."""
    proc = run([sys.executable, "-m", "riffpad", "devices", "--json"])
    if proc.returncode != 0:
        raise RuntimeError(f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout)


def check_devices_json(emu, listing, pads_plugged):
    from emulator import hidraw_node

    if isinstance(listing, BaseException):
        raise listing
    sysfs = kernel_sysfs(emu)
    node = hidraw_node(emu)
    mine = [p for p in listing if p.get("path") == node]
    if len(mine) != 1:
        raise AssertionError(f"{node} not listed once in {listing}")
    pad = mine[0]
    fw = pad.get("firmware") or {}
    return (
        {
            "count": pads_plugged,
            "transport": emu.transport,
            "mac": emu.uniq,
            "fw_version": sysfs["firmware_version"],
            "hw_version": sysfs["hardware_version"],
            "error": None,
        },
        {
            "count": len(listing),
            "transport": pad.get("transport"),
            "mac": pad.get("mac"),
            "fw_version": fw.get("fw_version"),
            "hw_version": fw.get("hw_version"),
            "error": pad.get("error"),
        },
        {"row": pad},
    )


def check_input_sweep(emu, reader):
    """Each emulator state arrives through the kernel and riffpad's reader and parser."""
    expected, actual = [], []
    wait = 10.0  # generous for the first report, short once one went missing
    for s in sweep():
        before = reader.accepted
        emu.send(
            left=s["left"],
            right=s["right"],
            l2=s["l2"],
            r2=s["r2"],
            hat_switch=8 if s["hat"] is None else s["hat"],
            buttons=s["buttons"],
            touch=s["touch"],
        )
        want = expected_state(**s)
        expected.append(want)
        if not wait_for(lambda b=before: reader.accepted > b, wait):
            wait = 0.5
        got = wait_for(lambda w=want: observed_state(reader.state) == w and reader.state, 1)
        actual.append(observed_state(got or reader.state))
    return expected, actual


def decode_output(report: bytes, transport: str) -> dict:
    """Independent decode of an output report (dualsense-hid.md §4), not riffpad's code."""
    if transport == "usb":
        assert report[0] == 0x02, report[:1].hex()
        c = report[1:48]
        crc_ok = None
    else:
        assert report[0] == 0x31 and report[2] == 0x10 and len(report) == 78, report[:3].hex()
        c = report[3:50]
        seed = zlib.crc32(bytes([0xA2]))
        crc_ok = zlib.crc32(report[:74], seed) == int.from_bytes(report[74:78], "little")
    return {
        "lightbar": list(c[44:47]) if c[1] & 0x04 else None,
        "player_leds": c[43] & 0x1F if c[1] & 0x10 else None,
        "rumble": [c[3], c[2]] if (c[0] & 0x01 or c[38] & 0x04) else [0, 0],
        "right_trigger": list(c[10:21]) if c[0] & 0x04 else None,
        "left_trigger": list(c[21:32]) if c[0] & 0x08 else None,
        "crc_ok": crc_ok,
    }


def feedback_sweep():
    from riffpad.pad.output import Feedback, TriggerEffect

    return [
        Feedback(lightbar=(255, 0, 64), player_leds=0b00100, rumble=(0, 0)),
        Feedback(lightbar=(1, 2, 3), player_leds=0b11111, led_brightness=2, rumble=(200, 30)),
        Feedback(
            lightbar=(0, 255, 0),
            player_leds=0b01010,
            rumble=(0, 255),
            right_trigger=TriggerEffect.feedback(3, 8),
            left_trigger=TriggerEffect.off(),
        ),
        Feedback(lightbar=(18, 52, 86), player_leds=0, rumble=(0, 0)),
    ]


def check_output_reports(emu, spy, transport):
    """riffpad's output reports reach the pad through the kernel byte for byte."""
    from emulator import hidraw_node

    from riffpad.pad.device import open_pad

    dev = open_pad(hidraw_node(emu), backend=spy)
    try:
        time.sleep(0.5)  # let the kernel's own start-up reports drain first
        spy.writes.clear()
        start = len(emu.received())
        sent = []
        for fb in feedback_sweep():
            assert dev.send_feedback(fb)
            sent.append(fb)
        assert not dev.send_feedback(sent[-1]), "an unchanged Feedback must not be re-sent"
        wait_for(lambda: len(emu.received()) - start >= len(spy.writes), 10)
        time.sleep(0.3)
        arrived = [r for r in emu.received()[start:] if r in spy.writes]
        expected = {
            "written": [w.hex() for w in spy.writes],
            "decoded": [
                {
                    "lightbar": list(fb.lightbar),
                    "player_leds": fb.player_leds,
                    "rumble": list(fb.rumble),
                    "right_trigger": True if fb.right_trigger is not None else None,
                    "left_trigger": True if fb.left_trigger is not None else None,
                    "crc_ok": True if transport == "bluetooth" else None,
                }
                for fb in sent
            ],
        }
        decoded = [decode_output(r, transport) for r in arrived]
        for d in decoded:
            for side in ("right_trigger", "left_trigger"):
                d[side] = True if d[side] is not None else None
        return expected, {"written": [r.hex() for r in arrived], "decoded": decoded}
    finally:
        dev.close()


def spec_feedback_effect(position: int, strength: int) -> list[int]:
    """Sony "Feedback" effect (0x21) from dualsense-hid.md §4.5, independent of riffpad:
    p0-1 = active-zone mask (u16 LE), p2-5 = strength-1 per zone at bits 3i (u32 LE)."""
    zones = range(position, 10)
    mask = sum(1 << z for z in zones)
    strengths = sum((strength - 1) << (3 * z) for z in zones)
    return [0x21, *mask.to_bytes(2, "little"), *strengths.to_bytes(4, "little"), 0, 0, 0, 0]


def check_trigger_bytes(emu, spy, transport):
    """The trigger blocks that arrive at the pad are the spec's bytes for the effects asked
    (right: feedback from zone 3 at strength 8; left: off = Sony effect 0x05)."""
    arrived = [r for r in emu.received() if r in spy.writes]
    with_trigger = [d for d in (decode_output(r, transport) for r in arrived) if d["right_trigger"]]
    if not with_trigger:
        raise AssertionError("no output report with a trigger effect arrived")
    return (
        [spec_feedback_effect(3, 8), [0x05] + [0] * 10],
        [with_trigger[-1]["right_trigger"], with_trigger[-1]["left_trigger"]],
    )


def check_lightbar_wins(emu, spy, transport):
    """After the kernel's start-up lightbar (blue), riffpad's colour is the last one set."""
    from emulator import hidraw_node

    from riffpad.pad.device import PadReader
    from riffpad.pad.output import Feedback

    colour = [12, 200, 34]
    reader = PadReader(backend=spy, path=hidraw_node(emu), reconnect=False, timeout_ms=50)
    reader.set_feedback(Feedback(lightbar=tuple(colour), player_leds=0b10001))
    reader.start()
    try:
        wait_for(lambda: reader.connected, 20)
        time.sleep(2.0)  # anything the kernel still had queued would arrive by now
        lightbars = [
            d["lightbar"]
            for d in map(lambda r: decode_output(r, transport), emu.received())
            if d["lightbar"]
        ]
        leds = sorted(
            p.name for p in Path("/sys/class/leds").iterdir() if p.name.endswith(":rgb:indicator")
        )
        kernel_blue = [0, 0, 128] in lightbars
        return (
            {"kernel_start_lightbar_seen": True, "last_lightbar": colour, "led_class": True},
            {
                "kernel_start_lightbar_seen": kernel_blue,
                "last_lightbar": lightbars[-1] if lightbars else None,
                "led_class": bool(leds),
            },
        )
    finally:
        reader.stop()


# --- unplug and reconnect -------------------------------------------------------------------


def check_unplug_reconnect(pump):
    """Destroy the pad mid-read; riffpad reports it gone, no exception escapes, and it
    reconnects by itself when a pad appears again, over USB and then Bluetooth."""
    from emulator import plug, unplug

    from riffpad.pad.device import PadReader
    from riffpad.pad.state import NEUTRAL

    events, errors = [], []

    def on_event(ev):  # connection changes, kept as evidence (not compared: timing-dependent)
        if hasattr(ev, "connected"):
            events.append([ev.connected, ev.info.transport.value if ev.info else None, ev.reason])

    emu = plug("usb", USB_MAC, pump)
    reader = PadReader(reconnect=True, timeout_ms=100, poll_interval=0.2)
    # an exception escaping the reader thread would land here
    old_hook = threading.excepthook
    threading.excepthook = lambda a: errors.append(repr(a.exc_value))
    reader.start(on_event)
    try:
        ok_connect = wait_for(lambda: reader.connected, 20)
        emu.send(left=(10, 20), buttons={2: True})  # hold cross
        held = wait_for(lambda: "cross" in reader.state.button_names, 10)
        # keep the reader reading while the device disappears under it
        unplug(emu, pump)
        gone = wait_for(lambda: not reader.connected, 15)
        neutral = reader.state == NEUTRAL
        time.sleep(1.0)  # several reconnect polls with no pad present
        alive_without_pad = reader._thread is not None and reader._thread.is_alive()

        emu = plug("bluetooth", USB_MAC, pump)  # the same pad, now over Bluetooth
        back_bt = wait_for(lambda: reader.connected, 20)
        bt_transport = reader.info.transport.value if reader.info else None
        emu.send(right=(250, 5))
        bt_state = wait_for(lambda: reader.state.rx == 250 and reader.state.ry == 5, 10)
        unplug(emu, pump)
        gone_again = wait_for(lambda: not reader.connected, 15)

        emu = plug("usb", BT_MAC, pump)  # a different pad over USB
        back_usb = wait_for(lambda: reader.connected, 20)
        usb_transport = reader.info.transport.value if reader.info else None
        emu.send(l2=77)
        usb_state = wait_for(lambda: reader.state.l2 == 77, 10)
        unplug(emu, pump)
        wait_for(lambda: not reader.connected, 15)
    finally:
        reader.stop(timeout=5)
        threading.excepthook = old_hook
    return (
        {
            "connected": True,
            "held_cross": True,
            "gone_after_unplug": True,
            "state_neutral_after_unplug": True,
            "reader_alive_without_pad": True,
            "reconnected_bluetooth": True,
            "bluetooth_transport": "bluetooth",
            "bluetooth_input": True,
            "gone_again": True,
            "reconnected_usb_other_pad": True,
            "usb_transport": "usb",
            "usb_input": True,
            "escaped_exceptions": [],
        },
        {
            "connected": bool(ok_connect),
            "held_cross": bool(held),
            "gone_after_unplug": bool(gone),
            "state_neutral_after_unplug": neutral,
            "reader_alive_without_pad": alive_without_pad,
            "reconnected_bluetooth": bool(back_bt),
            "bluetooth_transport": bt_transport,
            "bluetooth_input": bool(bt_state),
            "gone_again": bool(gone_again),
            "reconnected_usb_other_pad": bool(back_usb),
            "usb_transport": usb_transport,
            "usb_input": bool(usb_state),
            "escaped_exceptions": errors,
        },
        {"connection_events": events},
    )


# --- permissions ----------------------------------------------------------------------------

# Imports happen as root, then the process drops to nobody: the checkout and its venv may
# sit in a folder only root can read (a CI clone in a mktemp -d), which is not what is tested.
UNPRIV_OPEN = """
import json, os, sys
import hidraw  # riffpad's backend, imported before the drop like the rest
from riffpad.pad.device import open_pad
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
out = {}
for node in sys.argv[1:]:
    try:
        open_pad(node).close()
        out[node] = {"error": None, "message": ""}
    except Exception as err:
        out[node] = {"error": type(err).__name__, "message": str(err)}
print(json.dumps(out))
"""


def unprivileged_open(emus) -> dict:
    """Open each pad's node as nobody, the nodes root-only (0600, as without riffpad's
    rules): one Python start for all pads, which costs seconds in the guest."""
    from emulator import hidraw_node

    nodes = [hidraw_node(e) for e in emus]
    for node in nodes:
        os.chmod(node, 0o600)
        os.chown(node, 0, 0)
    proc = run([sys.executable, "-c", UNPRIV_OPEN, *nodes])
    if proc.returncode != 0:
        raise RuntimeError(f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_permission_denied(emu, opened):
    """A node the user cannot open: riffpad's error is PadPermissionError naming the fix."""
    from emulator import hidraw_node

    if isinstance(opened, BaseException):
        raise opened
    node = hidraw_node(emu)
    out = opened[node]
    message = out["message"]
    return (
        {"error": "PadPermissionError", "names_node": True, "names_udev_fix": True},
        {
            "error": out["error"],
            "names_node": node in message,
            "names_udev_fix": "udev install" in message,
        },
        {"message": message},
    )


def install_rules() -> str:
    """riffpad's rules into /run/udev/rules.d (the guest's /etc is the host's, read-only)."""
    rules_dir = Path("/run/udev/rules.d")
    rules_dir.mkdir(parents=True, exist_ok=True)
    target = rules_dir / "70-riffpad-dualsense.rules"
    if UDEV_RULES.exists():
        shutil.copyfile(UDEV_RULES, target)
        source = str(UDEV_RULES.relative_to(REPO))
    else:
        target.write_text(FALLBACK_RULES)
        source = "dualsense-hid.md §7 fallback"
    subprocess.run(["udevadm", "control", "--reload"], check=True, timeout=60)
    return source


def udev_view(node: str) -> tuple[list[str], str]:
    info = subprocess.run(
        ["udevadm", "info", "--query=property", f"--name={node}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    props = dict(line.split("=", 1) for line in info.splitlines() if "=" in line)
    return [t for t in props.get("TAGS", "").split(":") if t], oct(os.stat(node).st_mode & 0o777)


def check_udev_baseline(emu):
    """Before riffpad's rules are loaded the node has no uaccess tag, so the tag seen later
    comes from riffpad's file (and not from the system's own rules)."""
    from emulator import hidraw_node

    tags, mode = udev_view(hidraw_node(emu))
    return {"uaccess_tag": False}, {"uaccess_tag": "uaccess" in tags}, {"mode": mode, "tags": tags}


def check_udev_rules(emu, rules_source):
    """With riffpad's rules loaded, udev gives the pad's node mode 0660 and the uaccess tag."""
    from emulator import hidraw_node

    tags, mode = udev_view(hidraw_node(emu))
    return (
        {"uaccess_tag": True, "mode": "0o660"},
        {"uaccess_tag": "uaccess" in tags, "mode": mode},
        {"rules": rules_source, "tags": tags},
    )


# --- main -----------------------------------------------------------------------------------


def attempt(fn, *args):
    """Run fn once for several checks; its exception becomes each check's error."""
    try:
        return fn(*args)
    except Exception as err:
        return err


def both_pads(results, pump):
    """A USB pad and a Bluetooth pad (different MACs) plugged at the same time."""
    from emulator import hidraw_node, plug, unplug

    from riffpad.pad.device import PadReader

    emus = {"usb": plug("usb", USB_MAC, pump), "bluetooth": plug("bluetooth", BT_MAC, pump)}
    try:
        for transport, emu in emus.items():
            results.check(f"{transport}.kernel_bound", check_kernel_bound, emu)
            results.check(f"{transport}.hidapi_raw", check_hidapi_raw, emu, transport)
        listing = attempt(riffpad_devices_json)
        for transport, emu in emus.items():
            results.check(f"{transport}.devices_json", check_devices_json, emu, listing, 2)
        for transport, emu in emus.items():
            spy = SpyBackend()
            results.check(f"{transport}.lightbar_wins", check_lightbar_wins, emu, spy, transport)
            reader = PadReader(backend=spy, path=hidraw_node(emu), reconnect=False, timeout_ms=100)
            reader.start()
            try:
                wait_for(lambda r=reader: r.connected, 20)
                results.check(f"{transport}.input_sweep", check_input_sweep, emu, reader)
                results.check(
                    f"{transport}.reader_counters",
                    lambda r=reader: ({"rejected": {}}, {"rejected": dict(r.rejected)}),
                )
            finally:
                reader.stop()
            results.check(f"{transport}.output_reports", check_output_reports, emu, spy, transport)
            results.check(f"{transport}.trigger_bytes", check_trigger_bytes, emu, spy, transport)
        for transport, emu in emus.items():
            results.check(f"udev_baseline.{transport}", check_udev_baseline, emu)
        opened = attempt(unprivileged_open, list(emus.values()))
        for transport, emu in emus.items():
            results.check(f"{transport}.permission_denied", check_permission_denied, emu, opened)
    finally:
        for emu in emus.values():
            unplug(emu, pump)


def with_rules(results, pump):
    from emulator import plug, unplug

    source = install_rules()
    results.data["meta"]["udev_rules"] = source
    emus = {"usb": plug("usb", USB_MAC, pump), "bluetooth": plug("bluetooth", BT_MAC, pump)}
    try:
        for transport, emu in emus.items():
            results.check(f"udev_rules.{transport}", check_udev_rules, emu, source)
    finally:
        for emu in emus.values():
            unplug(emu, pump)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--watchdog", type=float, default=240.0)
    args = ap.parse_args()
    t0 = time.monotonic()
    # a hang anywhere (uhid, hidraw, udev) dumps every thread's stack and exits non-zero
    faulthandler.dump_traceback_later(args.watchdog, exit=True)
    results = Results(args.out)
    for mod in ("uhid", "hid-playstation"):
        subprocess.run(["modprobe", mod], check=True, timeout=60)
    t_import = time.monotonic()
    import emulator

    results.data["meta"]["import_seconds"] = round(time.monotonic() - t_import, 1)
    pump = emulator.Pump()
    pump.start()
    try:
        both_pads(results, pump)
        results.check("unplug_reconnect", check_unplug_reconnect, pump)
        with_rules(results, pump)
    finally:
        pump.stop()
        results.data["meta"]["guest_seconds"] = round(time.monotonic() - t0, 1)
        results.data["meta"]["pump_error"] = repr(pump.error) if pump.error else None
        results.data["meta"]["plug_log"] = emulator.PLUG_LOG
        results.data["meta"]["finished"] = True
        results.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
