"""riffpad doctor: each check's logic on injected facts, then one real run on this machine."""

from __future__ import annotations

import enum
import importlib.metadata
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from riffpad import diagnose
from riffpad.cli import main
from riffpad.commands import udev as udev_cmd
from riffpad.diagnose import Check, FoundPad
from riffpad.pad.state import Transport

# --- python, packages, hid backend ------------------------------------------------------


def test_python_version():
    ok = diagnose.check_python((3, 11, 7))
    assert (ok.status, ok.required) == ("ok", True) and "3.11.7" in ok.detail
    old = diagnose.check_python((3, 9, 18))
    assert old.status == "fail" and ">= 3.10" in old.fix


def test_packages_missing_fails_and_names_the_package():
    def version_of(name):
        if name == "diffusers":
            raise importlib.metadata.PackageNotFoundError(name)
        return "1.2.3"

    c = diagnose.check_packages(version_of)
    assert c.status == "fail" and c.required
    assert c.data["missing"] == ["diffusers"]
    assert "pip install diffusers" in c.fix
    good = diagnose.check_packages(lambda name: "9.9")
    assert good.status == "ok"
    assert set(good.data["versions"]) == {"riffpad", *diagnose.PACKAGES}


def fake_import(available: dict[str, object], errors: dict[str, Exception] | None = None):
    errors = errors or {}

    def import_module(name):
        if name in errors:
            raise errors[name]
        if name in available:
            return available[name]
        raise ImportError(f"No module named {name!r}")

    return import_module


def test_hid_backend_ok_with_hidraw():
    c = diagnose.check_hid_backend(fake_import({"hidraw": types.SimpleNamespace(__file__="x.so")}))
    assert c.status == "ok"


def test_hid_backend_fails_with_only_libusb():
    c = diagnose.check_hid_backend(fake_import({"hid": object()}))
    assert (c.status, c.required) == ("fail", True)
    assert "libusb" in c.detail and "hidraw" in c.detail
    assert "pip install --force-reinstall hidapi" in c.fix


def test_hid_backend_fails_without_hidapi_and_names_libudev():
    missing = diagnose.check_hid_backend(fake_import({}))
    assert missing.status == "fail" and "not importable" in missing.detail
    libudev = diagnose.check_hid_backend(
        fake_import({}, {"hidraw": ImportError("libudev.so.1: cannot open shared object file")})
    )
    assert "apt-get install libudev1" in libudev.fix


# --- pads ---------------------------------------------------------------------------------

PAD_USB = FoundPad("/dev/hidraw3", "usb", "DualSense")
PAD_BT = FoundPad("/dev/hidraw7", "bluetooth", "DualSense Edge")


def test_no_pads_warns_with_how_to_connect():
    c = diagnose.check_pads(lambda: [], is_root=False)
    assert c.status == "warn" and not c.required
    assert "Bluetooth" in c.fix and "--replay" in c.fix


def test_pad_without_permission_points_at_udev_install():
    allowed = {"/dev/hidraw3"}
    c = diagnose.check_pads(
        lambda: [PAD_USB, PAD_BT],
        access=lambda p, mode: p in allowed,
        is_root=False,
        exists=lambda p: True,
    )
    assert c.status == "warn"
    assert c.data["denied"] == ["/dev/hidraw7"]
    assert 'riffpad)" udev install' in c.fix
    assert "DualSense usb /dev/hidraw3: rw ok" in c.detail
    assert "DualSense Edge bluetooth /dev/hidraw7: no access" in c.detail


def test_pads_with_access_are_ok_and_root_is_flagged():
    def check(is_root):
        return diagnose.check_pads(
            lambda: [PAD_USB], access=lambda p, m: True, is_root=is_root, exists=lambda p: True
        )

    c = check(is_root=False)
    assert c.status == "ok" and "rw ok" in c.detail and "root" not in c.detail
    assert "running as root" in check(is_root=True).detail


def test_pads_access_asks_for_read_and_write():
    modes = []
    diagnose.check_pads(
        lambda: [PAD_USB], access=lambda p, m: modes.append(m) or True, exists=lambda p: True
    )
    assert modes == [os.R_OK | os.W_OK]


def test_pad_node_that_vanished_is_not_called_a_permission_problem():
    c = diagnose.check_pads(lambda: [PAD_USB], access=lambda p, m: False, exists=lambda p: False)
    assert c.status == "warn" and "node gone" in c.detail and "udev" not in c.fix
    assert c.data["gone"] == ["/dev/hidraw3"]


def test_pads_through_the_device_layer_and_its_fake_backend(tmp_path, monkeypatch):
    # The real riffpad.pad.device enumeration, fed by the hid-device helper's fake hidraw.
    from support.fakehid import FakeBackend, FakePad

    import riffpad.pad.device as devmod

    nodes = [tmp_path / "hidraw4", tmp_path / "hidraw5"]
    for node in nodes:
        node.write_text("")
    usb = FakePad(Transport.USB, path=str(nodes[0]).encode())
    bt = FakePad(Transport.BLUETOOTH, path=str(nodes[1]).encode(), mac="a0:ab:51:00:00:02")
    monkeypatch.setattr(devmod, "default_backend", lambda: FakeBackend(usb, bt))
    assert diagnose.enumerate_pads() == [
        FoundPad(str(nodes[0]), "usb", "DualSense"),
        FoundPad(str(nodes[1]), "bluetooth", "DualSense"),
    ]
    result = CliRunner().invoke(main, ["doctor", "--json", "--out", str(tmp_path / "w")])
    (pads,) = [c for c in json.loads(result.output)["checks"] if c["name"] == "pads"]
    assert pads["status"] == "ok", pads  # the files exist and are ours (rw)
    assert f"DualSense bluetooth {nodes[1]}: rw ok" in pads["detail"]


def test_enumeration_error_is_a_warning_not_a_crash():
    def boom():
        raise OSError("hid_init failed")

    c = diagnose.check_pads(boom, is_root=False)
    assert c.status == "warn" and "hid_init failed" in c.detail


def test_enumerate_uses_the_device_layer(monkeypatch):
    class Model(str, enum.Enum):  # the device layer may use an enum for the model too
        DUALSENSE = "DualSense"

    info = types.SimpleNamespace(
        path=b"/dev/hidraw5", transport=Transport.BLUETOOTH, model=Model.DUALSENSE
    )
    fake = types.ModuleType("riffpad.pad.device")
    fake.enumerate_pads = lambda backend=None: [info]
    monkeypatch.setitem(sys.modules, "riffpad.pad.device", fake)
    assert diagnose.enumerate_pads() == [FoundPad("/dev/hidraw5", "bluetooth", "DualSense")]


# --- udev rules ---------------------------------------------------------------------------


def put(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


OURS = f"etc/udev/rules.d/{udev_cmd.RULES_NAME}"


def test_udev_nothing_installed_warns(tmp_path):
    c = diagnose.check_udev_rules(tmp_path)
    assert c.status == "warn" and "udev install" in c.fix


def test_udev_installed_matches(tmp_path):
    put(tmp_path, OURS, udev_cmd.shipped_rules())
    c = diagnose.check_udev_rules(tmp_path)
    assert c.status == "ok" and "installed" in c.detail


def test_udev_installed_by_a_package_in_usr_lib(tmp_path):
    put(tmp_path, f"usr/lib/udev/rules.d/{udev_cmd.RULES_NAME}", udev_cmd.shipped_rules())
    assert diagnose.check_udev_rules(tmp_path).status == "ok"


def test_udev_stale_copy_in_etc_hides_a_good_one(tmp_path):
    put(tmp_path, f"usr/lib/udev/rules.d/{udev_cmd.RULES_NAME}", udev_cmd.shipped_rules())
    put(tmp_path, OURS, udev_cmd.shipped_rules().replace("0df2", "0df3"))
    c = diagnose.check_udev_rules(tmp_path)
    assert c.status == "warn" and "differs" in c.detail
    assert c.data["path"] == str(tmp_path / OURS)


def test_udev_group_rule_and_membership(tmp_path):
    put(tmp_path, OURS, udev_cmd.group_rules("plugdev"))
    inside = diagnose.check_udev_rules(tmp_path, user_groups=["users", "plugdev"])
    assert inside.status == "ok" and "group plugdev" in inside.detail
    outside = diagnose.check_udev_rules(tmp_path, user_groups=["users"])
    assert outside.status == "warn" and "usermod -aG plugdev" in outside.fix


STEAM = (
    'KERNEL=="hidraw*", ATTRS{idVendor}=="054c", ATTRS{idProduct}=="0ce6", '
    'MODE="0660", TAG+="uaccess"\n'
)


def test_udev_other_rules_covering_the_pad_count(tmp_path):
    put(tmp_path, "usr/lib/udev/rules.d/60-steam-input.rules", STEAM)
    c = diagnose.check_udev_rules(tmp_path)
    assert c.status == "ok" and "60-steam-input.rules" in c.detail


def test_udev_uaccess_rule_sorting_after_seat_late_does_not_count(tmp_path):
    put(tmp_path, "etc/udev/rules.d/99-dualsense.rules", STEAM)
    c = diagnose.check_udev_rules(tmp_path)
    assert c.status == "warn"


# --- torch, memory, model --------------------------------------------------------------


def fake_torch(cuda=False, mps=False):
    cuda_ns = types.SimpleNamespace(
        is_available=lambda: cuda,
        current_device=lambda: 0,
        get_device_name=lambda i: "NVIDIA H100 80GB HBM3",
        mem_get_info=lambda i: (70 * 2**30, 80 * 2**30),
    )
    backends = types.SimpleNamespace(mps=types.SimpleNamespace(is_available=lambda: mps))
    return types.SimpleNamespace(__version__="2.13.0", cuda=cuda_ns, backends=backends)


def test_torch_cuda_names_the_gpu_and_free_memory():
    c = diagnose.check_torch(fake_import({"torch": fake_torch(cuda=True)}))
    assert c.status == "ok" and "NVIDIA H100" in c.detail and "70.0 of 80.0 GiB free" in c.detail
    assert c.data["device"] == "cuda"


def test_torch_mps_and_cpu():
    assert diagnose.check_torch(fake_import({"torch": fake_torch(mps=True)})).data == {
        "device": "mps"
    }
    cpu = diagnose.check_torch(fake_import({"torch": fake_torch()}))
    assert cpu.status == "warn" and "CPU" in cpu.detail and cpu.fix


def test_torch_not_importable_fails():
    c = diagnose.check_torch(fake_import({}, {"torch": OSError("libcudnn.so.9: cannot open")}))
    assert (c.status, c.required) == ("fail", True) and "libcudnn" in c.detail
    assert "pip install torch" in c.fix


def test_memory(tmp_path):
    low = tmp_path / "low"
    low.write_text("MemTotal:        8000000 kB\nMemFree: 1 kB\nMemAvailable:    2000000 kB\n")
    c = diagnose.check_memory(low)
    assert c.status == "warn" and "2.0 GB free of 8.2 GB" in c.detail
    high = tmp_path / "high"
    high.write_text("MemTotal:       32000000 kB\nMemAvailable:   30000000 kB\n")
    assert diagnose.check_memory(high).status == "ok"
    assert diagnose.check_memory(tmp_path / "missing").status == "warn"


def hf_cache(cache: Path, with_unet: bool) -> Path:
    repo = cache / "models--riffusion--riffusion-model-v1"
    snapshot = repo / "snapshots" / "abc123"
    put(repo, "refs/main", "abc123")
    put(snapshot, "model_index.json", "{}")
    if with_unet:
        put(snapshot, "unet/diffusion_pytorch_model.safetensors", "x")
    return snapshot


def test_model_not_cached_says_download_size(tmp_path):
    c = diagnose.check_model(cache_dir=tmp_path, env={})
    assert c.status == "warn" and f"about {diagnose.MODEL_GB} GB" in c.detail


def test_model_not_cached_and_offline(tmp_path):
    c = diagnose.check_model(cache_dir=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert c.status == "warn" and "HF_HUB_OFFLINE" in c.detail and "unset" in c.fix


def test_model_cached(tmp_path):
    snapshot = hf_cache(tmp_path, with_unet=True)
    c = diagnose.check_model(cache_dir=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert c.status == "ok" and str(snapshot) in c.detail


def test_model_partly_cached(tmp_path):
    hf_cache(tmp_path, with_unet=False)
    c = diagnose.check_model(cache_dir=tmp_path, env={})
    assert c.status == "warn" and "partly" in c.detail


def test_model_local_folder(tmp_path):
    assert diagnose.check_model(str(tmp_path), env={}).status == "warn"
    put(tmp_path, "model_index.json", "{}")
    assert diagnose.check_model(str(tmp_path), env={}).status == "ok"


# --- audio, watched folder ----------------------------------------------------------------


def test_audio_without_portaudio():
    c = diagnose.check_audio(
        fake_import({}, {"sounddevice": OSError("PortAudio library not found")})
    )
    assert c.status == "warn" and "libportaudio2" in c.fix and "--no-audio" in c.fix


def test_audio_without_output_device():
    def query_devices(kind=None):
        raise RuntimeError("Error querying device -1")

    sd = types.SimpleNamespace(_libname="libportaudio.so.2", query_devices=query_devices)
    c = diagnose.check_audio(fake_import({"sounddevice": sd}))
    assert c.status == "warn" and "no default output" in c.detail and "--no-audio" in c.fix


def test_audio_default_output():
    kinds = []

    def query_devices(kind=None):
        kinds.append(kind)
        return {"name": "pipewire", "default_samplerate": 48000.0}

    sd = types.SimpleNamespace(_libname="libportaudio.so.2", query_devices=query_devices)
    c = diagnose.check_audio(fake_import({"sounddevice": sd}))
    assert c.status == "ok" and "pipewire (48000 Hz)" in c.detail and kinds == ["output"]


def test_watched_folder_writable_leaves_nothing_behind(tmp_path):
    c = diagnose.check_watched_folder(tmp_path)
    assert (c.status, c.required) == ("ok", True)
    assert list(tmp_path.iterdir()) == []


def test_watched_folder_missing_is_created_then_removed(tmp_path):
    c = diagnose.check_watched_folder(tmp_path / "a" / "b")
    assert c.status == "ok" and "does not exist yet" in c.detail
    assert list(tmp_path.iterdir()) == []


def test_watched_folder_under_a_file_fails(tmp_path):
    # A path below a regular file cannot be created even by root.
    (tmp_path / "file").write_text("")
    c = diagnose.check_watched_folder(tmp_path / "file" / "watched")
    assert (c.status, c.required) == ("fail", True)
    assert "--out" in c.fix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only folder")
def test_watched_folder_read_only_fails(tmp_path):
    tmp_path.chmod(0o500)
    try:
        assert diagnose.check_watched_folder(tmp_path).status == "fail"
    finally:
        tmp_path.chmod(0o700)


def test_exit_code_follows_failures():
    assert diagnose.exit_code([Check("a", "ok", ""), Check("b", "warn", "")]) == 0
    assert diagnose.exit_code([Check("a", "ok", ""), Check("b", "fail", "", required=True)]) == 1


# --- the command on this machine ---------------------------------------------------------

NAMES = [
    "python",
    "packages",
    "hid backend",
    "pads",
    "udev rules",
    "torch",
    "memory",
    "model",
    "audio",
    "watched folder",
]


def run_doctor_json(out: Path):
    result = CliRunner().invoke(main, ["doctor", "--json", "--out", str(out)])
    return result, json.loads(result.output)


def test_doctor_json_shape_and_exit_code(tmp_path):
    result, report = run_doctor_json(tmp_path / "watched")
    assert set(report) == {"ok", "exit_code", "checks"}
    assert [c["name"] for c in report["checks"]] == NAMES
    for c in report["checks"]:
        assert set(c) == {"name", "status", "detail", "fix", "required", "data"}
        assert c["status"] in ("ok", "warn", "fail")
        assert c["detail"]
        if c["status"] != "ok":
            assert c["fix"], c
        if c["status"] == "fail":
            assert c["required"], c
    failed = any(c["status"] == "fail" for c in report["checks"])
    assert result.exit_code == report["exit_code"] == int(failed)
    assert report["ok"] is (not failed)
    assert not (tmp_path / "watched").exists()


def test_doctor_fails_when_the_watched_folder_is_unwritable(tmp_path):
    (tmp_path / "file").write_text("")
    result, report = run_doctor_json(tmp_path / "file" / "watched")
    assert result.exit_code == 1 and report["ok"] is False
    (watched,) = [c for c in report["checks"] if c["name"] == "watched folder"]
    assert watched["status"] == "fail" and "--out DIR" in watched["fix"]


def test_doctor_table_for_humans(tmp_path):
    (tmp_path / "file").write_text("")
    result = CliRunner().invoke(main, ["doctor", "--out", str(tmp_path / "file" / "w")])
    assert result.exit_code == 1
    assert "watched folder" in result.output and "must fix" in result.output


def test_doctor_module_does_not_import_torch_up_front():
    code = (
        "import sys, riffpad.diagnose, riffpad.commands.doctor; "
        "print(sorted(m for m in ('torch', 'diffusers', 'sounddevice', 'huggingface_hub') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
