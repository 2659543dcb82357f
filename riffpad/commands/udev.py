"""``riffpad udev``: install the rules that let a normal user open the pad's hidraw node.

The shipped rule file is the single source of truth; the ``--group`` variant (for SSH and
services, where logind's uaccess does not apply) is derived from it line by line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from riffpad.atomic import write_text
from riffpad.resources import data_file

RULES_NAME = "70-riffpad-dualsense.rules"
# Where udev reads rules, highest precedence first (a file in /etc hides one of the same
# name further down). /lib is listed for systems without the merged /usr.
RULES_DIRS = (
    "etc/udev/rules.d",
    "run/udev/rules.d",
    "usr/local/lib/udev/rules.d",
    "usr/lib/udev/rules.d",
    "lib/udev/rules.d",
)
INSTALL_DIR = RULES_DIRS[0]

RELOAD = ("udevadm", "control", "--reload-rules")
# "change" re-runs the rules (and logind's uaccess) on pads that are already plugged in.
TRIGGER = ("udevadm", "trigger", "--subsystem-match=hidraw", "--action=change")

_GROUP_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_GROUP_HEADER = "# riffpad group rule for group "
_UACCESS = 'TAG+="uaccess"'

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def shipped_rules() -> str:
    """The uaccess rule file shipped with this riffpad."""
    return data_file("udev", RULES_NAME).read_text(encoding="utf-8")


def rule_lines(text: str) -> list[str]:
    """The rule lines of a rules file: no comments, no blank lines."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def check_group_name(name: str) -> str:
    if not _GROUP_RE.match(name):
        raise click.BadParameter(
            f"{name!r} is not a valid group name (lower-case letters, digits, '_' and '-', "
            "starting with a letter or '_', at most 32 characters)",
            param_hint="--group",
        )
    return name


def group_rules(name: str) -> str:
    """The shipped rules with uaccess replaced by ``GROUP=name`` (mode stays 0660)."""
    check_group_name(name)
    lines = rule_lines(shipped_rules())
    if not lines or not all(_UACCESS in line for line in lines):
        raise RuntimeError(f"shipped {RULES_NAME} has a rule without {_UACCESS}")
    rules = "\n".join(line.replace(_UACCESS, f'GROUP="{name}"') for line in lines)
    return (
        f"{_GROUP_HEADER}{name} (written by: riffpad udev install --group {name}).\n"
        f"# Members of {name} may read and write a DualSense / DualSense Edge hidraw node,\n"
        "# over USB and Bluetooth, also over SSH. Nobody else may (MODE 0660).\n"
        f"# Join the group with: sudo usermod -aG {name} $USER (then log in again).\n"
        f"{rules}\n"
    )


def group_of(text: str) -> str | None:
    """The group name if ``text`` is a riffpad group rule file, else None."""
    first = text.splitlines()[0] if text else ""
    if first.startswith(_GROUP_HEADER):
        name = first[len(_GROUP_HEADER) :].split(" ", 1)[0]
        return name if _GROUP_RE.match(name) else None
    return None


def is_riffpad_rules(text: str) -> bool:
    """Whether ``text`` is exactly what this riffpad would install (either variant)."""
    group = group_of(text)
    return text == (group_rules(group) if group else shipped_rules())


def write_atomically(dest: Path, text: str) -> None:
    """Write aside then rename, so udev never reads a half-written rules file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_text(dest, text, perms=0o644)  # rules files are world-readable, as udev's own


def reload_udev(runner: Runner | None = None) -> list[str]:
    """Reload the rules and re-apply them to plugged-in hidraw nodes; returns problems."""
    if runner is None:
        if shutil.which("udevadm") is None:
            return ["udevadm not found: re-plug (or reconnect) the controller to apply the rules"]
        runner = _run
    problems = []
    for cmd in (RELOAD, TRIGGER):
        result = runner(cmd)
        if result.returncode != 0:
            err = (result.stderr or "").strip() or f"exit status {result.returncode}"
            problems.append(f"`{' '.join(cmd)}` failed: {err}")
    if problems:
        problems.append("the rules apply after a reboot, or re-plug the controller once udev runs")
    return problems


def _run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


def _sudo_hint(action: str, group: str | None) -> str:
    flags = f" --group {group}" if group is not None else ""
    dest = f"/{INSTALL_DIR}/{RULES_NAME}"
    reload = f"sudo {' '.join(RELOAD)} && sudo {' '.join(TRIGGER)}"
    if action == "uninstall":
        manual = f"sudo rm -f {dest} && {reload}"
    elif group:
        manual = (
            f"riffpad udev install --group {group} --print | sudo tee {dest} >/dev/null && {reload}"
        )
    else:
        manual = f"sudo install -m 0644 {data_file('udev', RULES_NAME)} {dest} && {reload}"
    return (
        f"Writing /{INSTALL_DIR} needs root. Run:\n\n"
        f'  sudo "$(command -v riffpad)" udev {action}{flags}\n\n'
        f"or by hand:\n\n  {manual}\n"
    )


def _target(root: Path | None) -> Path:
    return (root or Path("/")) / INSTALL_DIR / RULES_NAME


def _need_root(root: Path | None) -> bool:
    return root is None and os.geteuid() != 0


def _root_option(verb: str):
    def decorate(f):
        return click.option(
            "--root",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help=f"{verb} under this directory instead of / (packaging, tests); "
            "udevadm is not run.",
        )(f)

    return decorate


@click.group()
def udev() -> None:
    """Let your user open the DualSense without root (udev rules for hidraw)."""


@udev.command()
@click.option(
    "--group",
    metavar="NAME",
    default=None,
    help="Give group NAME access instead of the logged-in local user (for SSH, services).",
)
@click.option("--print", "print_only", is_flag=True, help="Print the rules and exit.")
@click.option("--dry-run", is_flag=True, help="Say what would be done, change nothing.")
@_root_option("Install")
def install(group: str | None, print_only: bool, dry_run: bool, root: Path | None) -> None:
    """Install the rules to /etc/udev/rules.d, then reload and re-trigger udev."""
    text = group_rules(group) if group is not None else shipped_rules()
    if print_only:
        click.echo(text, nl=False)
        return
    dest = _target(root)
    unchanged = dest.is_file() and dest.read_text(encoding="utf-8", errors="replace") == text
    if unchanged:
        click.echo(f"already installed: {dest}")
        return
    if dry_run:
        click.echo(f"would write {dest} (mode 0644, {len(rule_lines(text))} rules)")
        _after_change(root, dry_run=True)
        return
    _require_root(root, "install", group)
    write_atomically(dest, text)
    click.echo(f"installed {dest}")
    _after_change(root)
    if group is not None:
        _group_advice(group)
    else:
        click.echo("Re-plug or reconnect the controller if it was connected.")


@udev.command()
@click.option("--dry-run", is_flag=True, help="Say what would be done, change nothing.")
@_root_option("Remove the rules")
def uninstall(dry_run: bool, root: Path | None) -> None:
    """Remove riffpad's rules from /etc/udev/rules.d and reload udev."""
    dest = _target(root)
    if not dest.exists():
        click.echo(f"not installed: {dest}")
        return
    if dry_run:
        click.echo(f"would remove {dest}")
        _after_change(root, dry_run=True)
        return
    _require_root(root, "uninstall", None)
    dest.unlink()
    click.echo(f"removed {dest}")
    _after_change(root)


def _require_root(root: Path | None, action: str, group: str | None) -> None:
    if _need_root(root):
        click.echo(_sudo_hint(action, group), err=True)
        sys.exit(1)


def _after_change(root: Path | None, dry_run: bool = False) -> None:
    """Reload and re-trigger udev after the rules changed (or say so, with ``dry_run``)."""
    if dry_run:
        if root is None:
            click.echo(f"would run: {' '.join(RELOAD)}")
            click.echo(f"would run: {' '.join(TRIGGER)}")
        return
    if root is not None:
        click.echo("--root given: udevadm not run.")
        return
    for problem in reload_udev():
        click.echo(f"warning: {problem}", err=True)


def _group_advice(group: str) -> None:
    import grp

    try:
        grp.getgrnam(group)
    except KeyError:
        click.echo(
            f"warning: group {group} does not exist yet. Create it with\n"
            f"  sudo groupadd --system {group} && sudo {' '.join(RELOAD)}",
            err=True,
        )
    click.echo(
        f"Add yourself to the group, then log out and in again:\n  sudo usermod -aG {group} $USER"
    )
