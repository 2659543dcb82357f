"""Prompt banks and the user's config file.

A prompt bank is either TOML::

    [[prompt]]
    text = "church bells on sunday"
    colour = "#ffb000"      # optional lightbar colour; else one derived from the text

or plain text, one prompt per line (blank lines and lines starting with ``#`` skipped).
The first prompt is A, the second B; D-pad left/right walk prompt B through the bank.

The config file is ``<user config dir>/riffpad/config.toml`` (platformdirs), e.g.::

    prompt_a = "jazz piano"
    prompt_b = "dub bass"
    prompts = "~/music/prompts.toml"   # a bank (overrides prompt_a/prompt_b)
    model = "riffusion/riffusion-model-v1"
    out = "~/music/riffpad"
    torch_device = "cuda"
    audio_device = "pulse"
    trigger_feel = true

Command-line options win over the config file, which wins over the defaults.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from riffpad.instrument.feedback import RGB, parse_colour, prompt_colour

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_PROMPTS = ("jazz piano", "dub bass")
CONFIG_KEYS = {
    "prompt_a": str,
    "prompt_b": str,
    "prompts": str,
    "model": str,
    "out": str,
    "torch_device": str,
    "audio_device": (str, int),
    "mapping": str,
    "calibration": str,
    "seed_image": str,
    "trigger_feel": bool,
    "loop": bool,
    "compile": bool,
    "jam": bool,
    "lookahead": (int, float),
    "crossfade": (int, float),
    "bpm": (int, float),
    "beats_per_bar": int,
}


class PromptFileError(ValueError):
    """A prompt bank or config file that cannot be used; names the file (and line)."""


@dataclass(frozen=True)
class Prompt:
    text: str
    colour: RGB

    @classmethod
    def of(cls, text: str, colour: str | None = None) -> Prompt:
        return cls(text, parse_colour(colour) if colour else prompt_colour(text))


def config_path() -> Path:
    return Path(platformdirs.user_config_dir("riffpad")) / "config.toml"


def _toml_error(path: Path, err: tomllib.TOMLDecodeError) -> PromptFileError:
    """``FILE:LINE: message`` (tomllib only puts the line in its message before 3.14)."""
    text = str(err)
    m = re.search(r" \(at line (\d+), column \d+\)$", text)
    if m:
        return PromptFileError(f"{path}:{m.group(1)}: {text[: m.start()]}")
    return PromptFileError(f"{path}: {text}")


def load_config(path: Path | None = None) -> dict:
    """The config file as a dict of known keys; {} when the default file does not exist."""
    explicit = path is not None
    path = Path(path) if explicit else config_path()
    if not path.is_file():
        if explicit:
            raise PromptFileError(f"{path}: no such config file")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise _toml_error(path, e) from None
    except (OSError, UnicodeDecodeError) as e:
        raise PromptFileError(f"{path}: {e}") from None
    out = {}
    for key, value in data.items():
        if key not in CONFIG_KEYS:
            raise PromptFileError(f"{path}: unknown key {key!r} (known: {', '.join(CONFIG_KEYS)})")
        kinds = CONFIG_KEYS[key] if isinstance(CONFIG_KEYS[key], tuple) else (CONFIG_KEYS[key],)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise PromptFileError(f"{path}: {key} has the wrong type ({type(value).__name__})")
        out[key] = value
    return out


def load_prompts(path: str | Path) -> list[Prompt]:
    """A prompt bank: TOML (``.toml``) or one prompt per line. At least two prompts."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PromptFileError(f"{path}: cannot read the prompt bank: {e}") from None
    prompts: list[Prompt] = []
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise _toml_error(path, e) from None
        entries = data.get("prompt")
        if not isinstance(entries, list):
            raise PromptFileError(f'{path}: expected [[prompt]] tables with text = "..."')
        for i, entry in enumerate(entries, 1):
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
                raise PromptFileError(f"{path}: prompt #{i} has no text")
            if not entry["text"].strip():
                raise PromptFileError(f"{path}: prompt #{i} is empty")
            try:
                prompts.append(Prompt.of(entry["text"].strip(), entry.get("colour")))
            except ValueError as e:
                raise PromptFileError(f"{path}: prompt #{i}: {e}") from None
    else:
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                prompts.append(Prompt.of(line))
    if len(prompts) < 2:
        raise PromptFileError(f"{path}: a prompt bank needs at least two prompts (A and B)")
    return prompts


def resolve_prompts(
    prompt_a: str | None, prompt_b: str | None, bank: str | Path | None
) -> list[Prompt]:
    """Bank first; then --prompt-a/--prompt-b replace its first two entries."""
    prompts = load_prompts(bank) if bank else [Prompt.of(t) for t in DEFAULT_PROMPTS]
    if prompt_a:
        prompts[0] = Prompt.of(prompt_a)
    if prompt_b:
        prompts[1] = Prompt.of(prompt_b)
    return prompts
