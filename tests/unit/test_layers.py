"""The house's floors: lower layers never import upper ones (read from the source, so a
lazy import inside a function counts too)."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "riffpad"
UPPER = ("riffpad.instrument", "riffpad.jam", "riffpad.commands", "riffpad.cli", "riffpad.serve")


def imports(package: str) -> list[tuple[str, str]]:
    """(file, imported module) of every import under riffpad/<package>/."""
    out = []
    for path in sorted((PKG / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.append((path.name, node.module))
            elif isinstance(node, ast.Import):
                out.extend((path.name, alias.name) for alias in node.names)
    return out


@pytest.mark.parametrize("package", ["pad", "controls", "audio", "engine", "tempo"])
def test_lower_floors_import_nothing_from_the_floors_above(package):
    bad = [(f, m) for f, m in imports(package) if m.startswith(UPPER)]
    assert bad == []


def test_the_jam_sees_the_instrument_only_through_its_host_interface():
    bad = [
        (f, m)
        for f, m in imports("jam")
        if m.startswith(("riffpad.instrument", "riffpad.commands", "riffpad.cli", "riffpad.serve"))
    ]
    assert bad == []
