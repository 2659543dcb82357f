"""The unit tests: pad, controls, mapping, calibration, audio maths, jam grid, tempo, takes...
They run in seconds and never load torch, diffusers or transformers (the model stack lives in
tests/integration). When a session runs only tests from this folder, it fails if one of them
was imported, naming the modules, so a heavy import cannot creep in unnoticed."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
HEAVY = ("torch", "diffusers", "transformers")


def pytest_sessionfinish(session, exitstatus):
    items = getattr(session, "items", None)
    if not items or not all(Path(str(item.path)).is_relative_to(HERE) for item in items):
        return
    loaded = [name for name in HEAVY if name in sys.modules]
    if loaded:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"tests/unit imported {', '.join(loaded)}: keep it torch-free")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
