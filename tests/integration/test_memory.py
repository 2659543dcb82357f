import platform
import subprocess
import sys
from pathlib import Path

import pytest

# Fill the heap with 100k blocks of 2 kB (glibc's heap, below its mmap threshold), keep one
# block above them so glibc cannot shrink the heap from the top, free the rest: the pages
# stay in the process until malloc_trim hands them back.
SCRIPT = r"""
import sys
from pathlib import Path
from riffpad.memory import release_free_memory

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

blocks = [bytearray(2000) for _ in range(100_000)]
pin = bytearray(2000)
del blocks
held = rss()
assert release_free_memory()
print(held, rss())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_heap_memory_goes_back_to_the_system():
    env_path = str(Path(__file__).resolve().parents[2])
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path},
        check=True,
    ).stdout
    held, after = map(float, out.split())
    assert held - after > 100  # MB: most of the 200 MB freed
