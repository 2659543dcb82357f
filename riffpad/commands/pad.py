"""``riffpad devices`` and ``riffpad record``: list pads, record raw reports to a capture."""

from __future__ import annotations

import json
import threading
import time

import click

from riffpad.commands.options import pad_option
from riffpad.pad.device import (
    ConnectionEvent,
    PadDevice,
    PadDisconnected,
    PadError,
    PadInfo,
    PadReader,
    enumerate_pads,
    open_pad,
)
from riffpad.pad.state import PadState

BATTERY_WAIT_S = 1.0  # a pad sends 250-1000 reports/s; one with a battery byte comes fast


def open_or_exit(path: str | None, command: str | None = None) -> PadDevice:
    """open_pad for commands: a clear message and exit status 1 instead of a traceback;
    with no pad at all, how to try ``riffpad COMMAND`` with the shipped demo capture."""
    from riffpad.pad.device import PadNotFound
    from riffpad.resources import no_pad_hint

    try:
        return open_pad(path)
    except PadNotFound as err:
        hint = f"\n{no_pad_hint(command)}" if command and path is None else ""
        raise click.ClickException(f"{err}{hint}") from err
    except PadError as err:
        raise click.ClickException(str(err)) from err


def open_source(
    replay: str | None, path: str | None, *, realtime: bool, command: str | None = None
) -> PadDevice:
    """The replay of a capture when ``replay`` names one (``demo``: the shipped one), else
    the pad at ``path`` (the first found); a clear message and exit status 1 instead of a
    traceback."""
    if not replay:
        return open_or_exit(path, command)
    from riffpad.pad.capture import CaptureError, replay_device
    from riffpad.resources import replay_path

    try:
        return replay_device(replay_path(replay), realtime=realtime)
    except CaptureError as err:
        raise click.ClickException(str(err)) from err


def _battery(dev: PadDevice) -> dict | None:
    """The battery from the first full input report (simple Bluetooth reports have none)."""
    deadline = time.monotonic() + BATTERY_WAIT_S
    while time.monotonic() < deadline:
        result = dev.read(timeout_ms=100)
        if isinstance(result, PadState) and result.battery is not None:
            b = result.battery
            return {
                "percent": b.percent,
                "charging": b.charging,
                "status": b.status,
                "level": b.level,
            }
    return None


def describe(info: PadInfo) -> dict:
    """One pad's row for ``riffpad devices``: opens it briefly; errors go in ``error``."""
    row = {
        "path": info.path_text,
        "transport": info.transport.value,
        "model": info.model,
        "product_id": info.product_id,
        "serial": info.serial,
        "mac": None,
        "battery": None,
        "firmware": None,
        "error": None,
    }
    try:
        dev = open_pad(info.path)
    except PadError as err:
        row["error"] = str(err)
        return row
    try:
        row["mac"] = dev.mac()
        fw = dev.firmware()
        row["firmware"] = fw.as_dict() if fw else None
        row["battery"] = _battery(dev)
    except PadDisconnected as err:
        row["error"] = f"disconnected while reading: {err}"
    finally:
        dev.close()
    return row


def _text(row: dict) -> str:
    lines = [f"{row['model']} over {row['transport']}  {row['path']}"]

    def field(name: str, value) -> None:
        lines.append(f"  {name:<9} {value}")

    field("serial", row["serial"] or "-")
    if row["error"]:
        field("error", row["error"])
        return "\n".join(lines)
    field("mac", row["mac"] or "unknown")
    b = row["battery"]
    if b is None:
        field("battery", "unknown")
    else:
        pct = "error" if b["percent"] is None else f"{b['percent']}%"
        field("battery", pct + (" (charging)" if b["charging"] else ""))
    fw = row["firmware"]
    if fw is None:
        field("firmware", "unknown")
    else:
        field(
            "firmware",
            f"update {fw['update_version']}, fw {fw['fw_version']}, hw {fw['hw_version']}",
        )
    return "\n".join(lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (empty if no pad).")
def devices(as_json: bool) -> None:
    """List every DualSense / DualSense Edge over USB and Bluetooth.

    Shows path, transport, model, serial, MAC, battery and firmware. Exit status 1 when no
    pad is found (with --json: prints [] and exits 0).
    """
    rows = [describe(info) for info in enumerate_pads()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(
            "No DualSense or DualSense Edge found. Plug it in over USB, or pair it over "
            "Bluetooth (hold Create + PS until the lightbar flashes).",
            err=True,
        )
        raise SystemExit(1)
    click.echo("\n\n".join(_text(r) for r in rows))


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@pad_option()
@click.option("--seconds", type=float, help="Stop after this many seconds (default: Ctrl+C).")
def record(file: str, path: str | None, seconds: float | None) -> None:
    """Record the pad's raw input reports to FILE (riffpad capture, JSON Lines).

    Every report is kept, including ones the parser refuses. Each line is flushed, so a
    recording cut short keeps everything up to its last line. Replay it with
    `riffpad monitor --replay FILE`. Recording ends if the pad disconnects.
    """
    from riffpad.pad.capture import CaptureWriter, make_header

    dev = open_or_exit(path, "record")
    header = make_header(
        dev.transport,
        dev.info.product_id,
        serial=dev.info.serial,
        mac=dev.mac(),
        feature_replies=dev.feature_replies,
    )
    # Passive: no LED reset, no feedback, so recording does not disturb what the pad shows.
    reader = PadReader(dev, reconnect=False, reset_leds=False)
    timer = threading.Timer(seconds, reader.stop) if seconds else None
    click.echo(f"recording {dev.info.model} over {dev.transport.value} to {file}", err=True)
    start = None
    try:
        writer = CaptureWriter(file, header)
    except OSError as err:
        dev.close()
        raise click.ClickException(f"cannot write {file}: {err.strerror or err}") from err
    with writer:
        if timer:
            timer.start()
        try:
            for event in reader.events():
                if isinstance(event, ConnectionEvent):
                    click.echo(f"pad disconnected ({event.reason}); recording ends", err=True)
                    continue
                if start is None:
                    start = event.t
                writer.write(event.t - start, event.raw)
        except KeyboardInterrupt:
            pass
        finally:
            if timer:
                timer.cancel()
            reader.stop()
    rejected = sum(reader.rejected.values())
    click.echo(
        f"recorded {writer.count} reports ({reader.accepted} parsed, {rejected} refused) to {file}",
        err=True,
    )
