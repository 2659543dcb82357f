"""The one way benchmarks find their imports. Run them from the repository root as
``python benchmarks/NAME.py``; each does ``import _paths`` first (its own folder is on
sys.path as the script's), which puts the repository root first on sys.path once. Then
``riffpad`` is this checkout's, and the tests' shared fakes and builders import as
``tests.support`` (the same code the tests use, never a copy)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if sys.path[0] != str(ROOT):
    sys.path.insert(0, str(ROOT))
