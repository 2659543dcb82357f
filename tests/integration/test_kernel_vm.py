"""riffpad against the real Linux HID stack: hid-playstation, hidraw and udev in a QEMU VM.

One VM boot (virtme-ng, QEMU TCG) runs tests/kernel_vm/guest.py, which drives hid-tools'
emulated DualSense (USB and Bluetooth) through /dev/uhid and records, per check, what was
expected and what riffpad produced. Each test here asserts one check.

    python -m pytest -m kernel_vm          # needs QEMU, a kernel, virtme-ng, hid-tools
    bash .ci/kernel_vm.sh                  # installs those on Debian, then runs the above

Without those tools the tests skip (CI=true: they fail instead).
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel_vm

REPO = Path(__file__).resolve().parents[2]
GUEST = REPO / "tests" / "kernel_vm" / "guest.py"
# The whole VM run, boot to power-off; the guest watchdog fires a minute earlier with stacks.
VM_TIMEOUT = int(os.environ.get("RIFFPAD_VM_TIMEOUT", "420"))
ENABLE_HINT = "run `bash .ci/kernel_vm.sh` (Debian: installs QEMU, a kernel, virtme-ng, hid-tools)"


def _guest_python() -> str:
    # the guest sees the host's file system read-only, so this venv works inside it
    return os.environ.get("RIFFPAD_VM_PYTHON") or sys.executable


def _find_vng() -> str | None:
    beside = Path(_guest_python()).parent / "vng"
    return str(beside) if beside.exists() else shutil.which("vng")


def _find_kernel() -> str | None:
    """The newest Debian kernel image whose modules are installed (uhid, hid-playstation)."""
    kernels = []
    for image in glob.glob("/boot/vmlinuz-*"):
        version = image.split("vmlinuz-", 1)[1]
        if Path(f"/lib/modules/{version}/modules.dep").exists():
            kernels.append(image)
    return max(kernels, default=None)


def _missing() -> list[str]:
    missing = []
    if not shutil.which("qemu-system-x86_64"):
        missing.append("qemu-system-x86_64 (apt qemu-system-x86)")
    if not _find_kernel():
        missing.append("a kernel in /boot with modules (apt linux-image-amd64)")
    if not shutil.which("busybox"):
        missing.append("busybox (apt busybox-static)")
    if not shutil.which("udevadm"):
        missing.append("udevadm (apt udev)")
    if not _find_vng():
        missing.append("vng (pip virtme-ng)")
    probe = subprocess.run(
        [_guest_python(), "-c", "import hidtools.device.sony_gamepad, pyudev, hidraw"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        missing.append(f"hid-tools/pyudev/libevdev/hidapi in {_guest_python()} ({last})")
    return missing


class VmRun:
    def __init__(self, results: dict, log: str, rc: int, seconds: float):
        self.results = results
        self.log = log
        self.rc = rc
        self.seconds = seconds

    def check(self, name: str) -> dict:
        checks = self.results.get("checks", {})
        if name not in checks:
            pytest.fail(
                f"the guest did not record check {name!r} (VM rc={self.rc}); log tail:\n"
                + self.log[-6000:]
            )
        return checks[name]


@pytest.fixture(scope="session")
def vm() -> VmRun:
    missing = _missing()
    if missing:
        message = "kernel VM tests need: " + "; ".join(missing) + f". To enable: {ENABLE_HINT}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    # kept after the run (gitignored) for reading vm.log and results.json
    out = Path(os.environ.get("RIFFPAD_VM_OUT") or REPO / ".ci-cache" / "kernel_vm")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    vng = _find_vng()
    # RIFFPAD_REPO: test another checkout's riffpad with these guest scripts (development)
    riffpad_repo = os.environ.get("RIFFPAD_REPO") or str(REPO)
    q = shlex.quote
    guest_cmd = (
        f"cd {q(str(REPO))} && RIFFPAD_REPO={q(riffpad_repo)} PYTHONPATH={q(riffpad_repo)} "
        f"{q(_guest_python())} -u {q(str(GUEST))} "
        f"--out {q(str(out))} --watchdog {max(VM_TIMEOUT - 60, 60)}"
    )
    cmd = [
        "timeout", "--kill-after=15", str(VM_TIMEOUT),
        vng, "--run", _find_kernel(),
        "--disable-kvm",  # these machines' /dev/kvm cannot boot a stock kernel
        "--force-9p",  # Debian's virtiofsd fails under virtme-ng
        "--disable-monitor", "--memory", "2G", "--cpus", "2",
        "--rwdir", str(out),
        "--exec", guest_cmd,
    ]  # fmt: skip
    env = dict(os.environ, PATH=f"{Path(vng).parent}:{os.environ.get('PATH', '')}")
    t0 = time.monotonic()
    # a pipe, not a file: QEMU reopens a redirected stdout with truncation
    proc = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    seconds = time.monotonic() - t0
    log = proc.stdout.decode(errors="replace")
    (out / "vm.log").write_text(log)
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    print(f"\nkernel VM run: {seconds:.1f}s, rc={proc.returncode}, log {out / 'vm.log'}")
    return VmRun(results, log, proc.returncode, seconds)


def _assert_check(vm: VmRun, name: str) -> dict:
    entry = vm.check(name)
    assert entry["error"] is None, f"{name} raised in the guest:\n{entry['error']}"
    assert entry["actual"] == entry["expected"]
    return entry


def test_vm_run_completed(vm):
    """The guest ran to the end (no watchdog, no crash) and the VM exited cleanly."""
    meta = vm.results.get("meta", {})
    assert meta.get("finished"), f"guest did not finish (rc={vm.rc}); log tail:\n{vm.log[-6000:]}"
    assert meta.get("pump_error") is None
    assert vm.rc == 0, vm.log[-6000:]


TRANSPORTS = ["usb", "bluetooth"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_kernel_binds_hid_playstation(vm, transport):
    """hid-playstation probes the emulated pad (features 0x09/0x20/0x05) and makes hidraw."""
    _assert_check(vm, f"{transport}.kernel_bound")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_devices_json_lists_pad(vm, transport):
    """`riffpad devices --json` in the guest: transport, MAC and firmware as the kernel read."""
    _assert_check(vm, f"{transport}.devices_json")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reader_parses_emulated_states(vm, transport):
    """Sticks, triggers, buttons, d-pad and touch points, as the emulator was told."""
    entry = _assert_check(vm, f"{transport}.input_sweep")
    assert len(entry["expected"]) >= 13


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reader_rejects_nothing(vm, transport):
    """Every report the kernel delivered was accepted (CRC valid on Bluetooth)."""
    _assert_check(vm, f"{transport}.reader_counters")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_output_reports_arrive_byte_for_byte(vm, transport):
    """Lightbar, player LEDs, rumble and trigger effects reach the pad unchanged."""
    entry = _assert_check(vm, f"{transport}.output_reports")
    assert len(entry["actual"]["written"]) == 4  # the 5th, unchanged Feedback was not sent


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_trigger_effect_bytes(vm, transport):
    _assert_check(vm, f"{transport}.trigger_bytes")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_lightbar_wins_over_kernel_startup(vm, transport):
    """The kernel sets its blue start-up lightbar; riffpad's colour is the last one set."""
    _assert_check(vm, f"{transport}.lightbar_wins")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_permission_error_names_udev_fix(vm, transport):
    """An unprivileged user on a root-only hidraw node gets PadPermissionError with the fix."""
    _assert_check(vm, f"{transport}.permission_denied")


def test_unplug_and_reconnect(vm):
    """Unplug mid-read: reported gone, no exception, reconnects over Bluetooth and USB."""
    _assert_check(vm, "unplug_reconnect")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_no_uaccess_without_riffpad_rules(vm, transport):
    """Baseline: the system's own rules do not tag the pad, so the next test shows ours."""
    _assert_check(vm, f"udev_baseline.{transport}")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_udev_rules_mode_and_uaccess(vm, transport):
    """With riffpad's rules in udev, the pad's hidraw node is 0660 and tagged uaccess."""
    _assert_check(vm, f"udev_rules.{transport}")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hidapi_hidraw_backend_alone(vm, transport):
    """Baseline without riffpad: hidapi lists the node with the MAC, bytes pass unchanged."""
    _assert_check(vm, f"{transport}.hidapi_raw")
