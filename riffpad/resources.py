"""Locate data shipped with riffpad (mappings, udev rules, demo capture).

In a wheel they live in ``riffpad/_data``; in a source checkout (editable
install or ``PYTHONPATH=.``) they are the top-level ``mappings/`` and ``udev/``.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


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
