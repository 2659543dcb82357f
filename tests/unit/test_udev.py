"""udev rules: their content, checked by udev's own parser where possible, and the CLI."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from riffpad.cli import main
from riffpad.commands import udev as udev_cmd
from riffpad.resources import data_file

REPO_RULES = Path(__file__).resolve().parents[2] / "udev" / udev_cmd.RULES_NAME
SEAT_LATE = "73-seat-late.rules"
_PAIR = re.compile(r'\s*([A-Za-z_]+(?:\{[^}]*\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(,|$)')


def parse_rule(line: str) -> list[tuple[str, str, str]]:
    """Split one udev rule line into (key, operator, value); every character must be used."""
    pairs, pos = [], 0
    while pos < len(line):
        m = _PAIR.match(line, pos)
        assert m, f"unparseable rule text at column {pos}: {line[pos:]!r}"
        pairs.append(m.group(1, 2, 3))
        pos = m.end()
    return pairs


def rules_of(text: str) -> list[dict[tuple[str, str], str]]:
    rules = []
    for line in udev_cmd.rule_lines(text):
        pairs = parse_rule(line)
        keys = [(k, op) for k, op, _ in pairs]
        assert len(keys) == len(set(keys)), f"repeated key in {line!r}"
        rules.append({(k, op): v for k, op, v in pairs})
    return rules


def pad_matches(rules: list[dict[tuple[str, str], str]]) -> set[tuple[str, str]]:
    """Which (transport, product) each rule selects; asserts the exact match forms."""
    found = set()
    for r in rules:
        assert r[("KERNEL", "==")] == "hidraw*", "rules must only touch hidraw nodes"
        if ("KERNELS", "==") in r:
            m = re.fullmatch(r"\*054C:([0-9A-F]{4})\*", r[("KERNELS", "==")])
            assert m, f"Bluetooth form must be *054C:PPPP* in upper-case hex: {r}"
            assert ("ATTRS{idVendor}", "==") not in r
            found.add(("bluetooth", m.group(1).lower()))
        else:
            assert r[("ATTRS{idVendor}", "==")] == "054c", "USB sysfs IDs are lower-case"
            product = r[("ATTRS{idProduct}", "==")]
            assert product == product.lower()
            found.add(("usb", product))
    return found


ALL_PADS = {("usb", "0ce6"), ("usb", "0df2"), ("bluetooth", "0ce6"), ("bluetooth", "0df2")}


def test_shipped_rules_match_both_pads_over_usb_and_bluetooth_for_the_local_user_only():
    text = REPO_RULES.read_text()
    rules = rules_of(text)
    assert len(rules) == 4
    assert pad_matches(rules) == ALL_PADS
    for r in rules:
        assert r[("MODE", "=")] == "0660"
        assert r[("TAG", "+=")] == "uaccess"
        assert not any(k in ("GROUP", "OWNER") for k, _ in r), r
    assert "0666" not in text and "0777" not in text


def test_rules_sort_before_73_seat_late_where_uaccess_is_applied():
    assert udev_cmd.RULES_NAME < SEAT_LATE
    # And against the rule files this machine really has: udev orders all directories'
    # files by name, so ours must land before seat-late among them.
    system = [p.name for d in ("/usr/lib/udev/rules.d", "/lib/udev/rules.d") for p in _ls(d)]
    if SEAT_LATE in system:
        ordered = sorted({*system, udev_cmd.RULES_NAME})
        assert ordered.index(udev_cmd.RULES_NAME) < ordered.index(SEAT_LATE)


def _ls(d: str) -> list[Path]:
    return list(Path(d).glob("*.rules")) if Path(d).is_dir() else []


def test_package_ships_the_same_rules_file():
    assert data_file("udev", udev_cmd.RULES_NAME).read_bytes() == REPO_RULES.read_bytes()
    assert udev_cmd.shipped_rules() == REPO_RULES.read_text()


def test_group_rules_use_group_and_0660_without_uaccess():
    text = udev_cmd.group_rules("plugdev")
    rules = rules_of(text)
    assert pad_matches(rules) == ALL_PADS
    for r in rules:
        assert r[("GROUP", "=")] == "plugdev"
        assert r[("MODE", "=")] == "0660"
        assert ("TAG", "+=") not in r
    assert "0666" not in text
    assert udev_cmd.group_of(text) == "plugdev"
    assert udev_cmd.group_of(udev_cmd.shipped_rules()) is None
    assert udev_cmd.is_riffpad_rules(text)
    assert not udev_cmd.is_riffpad_rules(text.replace("0df2", "0df3"))


@pytest.mark.parametrize("name", ["Plugdev", "a b", "x;rm", "", "-x", "a" * 33, 'g"'])
def test_bad_group_names_are_refused(name):
    result = CliRunner().invoke(main, ["udev", "install", "--print", "--group", name])
    assert result.exit_code == 2
    assert "not a valid group name" in result.output


# --- udev's own parser ------------------------------------------------------------------


# UDEVADM picks another udevadm, e.g. systemd >= 254 unpacked from a .deb:
# UDEVADM="env LD_LIBRARY_PATH=/x/usr/lib/x86_64-linux-gnu/systemd /x/bin/udevadm"
UDEVADM = shlex.split(os.environ.get("UDEVADM", "udevadm"))


def _udevadm_verify_available() -> bool:
    if shutil.which(UDEVADM[0]) is None:
        return False
    out = subprocess.run([*UDEVADM, "verify", "--help"], capture_output=True, text=True)
    return out.returncode == 0


def _private_mount_ok() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not Path("/sys/class/mem/null").exists():
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


def udev_parse_errors(tmp_path: Path, name: str, text: str) -> list[str]:
    """What udev's rule parser says about ``text`` (as file ``name``)."""
    rules_dir = tmp_path / "rules.d"
    rules_dir.mkdir()
    (rules_dir / name).write_text(text)
    if _udevadm_verify_available():  # systemd >= 254
        out = subprocess.run(
            [*UDEVADM, "verify", "--resolve-names=never", str(rules_dir / name)],
            capture_output=True,
            text=True,
        )
        return [] if out.returncode == 0 else (out.stdout + out.stderr).splitlines()
    if shutil.which(UDEVADM[0]) and _private_mount_ok():
        # systemd < 254 has no `verify`; `udevadm test` parses every rule file and logs each
        # error as "FILE:LINE message". Mount our folder over /etc/udev/rules.d in a private
        # mount namespace so the system's own rules are untouched.
        script = (
            f"mount --bind {rules_dir} /etc/udev/rules.d && "
            f"{shlex.join(UDEVADM)} test --action=add /sys/class/mem/null"
        )
        out = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
        log = (out.stdout + out.stderr).splitlines()
        path = f"/etc/udev/rules.d/{name}"
        assert f"Reading rules file: {path}" in log, "udevadm never read the file:\n" + "\n".join(
            log[-20:]
        )
        return [line for line in log if line.startswith(path + ":")]
    pytest.skip(
        "no udev parser usable here: needs `udevadm verify` (systemd >= 254) or udevadm "
        "plus root and unshare for a private mount namespace (apt-get install udev)"
    )


def test_udev_parser_catches_a_broken_rule(tmp_path):
    # The check below is only worth something if it can fail.
    bad = 'KERNEL=="hidraw*", BOGUS{x}=="1", MODE="0660"\nKERNEL="hidraw*" MODE=="0666"\n'
    assert udev_parse_errors(tmp_path, "70-bad.rules", bad)


@pytest.mark.parametrize("variant", ["uaccess", "group"])
def test_udev_parser_accepts_our_rules(tmp_path, variant):
    # plugdev exists on Debian-like systems; udev < 254 resolves group names at load time.
    text = udev_cmd.shipped_rules() if variant == "uaccess" else udev_cmd.group_rules("plugdev")
    if variant == "group" and not _group_exists("plugdev"):
        pytest.skip("group plugdev does not exist on this machine")
    assert udev_parse_errors(tmp_path, udev_cmd.RULES_NAME, text) == []


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


# --- riffpad udev install / uninstall ---------------------------------------------------


def invoke(*args: str):
    return CliRunner().invoke(main, ["udev", *args], catch_exceptions=False)


def installed(root: Path) -> Path:
    return root / "etc" / "udev" / "rules.d" / udev_cmd.RULES_NAME


def test_print_shows_the_shipped_rules():
    result = invoke("install", "--print")
    assert result.exit_code == 0
    assert result.output == REPO_RULES.read_text()


def test_install_under_root_writes_the_rules_and_does_not_run_udevadm(tmp_path, monkeypatch):
    monkeypatch.setattr(udev_cmd, "reload_udev", _forbidden)
    result = invoke("install", "--root", str(tmp_path))
    assert result.exit_code == 0, result.output
    dest = installed(tmp_path)
    assert dest.read_bytes() == REPO_RULES.read_bytes()
    assert dest.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in dest.parent.iterdir()) == [udev_cmd.RULES_NAME]  # no temp
    assert "udevadm not run" in result.output


def _forbidden(*_args, **_kwargs):
    raise AssertionError("udevadm must not run with --root")


def test_install_is_idempotent(tmp_path, monkeypatch):
    assert invoke("install", "--root", str(tmp_path)).exit_code == 0
    dest = installed(tmp_path)
    before = dest.stat()
    monkeypatch.setattr(udev_cmd, "write_atomically", _forbidden)
    result = invoke("install", "--root", str(tmp_path))
    assert result.exit_code == 0
    assert "already installed" in result.output
    after = dest.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_install_replaces_a_stale_file(tmp_path):
    dest = installed(tmp_path)
    dest.parent.mkdir(parents=True)
    dest.write_text('KERNEL=="hidraw*", MODE="0666"\n')
    result = invoke("install", "--root", str(tmp_path))
    assert result.exit_code == 0
    assert "installed" in result.output and "already" not in result.output
    assert dest.read_text() == REPO_RULES.read_text()


def test_dry_run_changes_nothing_and_says_what_it_would_do(tmp_path, monkeypatch):
    monkeypatch.setattr(udev_cmd.os, "geteuid", lambda: 1000)  # allowed without root
    result = invoke("install", "--dry-run", "--root", str(tmp_path))
    assert result.exit_code == 0
    assert f"would write {installed(tmp_path)}" in result.output
    assert not installed(tmp_path).exists()
    assert not any(tmp_path.iterdir())


def test_dry_run_on_the_system_lists_the_udevadm_commands(monkeypatch):
    monkeypatch.setattr(udev_cmd.os, "geteuid", lambda: 1000)
    if installed(Path("/")).exists():
        pytest.skip("rules already installed on this machine")
    result = invoke("install", "--dry-run")
    assert result.exit_code == 0
    assert "would run: udevadm control --reload-rules" in result.output
    assert "would run: udevadm trigger --subsystem-match=hidraw --action=change" in result.output
    assert not installed(Path("/")).exists()


def test_not_root_prints_the_sudo_command_and_writes_nothing(monkeypatch):
    monkeypatch.setattr(udev_cmd.os, "geteuid", lambda: 1000)
    if installed(Path("/")).exists():
        pytest.skip("rules already installed on this machine")
    result = CliRunner().invoke(main, ["udev", "install"])
    assert result.exit_code == 1
    assert "needs root" in result.output
    assert 'sudo "$(command -v riffpad)" udev install' in result.output
    assert f"/etc/udev/rules.d/{udev_cmd.RULES_NAME}" in result.output
    assert "sudo udevadm control --reload-rules" in result.output
    assert not installed(Path("/")).exists()


def test_not_root_group_hint_keeps_the_group(monkeypatch):
    monkeypatch.setattr(udev_cmd.os, "geteuid", lambda: 1000)
    if installed(Path("/")).exists():
        pytest.skip("rules already installed on this machine")
    result = CliRunner().invoke(main, ["udev", "install", "--group", "plugdev"])
    assert result.exit_code == 1
    assert "udev install --group plugdev" in result.output
    assert "--print | sudo tee" in result.output


def test_group_install_writes_the_group_rule_and_says_usermod(tmp_path):
    assert invoke("install", "--root", str(tmp_path)).exit_code == 0
    result = invoke("install", "--group", "plugdev", "--root", str(tmp_path))
    assert result.exit_code == 0
    assert installed(tmp_path).read_text() == udev_cmd.group_rules("plugdev")
    assert "sudo usermod -aG plugdev $USER" in result.output
    assert (
        "already installed"
        in invoke("install", "--group", "plugdev", "--root", str(tmp_path)).output
    )


def test_group_install_warns_about_a_missing_group(tmp_path):
    result = CliRunner().invoke(
        main, ["udev", "install", "--group", "riffpad-no-such-group", "--root", str(tmp_path)]
    )
    assert result.exit_code == 0
    assert "group riffpad-no-such-group does not exist" in result.output
    assert "groupadd --system riffpad-no-such-group" in result.output


def test_uninstall(tmp_path, monkeypatch):
    monkeypatch.setattr(udev_cmd, "reload_udev", _forbidden)
    assert invoke("install", "--root", str(tmp_path)).exit_code == 0
    dry = invoke("uninstall", "--dry-run", "--root", str(tmp_path))
    assert "would remove" in dry.output and installed(tmp_path).exists()
    result = invoke("uninstall", "--root", str(tmp_path))
    assert result.exit_code == 0
    assert not installed(tmp_path).exists()
    again = invoke("uninstall", "--root", str(tmp_path))
    assert again.exit_code == 0 and "not installed" in again.output


def test_uninstall_not_root_prints_sudo(tmp_path, monkeypatch):
    monkeypatch.setattr(udev_cmd.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(udev_cmd, "_target", lambda root: installed(tmp_path))
    assert invoke("install", "--root", str(tmp_path)).exit_code == 0
    result = CliRunner().invoke(main, ["udev", "uninstall"])
    assert result.exit_code == 1
    assert 'sudo "$(command -v riffpad)" udev uninstall' in result.output
    assert installed(tmp_path).exists()


# --- reloading udev ---------------------------------------------------------------------


def test_reload_runs_reload_then_trigger():
    calls = []

    def runner(cmd):
        calls.append(tuple(cmd))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    assert udev_cmd.reload_udev(runner) == []
    assert calls == [
        ("udevadm", "control", "--reload-rules"),
        ("udevadm", "trigger", "--subsystem-match=hidraw", "--action=change"),
    ]


def test_reload_reports_udevadm_failures():
    def runner(cmd):
        return subprocess.CompletedProcess(
            cmd, 2, "", "Failed to send reload request: No such file"
        )

    problems = udev_cmd.reload_udev(runner)
    assert any("--reload-rules` failed: Failed to send reload request" in p for p in problems)
    assert any("re-plug" in p for p in problems)


def test_reload_without_udevadm_says_replug(monkeypatch):
    monkeypatch.setattr(udev_cmd.shutil, "which", lambda _name: None)
    problems = udev_cmd.reload_udev()
    assert problems and "udevadm not found" in problems[0]
