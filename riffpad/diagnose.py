"""The checks behind ``riffpad doctor``.

Each check returns a :class:`Check` and takes what it inspects (paths, a root directory,
a module or a probe function) as parameters, so tests hand it facts instead of a machine.
Heavy imports (torch, sounddevice, huggingface_hub) happen inside the check that needs them.

Must-have checks (``required=True``) fail the doctor run: without them riffpad cannot run at
all. Pads, udev rules, audio and the model cache only warn: ``--replay`` plays a capture
without a pad, ``--no-audio`` writes clips without speakers, and the model downloads itself.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from riffpad import DEFAULT_MODEL

Status = Literal["ok", "warn", "fail"]

MIN_PYTHON = (3, 10)
PACKAGES = (
    "torch",
    "diffusers",
    "transformers",
    "hidapi",
    "numpy",
    "sounddevice",
    "soundfile",
)
# Stable Diffusion 1.5's UNet + VAE + CLIP text encoder hold 1.066 B parameters (counted
# on the meta device), i.e. 4.26 GB in float32: what the first run downloads and holds.
MODEL_GB = 4.3
# Below this much free RAM a CPU render (fp32 weights + activations) risks swapping.
MIN_FREE_RAM_GB = 6.0
UDEV_FIX = 'sudo "$(command -v riffpad)" udev install   (then re-plug the controller)'


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""
    required: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def exit_code(checks: Iterable[Check]) -> int:
    """1 when a check failed (only must-have checks fail), else 0."""
    return int(any(c.status == "fail" for c in checks))


# --- Python and packages -------------------------------------------------------------


def check_python(version: Sequence[int] = sys.version_info[:3]) -> Check:
    text = ".".join(str(v) for v in version[:3])
    if tuple(version[:2]) >= MIN_PYTHON:
        return Check("python", "ok", f"Python {text} ({sys.executable})", required=True)
    need = ".".join(map(str, MIN_PYTHON))
    return Check(
        "python",
        "fail",
        f"Python {text} is too old; riffpad needs >= {need}",
        f"install Python >= {need} and create the venv with it: python3 -m venv .venv",
        required=True,
    )


def check_packages(
    version_of: Callable[[str], str] | None = None,
    packages: Sequence[str] = PACKAGES,
) -> Check:
    import importlib.metadata  # here: 15 ms that every `riffpad` start would pay

    from riffpad import __version__

    version_of = version_of or importlib.metadata.version

    found = {"riffpad": __version__}
    missing = []
    for name in packages:
        try:
            found[name] = version_of(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    detail = ", ".join(f"{k} {v}" for k, v in found.items())
    if missing:
        return Check(
            "packages",
            "fail",
            f"missing: {', '.join(missing)}; found {detail}",
            f"pip install {' '.join(missing)}   (or reinstall riffpad: pip install .)",
            required=True,
            data={"versions": found, "missing": missing},
        )
    return Check("packages", "ok", detail, required=True, data={"versions": found})


# --- HID -------------------------------------------------------------------------------


def check_hid_backend(import_module: Callable[[str], Any] = importlib.import_module) -> Check:
    """riffpad talks to the pad through hidapi's ``hidraw`` module (the kernel's hidraw)."""
    try:
        hidraw = import_module("hidraw")
        where = getattr(hidraw, "__file__", "?")
        return Check("hid backend", "ok", f"hidapi hidraw backend ({where})", required=True)
    except ImportError as exc:
        error = exc
    try:
        import_module("hid")
        only_hid = True
    except ImportError:
        only_hid = False
    if only_hid:
        detail = f"only hidapi's libusb backend `hid` imports; `hidraw` does not ({error})"
    else:
        detail = f"hidapi is not importable ({error})"
    fix = (
        "pip install --force-reinstall hidapi   (the Linux wheel has both `hid` and `hidraw`;"
        " a source build needs libudev-dev); Bluetooth pads are only reachable through hidraw"
    )
    if "libudev" in str(error):
        fix = "sudo apt-get install libudev1   (hidraw enumerates through libudev)"
    return Check("hid backend", "fail", detail, fix, required=True)


@dataclass(frozen=True)
class FoundPad:
    """What the doctor needs from ``riffpad.pad.device.PadInfo``."""

    path: str
    transport: str
    model: str


def enumerate_pads() -> list[FoundPad]:
    """Pads as the device layer finds them (the same filtering the instrument uses)."""
    from riffpad.pad.device import enumerate_pads as device_enumerate

    return [FoundPad(_text(p.path), _text(p.transport), _text(p.model)) for p in device_enumerate()]


def _text(value: Any) -> str:
    """bytes paths and str enums (Transport.USB) as plain text."""
    value = getattr(value, "value", value)
    return value.decode() if isinstance(value, bytes) else str(value)


def check_pads(
    enumerate_fn: Callable[[], Sequence[FoundPad]] = enumerate_pads,
    access: Callable[[str, int], bool] = os.access,
    is_root: bool | None = None,
    exists: Callable[[str], bool] = os.path.exists,
) -> Check:
    if is_root is None:
        is_root = os.geteuid() == 0
    try:
        pads = list(enumerate_fn())
    except Exception as exc:  # any backend failure is a finding, not a crash
        return Check(
            "pads",
            "warn",
            f"could not list HID devices: {exc}",
            "check the hid backend line above; `riffpad devices` shows the same list",
        )
    if not pads:
        return Check(
            "pads",
            "warn",
            "no DualSense or DualSense Edge found",
            "plug it in with a USB data cable, or pair it over Bluetooth (see README: "
            "Pairing over Bluetooth); `riffpad --replay FILE` plays without a pad",
        )
    lines, denied, gone = [], [], []
    for pad in pads:
        if not exists(pad.path):
            state = "node gone (unplugged?)"
            gone.append(pad.path)
        elif access(pad.path, os.R_OK | os.W_OK):
            state = "rw ok"
        else:
            state = "no access"
            denied.append(pad.path)
        lines.append(f"{pad.model} {pad.transport} {pad.path}: {state}")
    detail = "; ".join(lines)
    if is_root:
        detail += " (running as root: a normal user may still lack access)"
    data = {"pads": [asdict(p) for p in pads], "denied": denied, "gone": gone}
    if gone and not denied:
        return Check(
            "pads",
            "warn",
            detail,
            "re-plug or reconnect the pad, then run riffpad doctor again",
            data=data,
        )
    if denied:
        return Check(
            "pads",
            "warn",
            f"permission denied: {detail}",
            UDEV_FIX,
            data=data,
        )
    return Check("pads", "ok", detail, data=data)


# --- udev rules ------------------------------------------------------------------------


def check_udev_rules(root: Path = Path("/"), user_groups: Iterable[str] | None = None) -> Check:
    """Are riffpad's rules (or another DualSense rule) where udev reads them, and current?"""
    from riffpad.commands.udev import RULES_DIRS, RULES_NAME, group_of, is_riffpad_rules

    ours = [root / d / RULES_NAME for d in RULES_DIRS if (root / d / RULES_NAME).is_file()]
    if ours:
        path = ours[0]  # the first in precedence order is the one udev uses
        text = path.read_text(encoding="utf-8", errors="replace")
        if not is_riffpad_rules(text):
            return Check(
                "udev rules",
                "warn",
                f"{path} differs from the rules shipped with this riffpad",
                UDEV_FIX + " rewrites it",
                data={"path": str(path)},
            )
        group = group_of(text)
        if group is None:
            return Check("udev rules", "ok", f"installed: {path}", data={"path": str(path)})
        if user_groups is None:
            user_groups = _current_groups()
        if group not in set(user_groups):
            return Check(
                "udev rules",
                "warn",
                f"installed for group {group} ({path}), but you are not in group {group}",
                f"sudo usermod -aG {group} $USER, then log out and in again",
                data={"path": str(path), "group": group},
            )
        return Check(
            "udev rules",
            "ok",
            f"installed for group {group}: {path}",
            data={"path": str(path), "group": group},
        )
    others = other_pad_rules(root)
    if others:
        names = ", ".join(str(p) for p in others)
        return Check(
            "udev rules",
            "ok",
            f"riffpad's rules not installed; the DualSense is covered by {names}",
            data={"others": [str(p) for p in others]},
        )
    return Check(
        "udev rules",
        "warn",
        "no udev rule gives you access to a DualSense (looked in "
        f"{', '.join(str(root / d) for d in RULES_DIRS)})",
        UDEV_FIX,
    )


def other_pad_rules(root: Path) -> list[Path]:
    """Rule files from others (Steam, game-devices-udev, pydualsense) that open hidraw to the
    DualSense for the local user or a group, and that sort before 73-seat-late.rules when
    they rely on uaccess."""
    found = []
    for d in _rule_dirs(root):
        for path in sorted(d.glob("*.rules")):
            try:
                text = path.read_text(encoding="utf-8", errors="replace").lower()
            except OSError:
                continue
            covers = "hidraw" in text and "054c" in text and "0ce6" in text
            grants = "uaccess" in text or "group=" in text or "mode=" in text
            late = "uaccess" in text and path.name >= "73-seat-late.rules"
            if covers and grants and not late:
                found.append(path)
    return found


def _rule_dirs(root: Path) -> list[Path]:
    from riffpad.commands.udev import RULES_DIRS

    return [root / d for d in RULES_DIRS if (root / d).is_dir()]


def _current_groups() -> list[str]:
    import grp

    names = []
    for gid in {os.getgid(), *os.getgroups()}:
        try:
            names.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return names


# --- torch, memory, model ----------------------------------------------------------------


def check_torch(import_module: Callable[[str], Any] = importlib.import_module) -> Check:
    try:
        torch = import_module("torch")
    except Exception as exc:  # ImportError, or OSError from a broken CUDA library
        return Check(
            "torch",
            "fail",
            f"torch does not import: {exc}",
            "pip install torch   (CPU-only: pip install torch --index-url "
            "https://download.pytorch.org/whl/cpu)",
            required=True,
        )
    version = getattr(torch, "__version__", "?")
    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
        free, total = torch.cuda.mem_get_info(index)
        return Check(
            "torch",
            "ok",
            f"torch {version}, CUDA: {name}, {free / 2**30:.1f} of {total / 2**30:.1f} GiB free",
            required=True,
            data={"device": "cuda", "name": name, "free_bytes": free, "total_bytes": total},
        )
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return Check(
            "torch", "ok", f"torch {version}, Apple MPS", required=True, data={"device": "mps"}
        )
    return Check(
        "torch",
        "warn",
        f"torch {version}, CPU only: renders work but are slow",
        "use an NVIDIA GPU with a CUDA build of torch; on CPU lower the steps (L2 released) "
        "and keep clips short",
        required=True,
        data={"device": "cpu"},
    )


def check_memory(meminfo: Path = Path("/proc/meminfo")) -> Check:
    try:
        fields = {
            line.split(":")[0]: int(line.split()[1]) * 1024
            for line in meminfo.read_text().splitlines()
            if line.split(":")[0] in ("MemTotal", "MemAvailable")
        }
        free, total = fields["MemAvailable"], fields["MemTotal"]
    except (OSError, KeyError, ValueError, IndexError) as exc:
        return Check("memory", "warn", f"cannot read free memory from {meminfo}: {exc}")
    detail = f"{free / 1e9:.1f} GB free of {total / 1e9:.1f} GB"
    data = {"available_bytes": free, "total_bytes": total}
    if free < MIN_FREE_RAM_GB * 1e9:
        return Check(
            "memory",
            "warn",
            f"{detail}; the model alone needs about {MODEL_GB} GB",
            "close other programs, or render on a GPU",
            data=data,
        )
    return Check("memory", "ok", detail, data=data)


def check_model(
    model: str = DEFAULT_MODEL,
    cache_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> Check:
    """Is the model on disk already? Never touches the network."""
    env = os.environ if env is None else env
    local = Path(model).expanduser()
    if local.is_dir():
        if (local / "model_index.json").is_file():
            return Check("model", "ok", f"local model folder {local}")
        return Check(
            "model",
            "warn",
            f"{local} has no model_index.json (not a diffusers model folder)",
            f"pass a diffusers folder, or the hub name {DEFAULT_MODEL}",
        )
    from huggingface_hub import try_to_load_from_cache

    index = try_to_load_from_cache(model, "model_index.json", cache_dir=cache_dir)
    if isinstance(index, str):
        snapshot = Path(index).parent
        weights = list((snapshot / "unet").glob("diffusion_pytorch_model*"))
        if weights:
            return Check("model", "ok", f"{model} cached in {snapshot}")
        return Check(
            "model",
            "warn",
            f"{model} only partly cached in {snapshot} (no UNet weights)",
            "run riffpad once online to finish the download",
        )
    offline = env.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
    if offline:
        return Check(
            "model",
            "warn",
            f"{model} is not cached and HF_HUB_OFFLINE is set: it cannot be downloaded",
            "unset HF_HUB_OFFLINE for the first run, or pass a local model folder",
        )
    return Check(
        "model",
        "warn",
        f"{model} not cached: the first run downloads about {MODEL_GB} GB",
        "nothing to do if you are online: the first riffpad run fetches it into the "
        "Hugging Face cache (HF_HOME moves it)",
    )


# --- audio, watched folder -------------------------------------------------------------


def check_audio(import_module: Callable[[str], Any] = importlib.import_module) -> Check:
    try:
        sd = import_module("sounddevice")
    except OSError as exc:  # sounddevice raises OSError when libportaudio is missing
        return Check(
            "audio",
            "warn",
            f"PortAudio library not found: {exc}",
            "sudo apt-get install libportaudio2; or play with --no-audio (clips still land "
            "in the watched folder)",
        )
    except ImportError as exc:
        return Check("audio", "warn", f"sounddevice missing: {exc}", "pip install sounddevice")
    lib = getattr(sd, "_libname", "PortAudio")
    try:
        device = sd.query_devices(kind="output")
    except Exception as exc:  # PortAudioError or ValueError: no default output device
        return Check(
            "audio",
            "warn",
            f"{lib} loaded, but there is no default output device ({exc})",
            "connect speakers/headphones or start PipeWire/PulseAudio in your session; "
            "or play with --no-audio",
        )
    name = device.get("name", "?") if isinstance(device, dict) else str(device)
    rate = device.get("default_samplerate") if isinstance(device, dict) else None
    detail = f"default output: {name}" + (f" ({rate:.0f} Hz)" if rate else "") + f", {lib}"
    return Check("audio", "ok", detail, data={"device": name})


def check_watched_folder(folder: Path) -> Check:
    """Create and remove a temp file in ``folder`` (created if missing, then removed again)."""
    folder = Path(folder)
    created: list[Path] = []
    try:
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        for p in reversed(missing):
            p.mkdir()
            created.append(p)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".riffpad-doctor-"):
            pass
    except OSError as exc:
        return Check(
            "watched folder",
            "fail",
            f"cannot write clips to {folder}: {exc.strerror or exc}",
            "choose a folder you can write with --out DIR, or fix its owner: "
            f'sudo chown "$USER" {folder}',
            required=True,
        )
    finally:
        for p in reversed(created):
            try:
                p.rmdir()
            except OSError:
                pass
    note = " (does not exist yet; riffpad creates it)" if created else ""
    return Check("watched folder", "ok", f"{folder} is writable{note}", required=True)


def run_all(out: Path, model: str = DEFAULT_MODEL) -> list[Check]:
    return [
        check_python(),
        check_packages(),
        check_hid_backend(),
        check_pads(),
        check_udev_rules(),
        check_torch(),
        check_memory(),
        check_model(model),
        check_audio(),
        check_watched_folder(out),
    ]
