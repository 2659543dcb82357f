"""Where the repository's files are, for tests wherever they sit under tests/."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS_DIR = ROOT / "mappings"
DATA = ROOT / "tests" / "data"
