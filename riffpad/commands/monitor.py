"""``riffpad monitor``: the pad's state, live (like evtest/jstest) or from a capture.

``--json`` prints exactly one JSON object per input report, in order: the parsed state, or
``{"rejected": reason, "length": n}`` for a report the parser refused. ``state_record`` is the
one place that turns a state into that object; ``records`` merges in what any ``Extra``
returns, which is where a mapping/calibration hook adds ``"params"`` and ``"events"``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

import click

from riffpad.commands.options import pad_option
from riffpad.pad.device import (
    ConnectionEvent,
    PadEvent,
    PadReader,
    RejectEvent,
    ReportEvent,
)
from riffpad.pad.state import PadState

# A hook called for every accepted report: (state, t) -> keys to add to its JSON object.
Extra = Callable[[PadState, float], dict]


def state_record(state: PadState) -> dict:
    """One accepted report as a JSON-able dict (raw values, as the pad sent them)."""
    return {
        "lx": state.lx,
        "ly": state.ly,
        "rx": state.rx,
        "ry": state.ry,
        "l2": state.l2,
        "r2": state.r2,
        "seq": state.seq,
        "buttons": state.button_names,
        "dpad": state.dpad.value if state.dpad else None,
        "touch": [{"active": t.active, "id": t.id, "x": t.x, "y": t.y} for t in state.touch],
        "gyro": list(state.gyro) if state.gyro is not None else None,
        "accel": list(state.accel) if state.accel is not None else None,
    }


def records(
    events: Iterable[PadEvent],
    extras: Sequence[Extra] = (),
    on_connection: Callable[[ConnectionEvent], None] | None = None,
) -> Iterator[dict]:
    """One dict per input report; connection changes go to ``on_connection`` instead."""
    for event in events:
        if isinstance(event, ReportEvent):
            record = state_record(event.state)
            for extra in extras:
                record.update(extra(event.state, event.t))
            yield record
        elif isinstance(event, RejectEvent):
            yield {"rejected": event.rejected.reason, "length": event.rejected.length}
        elif on_connection is not None:
            on_connection(event)


# --- live view -----------------------------------------------------------------------------


def _bar(value: int, width: int = 16) -> str:
    filled = round(value / 255 * width)
    return "█" * filled + "·" * (width - filled)


def render(reader: PadReader, source: str):
    """The live view of ``reader``'s latest state and counters, as a rich renderable."""
    from rich.panel import Panel
    from rich.table import Table

    s = reader.state
    dev = reader.device
    if dev is not None and dev.finished:
        status = "[yellow]end of capture[/]"
    elif reader.connected:
        status = f"[green]connected[/]  {reader.reports_per_second:6.0f} reports/s"
    else:
        status = "[red]disconnected[/] (waiting for the pad)"
    title = f"{source}  {status}"
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("left stick", f"x {s.lx:3d} {_bar(s.lx)}  y {s.ly:3d} {_bar(s.ly)}")
    grid.add_row("right stick", f"x {s.rx:3d} {_bar(s.rx)}  y {s.ry:3d} {_bar(s.ry)}")
    grid.add_row("triggers", f"L2 {s.l2:3d} {_bar(s.l2)}  R2 {s.r2:3d} {_bar(s.r2)}")
    grid.add_row("buttons", " ".join(s.button_names) or "-")
    grid.add_row("d-pad", s.dpad.value if s.dpad else "-")
    touches = [f"#{t.id:<3d} x {t.x:4d} y {t.y:4d}" if t.active else "-" for t in s.touch] or [
        "(no touch data in simple reports)"
    ]
    grid.add_row("touch", "   ".join(touches))
    if s.gyro is not None and s.accel is not None:
        grid.add_row("gyro", " ".join(f"{v:6d}" for v in s.gyro))
        grid.add_row("accel", " ".join(f"{v:6d}" for v in s.accel))
    if s.battery is not None:
        pct = s.battery.percent
        charging = " charging" if s.battery.charging else ""
        grid.add_row("battery", ("error" if pct is None else f"{pct}%") + charging)
    grid.add_row("report", f"{s.kind.value}  seq {s.seq if s.seq is not None else '-'}")
    rejected = dict(reader.rejected)  # a copy: the reader thread may be adding to it
    refused = ", ".join(f"{k} {v}" for k, v in sorted(rejected.items())) or "none"
    grid.add_row("counts", f"{reader.accepted} accepted; refused: {refused}")
    return Panel(grid, title=title, title_align="left")


# --- the command ---------------------------------------------------------------------------


@click.command()
@click.option(
    "--replay",
    type=click.Path(dir_okay=False),
    help="Read a capture; 'demo' reads the shipped demo (a file named demo here wins).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per report on stdout.")
@pad_option()
@click.option(
    "--realtime/--fast",
    default=None,
    help="Replay at recorded timing or as fast as possible "
    "(default: fast with --json, real time for the live view).",
)
@click.option("--seconds", type=float, help="Stop after this many seconds.")
@click.option(
    "--mapping", help="Mapping file or shipped name for --json params (default: dualsense)."
)
@click.option(
    "--calibration",
    type=click.Path(exists=True, dir_okay=False),
    help="Calibration file (default: the pad's own, from the config directory).",
)
def monitor(
    replay: str | None,
    as_json: bool,
    path: str | None,
    realtime: bool | None,
    seconds: float | None,
    mapping: str | None,
    calibration: str | None,
) -> None:
    """Show the pad's state live: sticks, triggers, buttons, d-pad, touch, motion, battery.

    Reports the parser refuses are counted and shown (in --json as {"rejected": reason,
    "length": n}); monitoring goes on. A live pad that disconnects is waited for.
    """
    from riffpad.commands.pad import open_source

    dev = open_source(
        replay, path, realtime=not as_json if realtime is None else realtime, command="monitor"
    )
    if replay:
        reader = PadReader(dev, reconnect=False, reset_leds=False, clock=dev.handle.capture_time)
        source = f"replay {replay}"
    else:
        # Passive, like evtest: no LED reset and no feedback, so the pad looks as it did.
        reader = PadReader(dev, reset_leds=False)
        source = f"{dev.info.model} over {dev.transport.value} {dev.info.path_text}"

    from riffpad.controls import monitor_extra

    try:  # params and events for --json, through the mapping and the pad's calibration
        extras = [monitor_extra(mapping, calibration, dev.serial)]
    except ValueError as err:
        reader.stop()
        raise click.ClickException(str(err)) from err

    timer = threading.Timer(seconds, reader.stop) if seconds else None
    if timer:
        timer.daemon = True
        timer.start()
    try:
        if as_json:
            _json(reader, extras)
        else:
            _live(reader, source)
    except KeyboardInterrupt:
        pass
    finally:
        if timer:
            timer.cancel()
        reader.stop()


def _json(reader: PadReader, extras: Sequence[Extra] = ()) -> None:
    def on_connection(event: ConnectionEvent) -> None:
        state = "connected" if event.connected else f"disconnected ({event.reason})"
        click.echo(f"pad {state}", err=True)

    for record in records(reader.events(), extras, on_connection=on_connection):
        click.echo(json.dumps(record))  # flushed per line, so a pipe sees each report


def _live(reader: PadReader, source: str) -> None:
    from rich.console import Console
    from rich.live import Live

    with Live(
        get_renderable=lambda: render(reader, source),
        console=Console(),
        refresh_per_second=20,
        transient=False,
    ):
        for _event in reader.events():
            pass
