"""``riffpad serve`` on Ray Serve, end to end: runs tests/netns_serve.py inside a private
network namespace that holds only loopback (``unshare -n``; ``ip link set lo up``), so no
test traffic can leave the machine: Ray binds some ports on every interface and resolves
"localhost" to the machine's own address. One Ray start serves the whole inner suite."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INNER = Path(__file__).with_name("netns_serve.py")


def _namespace_problem() -> str | None:
    try:
        r = subprocess.run(
            ["unshare", "-n", "sh", "-c", "ip link set lo up"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare -n is not available here ({exc})"
    if r.returncode != 0:
        return f"unshare -n failed (needs root or user namespaces): {r.stderr.strip()}"
    return None


@pytest.mark.slow
def test_serve_suite_in_a_private_network_namespace():
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray Serve is not installed: pip install -e '.[serve]'")
    problem = _namespace_problem()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the serve tests: {problem}")
        pytest.skip(f"no private network namespace for the Ray tests: {problem}")
    env = dict(os.environ, RIFFPAD_NETNS="1", PYTHONPATH=str(ROOT))
    script = 'ip link set lo up && exec "$0" -m pytest "$1" -q -p no:cacheprovider -x -rs'
    r = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, sys.executable, str(INNER)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    out = r.stdout + r.stderr
    print(out[-6000:])
    assert r.returncode == 0, out[-6000:]
    assert " passed" in out and " skipped" not in out, out[-3000:]
