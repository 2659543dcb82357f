"""Prompt banks: the prompts A and B and the ones D-pad left/right walk through.

A prompt bank is either TOML::

    [[prompt]]
    text = "church bells on sunday"
    colour = "#ffb000"      # optional lightbar colour; else one derived from the text

or plain text, one prompt per line (blank lines and lines starting with ``#`` skipped).
The first prompt is A, the second B; D-pad left/right walk prompt B through the bank.

The config file (with prompt_a, prompt_b, prompts keys) is read by ``settings.py``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from riffpad.instrument.feedback import RGB, parse_colour, prompt_colour
from riffpad.instrument.settings import toml_error

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_PROMPTS = ("jazz piano", "dub bass")


class PromptFileError(ValueError):
    """A prompt bank that cannot be used; names the file (and line)."""


@dataclass(frozen=True)
class Prompt:
    text: str
    colour: RGB

    @classmethod
    def of(cls, text: str, colour: str | None = None) -> Prompt:
        return cls(text, parse_colour(colour) if colour else prompt_colour(text))


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
            raise PromptFileError(toml_error(path, e)) from None
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
