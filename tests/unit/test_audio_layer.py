"""riffpad.audio is a lower layer: it imports nothing above it, and the audio facts live in
it once (no second sample rate, hop or suffix list elsewhere in riffpad/)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AUDIO = ROOT / "riffpad" / "audio"
ABOVE = ("riffpad.instrument", "riffpad.jam", "riffpad.commands", "riffpad.cli", "riffpad.engine")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_audio_imports_nothing_above_it():
    offenders = {
        f"{path.name}: {name}"
        for path in AUDIO.glob("*.py")
        for name in imported_modules(path)
        if name.startswith(ABOVE)
    }
    assert not offenders


def test_the_output_side_loads_without_torch():
    code = (
        "import sys, riffpad.audio.player, riffpad.audio.recorder, riffpad.audio.clip;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_sample_rate_and_hop_are_defined_once():
    pattern = re.compile(r"^(SAMPLE_RATE|HOP|AUDIO_SUFFIXES)\s*=", re.M)  # module level
    where = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "riffpad").rglob("*.py")
        if pattern.search(p.read_text())
    )
    assert where == ["riffpad/audio/clip.py", "riffpad/audio/files.py"]
    from riffpad.audio import clip, params

    assert clip.HOP == params.SpectrogramParams().hop_length == 441
    assert clip.samples_for_width(512) == clip.CLIP_SAMPLES == 225351
    assert clip.width_for_samples(clip.CLIP_SAMPLES) == 512
