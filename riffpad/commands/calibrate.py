"""``riffpad calibrate``: measure a pad's stick centres, noise, travel and trigger range."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import click

from riffpad.commands.options import pad_option

STEP_TIMEOUT = 120.0  # seconds a step may take on a live pad before giving up


def _states(reader) -> Iterator[tuple[float, object]]:
    from riffpad.pad.device import ReportEvent

    for event in reader.events():
        if isinstance(event, ReportEvent):
            yield event.t, event.state


def _view(step, number: int, state) -> object:
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_row(f"[bold]Step {number}/3[/]", step.title)
    table.add_row("progress", ProgressBar(total=1.0, completed=min(step.progress, 1.0), width=40))
    if state is not None:
        table.add_row(
            "left stick",
            f"x {state.lx:3d}  y {state.ly:3d}    right stick  x {state.rx:3d}  y {state.ry:3d}",
        )
        table.add_row("triggers", f"L2 {state.l2:3d}    R2 {state.r2:3d}")
    restarts = getattr(step, "restarts", 0)
    if restarts:
        table.add_row("", f"[yellow]a stick moved: measuring again ({restarts}x)[/]")
    return table


def _run_step(console, states, step, number: int, live_pad: bool, ask: bool) -> None:
    from rich.live import Live

    if ask:
        click.prompt(
            f"Step {number}/3: {step.title}. Press Enter to start", default="", show_default=False
        )
    else:  # --yes: unattended, each step starts at once
        console.print(f"Step {number}/3: {step.title}.")

    start = time.monotonic()
    shown = 0.0
    state = None
    with Live(_view(step, number, None), console=console, refresh_per_second=10) as live:
        for _, state in states:
            if step.feed(state):
                live.update(_view(step, number, state))
                break
            now = time.monotonic()
            if now - shown >= 0.05:
                live.update(_view(step, number, state))
                shown = now
            if live_pad and now - start > STEP_TIMEOUT:
                raise click.ClickException(
                    f"step {number} ({step.title.lower()}) did not finish within "
                    f"{STEP_TIMEOUT:.0f} s; nothing was saved"
                )
        else:
            source = "the capture ended" if not live_pad else "the pad went away"
            raise click.ClickException(
                f"{source} during step {number} ({step.title.lower()}); nothing was saved"
            )
    if not console.is_terminal:  # Live leaves its last frame without a newline there
        console.print()
    console.print(f"[green]Step {number} done.[/]")


def _summary(cal, old) -> object:
    from rich.table import Table

    table = Table(title="Calibration")
    table.add_column("control")
    table.add_column("measured")
    if old is not None:
        table.add_column("before")

    def stick(s) -> str:
        return (
            f"centre {s.center[0]},{s.center[1]}  noise {s.noise}  deadzone {s.deadzone}  "
            f"x {s.min[0]}..{s.max[0]}  y {s.min[1]}..{s.max[1]}"
        )

    def trig(t) -> str:
        return f"rest {t.rest}  full {t.full}"

    for name, fmt in (("left_stick", stick), ("right_stick", stick), ("l2", trig), ("r2", trig)):
        row = [name.replace("_", " "), fmt(getattr(cal, name))]
        if old is not None:
            row.append(fmt(getattr(old, name)))
        table.add_row(*row)
    return table


@click.command()
@click.option(
    "--replay",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Calibrate from a capture (riffpad record) instead of a live pad; 'demo': the "
    "shipped demo.",
)
@pad_option("device_path")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to save (default: the pad's file in the user config directory).",
)
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Run unattended: start each step at once, save without asking.",
)
def calibrate(replay: Path | None, device_path: str | None, output: Path | None, yes: bool):
    """Measure stick centres, noise, deadzones, travel and trigger ranges; save per pad.

    Three guided steps: leave the sticks, circle both sticks, squeeze both triggers. Each
    ends by itself once the pad has shown what is needed. Re-running replaces the values.
    """
    from rich.console import Console
    from rich.markup import escape

    from riffpad.commands.pad import open_source
    from riffpad.controls import calibrator
    from riffpad.controls.calibration import (
        CalibrationError,
        default_path,
        load_calibration,
        save_calibration,
    )
    from riffpad.pad.device import PadReader

    console = Console(highlight=False, emoji=False)
    device = open_source(replay, device_path, realtime=False, command="calibrate")

    serial = device.serial or None
    target = output or default_path(serial)
    console.print(
        escape(
            f"Calibrating {device.info.model} ({device.info.transport.value}"
            f"{', ' + serial if serial else ''}) -> {target}"
        ),
        soft_wrap=True,
    )
    reader = PadReader(device, reconnect=False, reset_leds=False)  # passive: nothing written
    try:
        states = _states(reader)
        live_pad = replay is None
        # Each step starts from what the one before measured.
        rest = calibrator.RestStep()
        _run_step(console, states, rest, 1, live_pad, ask=not yes)
        centres = {
            stick: rest.centre_and_noise(keys)[0]
            for stick, keys in calibrator.CircleStep.KEYS.items()
        }
        circle = calibrator.CircleStep(centres)
        _run_step(console, states, circle, 2, live_pad, ask=not yes)
        squeeze = calibrator.SqueezeStep({k: rest.trigger_rest(k) for k in ("l2", "r2")})
        _run_step(console, states, squeeze, 3, live_pad, ask=not yes)
    finally:
        reader.stop()

    cal = calibrator.result(rest, circle, squeeze, serial=serial)
    problems = calibrator.problems(cal)
    if problems:
        raise click.ClickException(
            "the measurements do not make a usable calibration (" + "; ".join(problems) + ")"
            "; nothing was saved. Run it again, circling the sticks to their edges."
        )
    old = None
    if target.is_file():
        try:
            old = load_calibration(serial, target)
        except CalibrationError as err:
            console.print(
                f"[yellow]The old file is unreadable and will be replaced: {escape(str(err))}[/]",
                soft_wrap=True,
            )
    console.print(_summary(cal, old))
    if not yes and not click.confirm(f"Save to {target}?", default=True):
        console.print("Not saved: the old calibration (if any) is unchanged.")
        return
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    save_calibration(cal, target, created=created)
    console.print(escape(f"Saved {target}"), soft_wrap=True)
