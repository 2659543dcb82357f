"""``riffpad doctor``: check the install, the pad, permissions, GPU, model and audio."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from riffpad import diagnose

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("watched"),
    show_default=True,
    help="Watched folder the instrument writes clips to.",
)
@click.option(
    "--model",
    default=diagnose.DEFAULT_MODEL,
    show_default=True,
    help="Hub name or local diffusers folder of the model.",
)
def doctor(as_json: bool, out: Path, model: str) -> None:
    """Check everything riffpad needs and say how to fix what is missing.

    Exits 1 when a must-have check fails (Python, packages, hid backend, torch, watched
    folder). Pads, udev rules, audio and the model cache only warn: --replay plays without
    a pad, --no-audio without speakers, and the model downloads on first run.
    """
    checks = diagnose.run_all(out, model)
    code = diagnose.exit_code(checks)
    if as_json:
        report = {"ok": code == 0, "exit_code": code, "checks": [c.as_dict() for c in checks]}
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        _print_table(checks)
    sys.exit(code)


def _print_table(checks: list[diagnose.Check]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="riffpad doctor", show_lines=True)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail")
    table.add_column("fix")
    for c in checks:
        must = " (must)" if c.required and c.status == "fail" else ""
        table.add_row(c.name, f"[{_STYLE[c.status]}]{c.status}{must}[/]", c.detail, c.fix)
    console = Console()
    console.print(table)
    fails = [c.name for c in checks if c.status == "fail"]
    warns = [c.name for c in checks if c.status == "warn"]
    if fails:
        console.print(f"[bold red]must fix:[/] {', '.join(fails)}")
    elif warns:
        console.print(f"[yellow]ready, with warnings:[/] {', '.join(warns)}")
    else:
        console.print("[green]all good[/]")
