"""Loading the test configuration must not pull in torch, diffusers or transformers: the
torch-free tests would otherwise pay seconds of import time each run."""

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "diffusers", "transformers")


def test_conftest_imports_no_torch():
    script = (
        "import sys, runpy\n"
        f"runpy.run_path({str(TESTS / 'conftest.py')!r})\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=TESTS, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
