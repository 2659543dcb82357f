"""Locate data shipped with riffpad (mappings, udev rules, demo capture).

In a wheel they live in ``riffpad/_data``; in a source checkout (editable
install or ``PYTHONPATH=.``) they are the top-level ``mappings/`` and ``udev/``.
"""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent

# `--replay demo`: a short performance shipped with the package (tests/data/make_demo.py),
# for every command that takes --replay (the instrument, monitor, calibrate).
DEMO_NAME = "demo"
DEMO_CAPTURE = _PKG / "data" / "demo.jsonl"


def replay_path(name: str | os.PathLike) -> str | os.PathLike:
    """A capture to replay: the name ``demo`` is the shipped demo, unless a file of that
    name exists here (then that file: a path the player typed always wins)."""
    if os.fspath(name) == DEMO_NAME and not os.path.exists(name):
        return DEMO_CAPTURE
    return name


def no_pad_hint(command: str) -> str:
    """What to try without a pad, for ``riffpad COMMAND``."""
    if command == "record":
        return "No pad? See what a pad sends with a recorded one: riffpad monitor --replay demo"
    return f"No pad? Try it with a recorded performance: riffpad {command} --replay demo"


def data_dir(name: str) -> Path:
    """Return the directory holding shipped data ``name`` ("mappings", "udev", ...)."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"riffpad data folder {name!r} is missing from this installation")


def data_file(name: str, filename: str) -> Path:
    path = data_dir(name) / filename
    if not path.is_file():
        raise FileNotFoundError(f"riffpad data file {name}/{filename} is missing")
    return path
