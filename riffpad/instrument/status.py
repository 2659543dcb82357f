"""The terminal side: a rich Live view on a TTY, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

log = logging.getLogger("riffpad.instrument")


@dataclass
class Snapshot:
    """Everything the status view shows; the app keeps one and updates it in place."""

    prompt_a: str = ""
    prompt_b: str = ""
    alpha: float = 0.5
    seed: int = 0
    base_seed: int = 0
    nudge: int = 0
    cfg: float = 0.0
    steps: int = 0
    worker: str = "loading"
    pending: bool = False
    superseded: int = 0
    takes: int = 0
    last_take: str | None = None
    last_take_s: float | None = None
    device: str = ""
    pad: str = "no pad"
    connected: bool = False
    battery: str = "?"
    reports_per_s: float = 0.0
    skipped: int = 0
    audio: str = ""
    out_dir: str = ""
    messages: list[str] = field(default_factory=list)

    def note(self, message: str, keep: int = 4) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.messages.append(f"{stamp} {message}")
        del self.messages[:-keep]


def alpha_bar(alpha: float, width: int = 24) -> str:
    pos = round(min(1.0, max(0.0, alpha)) * (width - 1))
    return "A " + "─" * pos + "●" + "─" * (width - 1 - pos) + " B"


def render(s: Snapshot) -> Group:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan", justify="right")
    t.add_column()
    t.add_row("prompt A", s.prompt_a)
    t.add_row("prompt B", s.prompt_b)
    t.add_row("alpha", f"{alpha_bar(s.alpha)}  {s.alpha:.2f}")
    t.add_row("seed", f"{s.seed}  (base {s.base_seed} {s.nudge:+d})")
    t.add_row("cfg / steps", f"{s.cfg:.1f} / {s.steps}")
    worker = s.worker + (" +1 waiting" if s.pending else "")
    if s.superseded:
        worker += f"  ({s.superseded} superseded by newer fires)"
    t.add_row("worker", worker)
    last = "-"
    if s.last_take:
        last = s.last_take + (f"  made in {s.last_take_s:.2f} s" if s.last_take_s else "")
    t.add_row("last take", f"{last}  [{s.takes} in {s.out_dir}]")
    pad = Text(s.pad, style="green" if s.connected else "bold red")
    t.add_row("pad", pad)
    t.add_row("", f"battery {s.battery}  {s.reports_per_s:.0f} reports/s  skipped {s.skipped}")
    t.add_row("engine", s.device)
    t.add_row("audio", s.audio)
    return Group(t, Text("\n".join(s.messages), style="yellow"))


class StatusView:
    """``note()`` for events worth a line; the Live view (TTY only) redraws from the
    snapshot a few times per second on rich's own thread."""

    def __init__(
        self, snapshot: Snapshot, *, live: bool | None = None, stream: TextIO | None = None
    ):
        self.snapshot = snapshot
        self.stream = stream or sys.stdout
        self.live_enabled = self.stream.isatty() if live is None else live
        self._live: Live | None = None

    def __enter__(self) -> StatusView:
        if self.live_enabled:
            console = Console(file=self.stream)
            self._live = Live(
                get_renderable=lambda: render(self.snapshot),
                console=console,
                refresh_per_second=4,
                transient=False,
            )
            self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def note(self, message: str, level: int = logging.INFO) -> None:
        self.snapshot.note(message)
        if self._live is None:  # plain lines (also before the live view starts: model loading)
            print(f"riffpad: {message}", file=self.stream, flush=True)
            # Already on screen: at WARNING the log handler would print it a second time.
            level = min(level, logging.DEBUG)
        log.log(level, message)
