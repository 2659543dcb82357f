"""The instrument's settings: one table that makes the command-line options, the config
file's keys and the settings object.

Each ``Settings`` field declared with ``option(...)`` is a ``--flag`` of ``riffpad`` (see
``riffpad.commands.options.settings_options``) and, unless ``config=False``, a key of the
config file ``<user config dir>/riffpad/config.toml`` (platformdirs), e.g.::

    prompt_a = "jazz piano"
    prompt_b = "dub bass"
    prompts = "~/music/prompts.toml"   # a bank (overrides prompt_a/prompt_b)
    model = "riffusion/riffusion-model-v1"
    out = "~/music/riffpad"
    torch_device = "cuda"
    audio_device = "pulse"
    trigger_feel = true

Command-line options win over the config file, which wins over the defaults. Adding an
option is one field here; the wiring (``instrument/wiring.py``) reads it.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from riffpad.engine.api import engine_url
from riffpad.tempo.bars import check_bpm

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class SettingsError(ValueError):
    """A config file or option value that cannot be used; names the file (and line)."""


# --- the two device words: --device is the pad, --torch-device the compute device ---------

_TORCH_DEVICE = re.compile(r"(cpu|cuda|mps|xpu)(:\d+)?")


def torch_device(value: str) -> str:
    """A torch device name (cpu, cuda, cuda:1, mps, xpu); a pad node is told where it goes."""
    if _TORCH_DEVICE.fullmatch(value):
        return value
    if "/" in value or value.startswith("hidraw"):
        raise ValueError(
            f"{value!r} is a pad, not a compute device: give it to --device; "
            "--torch-device takes cpu, cuda, cuda:N, mps or xpu"
        )
    raise ValueError(f"{value!r} is not a compute device: expected cpu, cuda, cuda:N, mps or xpu")


def pad_device(value: str) -> str:
    """A pad's hidraw node (a path such as /dev/hidraw3); a torch device name is refused."""
    if _TORCH_DEVICE.fullmatch(value):
        raise ValueError(
            f"{value!r} is a compute device, not a pad: use --torch-device {value}; "
            "--device takes the pad's hidraw node (see riffpad devices)"
        )
    if "/" not in value and not value.startswith("hidraw"):
        raise ValueError(
            f"{value!r} is not a hidraw node: expected a path such as /dev/hidraw3 "
            "(see riffpad devices)"
        )
    return value


# --- jam tempo ---------------------------------------------------------------------------------


def beats_per_bar(value: float) -> int:
    if value != int(value) or not 1 <= value <= 16:
        raise ValueError(f"a whole number of beats from 1 to 16, not {value:g}")
    return int(value)


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opt:
    """How a setting appears on the command line and in the config file."""

    flag: str
    help: str
    metavar: str | None = None
    config: bool = True  # also a config-file key
    kinds: tuple[type, ...] = (str,)  # accepted config-file value types
    is_flag: bool = False
    number: bool = False  # a float on the command line
    path: bool = False  # a file path (click.Path(dir_okay=False))
    show_default: bool = False
    check: Any = None  # str -> value, raises ValueError with the reason (device words)


def option(default: Any, flag: str, help: str, **kw: Any) -> Any:
    if kw.get("is_flag"):
        kw.setdefault("kinds", (bool,))
    if kw.get("number"):
        kw.setdefault("kinds", (int, float))
    return field(default=default, metadata={"option": Opt(flag, help, **kw)})


@dataclass
class Settings:
    """What the instrument is asked to do (options, config file, defaults)."""

    device: str | None = option(
        None, "--device", "hidraw node of the pad (default: the first found).",
        metavar="PATH", config=False, check=pad_device,
    )  # fmt: skip
    model: str | None = option(
        None, "--model", "Model folder or Hugging Face id.", metavar="PATH|ID"
    )
    revision: str | None = option(
        None, "--revision", "Hub model branch, tag, commit or refs/pr/N.", metavar="REV"
    )
    torch_device: str | None = option(
        None, "--torch-device", "torch device: cpu, cuda, cuda:1, mps.",
        metavar="DEV", check=torch_device,
    )  # fmt: skip
    scheduler: str | None = option(
        None, "--scheduler", "Diffusers scheduler (default: the model's).",
        metavar="NAME", config=False,
    )  # fmt: skip
    out: str = option(
        "watched", "--out", "Watched folder the takes are written to.",
        metavar="DIR", show_default=True,
    )  # fmt: skip
    prompt_a: str | None = option(
        None, "--prompt-a", "Prompt A (right stick left).", metavar="TEXT"
    )
    prompt_b: str | None = option(
        None, "--prompt-b", "Prompt B (right stick right).", metavar="TEXT"
    )
    prompts: str | None = option(
        None, "--prompts", "Prompt bank: TOML [[prompt]] tables or one prompt per line.",
        metavar="FILE",
    )  # fmt: skip
    no_audio: bool = option(
        False, "--no-audio", "Do not play takes (files only).", is_flag=True, config=False
    )
    audio_device: str | int | None = option(
        None, "--audio-device", "sounddevice output (default: system's).",
        metavar="NAME|N", kinds=(str, int),
    )  # fmt: skip
    loop: bool = option(
        False, "--loop", "Loop the last take until the next one arrives.", is_flag=True
    )
    replay: str | None = option(
        None, "--replay",
        "Play a capture through the instrument instead of a live pad; "
        "'demo' plays the shipped demo (a file named demo here wins).",
        metavar="CAPTURE", path=True, config=False,
    )  # fmt: skip
    capture_output: str | None = option(
        None, "--capture-output", "Log every output report sent to the pad (JSON Lines).",
        metavar="FILE", path=True, config=False,
    )  # fmt: skip
    mapping: str | None = option(
        None, "--mapping", "Control mapping (default: mappings/dualsense).", metavar="FILE"
    )
    calibration: str | None = option(
        None, "--calibration", "Calibration file (default: the pad's).", metavar="FILE"
    )
    seed_image: str | None = option(
        None, "--seed-image", "Seed image (default: og_beat).", metavar="NAME|FILE"
    )
    trigger_feel: bool = option(
        False, "--trigger-feel", "L2 resists more the more steps it asks.", is_flag=True
    )
    jam: bool = option(
        False, "--jam", "Jam at once: endless music that follows the pad.", is_flag=True
    )
    record_audio: str | None = option(
        None, "--record-audio", "Write all the jam plays to one WAV (with or without audio).",
        metavar="FILE", path=True, config=False,
    )  # fmt: skip
    lookahead: float = option(
        1.0, "--lookahead", "Jam: clips rendered ahead of the one playing.",
        metavar="CLIPS", number=True, show_default=True,
    )  # fmt: skip
    crossfade: float = option(
        50.0, "--crossfade", "Jam: milliseconds each clip overlaps the next (0-1000).",
        metavar="MS", number=True, show_default=True,
    )  # fmt: skip
    bpm: float | None = option(
        None, "--bpm", "Jam: fixed tempo (20-400), clips fitted to whole bars (default: free).",
        metavar="N", number=True, check=check_bpm,
    )  # fmt: skip
    beats_per_bar: int = option(
        4, "--beats-per-bar", "Jam: beats in a bar (1-16).",
        metavar="N", number=True, show_default=True, check=beats_per_bar,
    )  # fmt: skip
    link: bool = option(
        False, "--link", "Jam: follow an Ableton Link session (extra riffpad[link]).",
        is_flag=True,
    )  # fmt: skip
    midi_clock: str | None = option(
        None, "--midi-clock", "Jam: follow MIDI clock from this input (extra riffpad[midi]).",
        metavar="PORT",
    )  # fmt: skip
    midi_out: str | None = option(
        None, "--midi-out", "Notes for fire/promote; clock out with --bpm (riffpad[midi]).",
        metavar="PORT",
    )  # fmt: skip
    engine: str | None = option(
        None, "--engine", "Render on a riffpad serve (or Riffusion) server at this URL.",
        metavar="URL", check=engine_url,
    )  # fmt: skip
    compile: bool = option(
        False, "--compile", "torch.compile the model (CUDA): a minute to start, faster takes.",
        is_flag=True,
    )  # fmt: skip
    # Not options of their own:
    live: bool | None = None  # --no-live gives False; None: the rich Live view on a TTY

    def __post_init__(self) -> None:
        if isinstance(self.audio_device, str) and self.audio_device.isdigit():
            self.audio_device = int(self.audio_device)  # a sounddevice index


def options() -> list[tuple[str, Opt]]:
    """(field name, Opt) of every option, in declaration order."""
    return [
        (f.name, f.metadata["option"])
        for f in dataclasses.fields(Settings)
        if "option" in f.metadata
    ]


CONFIG_KEYS: dict[str, tuple[type, ...]] = {name: o.kinds for name, o in options() if o.config}


# --- the config file --------------------------------------------------------------------------


def config_path() -> Path:
    return Path(platformdirs.user_config_dir("riffpad")) / "config.toml"


def toml_error(path: Path, err: tomllib.TOMLDecodeError) -> str:
    """``FILE:LINE: message`` (tomllib only puts the line in its message before 3.14)."""
    text = str(err)
    m = re.search(r" \(at line (\d+), column \d+\)$", text)
    if m:
        return f"{path}:{m.group(1)}: {text[: m.start()]}"
    return f"{path}: {text}"


def load_config(path: Path | str | None = None) -> dict[str, Any]:
    """The config file as a dict of known keys; {} when the default file does not exist."""
    explicit = path is not None
    path = Path(path) if path is not None else config_path()
    if not path.is_file():
        if explicit:
            raise SettingsError(f"{path}: no such config file")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(toml_error(path, e)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsError(f"{path}: {e}") from None
    out = {}
    for key, value in data.items():
        if key not in CONFIG_KEYS:
            raise SettingsError(f"{path}: unknown key {key!r} (known: {', '.join(CONFIG_KEYS)})")
        kinds = CONFIG_KEYS[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise SettingsError(f"{path}: {key} has the wrong type ({type(value).__name__})")
        check = dict(options())[key].check
        if check is not None:
            try:
                value = check(value)
            except ValueError as e:
                raise SettingsError(f"{path}: {key}: {e}") from None
        out[key] = value
    return out
