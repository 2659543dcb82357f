"""``riffpad serve``'s option checks, which run before Ray is imported (no Ray needed)."""

import pytest
from click.testing import CliRunner

from riffpad.cli import main
from riffpad.commands.serve import is_loopback


@pytest.mark.parametrize(
    "host, loopback",
    [
        *[("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("localhost", True)],
        *[("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("gpu-box", False)],
    ],
)
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_public_bind_needs_a_good_token_file(tmp_path):
    r = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "--token-file" in r.output
    short = tmp_path / "t"
    short.write_text("abc\n")
    r = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--token-file", str(short)])
    assert r.exit_code == 2 and "at least 16 characters" in r.output
    r = CliRunner().invoke(main, ["serve", "--token-file", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "missing" in r.output
