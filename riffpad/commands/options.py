"""Command-line options shared by several commands, and the instrument's options made
from its settings table (``riffpad.instrument.settings``).

One meaning per word in every command: ``--device`` is the pad (a hidraw node),
``--torch-device`` the compute device. A value that fits the other word is refused with
the option it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from riffpad.instrument.settings import Settings, options, pad_device, torch_device


def _checked(check: Callable[[str], Any]):
    def callback(ctx: click.Context, param: click.Parameter, value):
        if value is None:
            return None
        try:
            return check(value)
        except ValueError as e:
            raise click.BadParameter(str(e), ctx=ctx, param=param) from None

    return callback


def pad_option(dest: str = "path"):
    """``--device PATH``: the pad's hidraw node (default: the first pad found)."""
    return click.option(
        "--device",
        dest,
        metavar="PATH",
        callback=_checked(pad_device),
        help="hidraw node of the pad (see `riffpad devices`); default: the first found.",
    )


def torch_device_option(
    help: str = "torch device: cuda, cuda:N, mps or cpu (default: the fastest there is).",
):
    """``--torch-device DEV``, and a hidden ``--device`` that says to use it: this command
    reads no pad."""

    def refuse(ctx: click.Context, param: click.Parameter, value):
        if value is not None:
            raise click.BadParameter(
                f"this command reads no pad; for the compute device use --torch-device {value}",
                ctx=ctx,
                param=param,
            )

    def decorate(f):
        f = click.option("--device", "pad_device_given", hidden=True, expose_value=False,
                         callback=refuse, is_eager=True)(f)  # fmt: skip
        return click.option(
            "--torch-device",
            "torch_device",
            metavar="DEV",
            callback=_checked(torch_device),
            help=help,
        )(f)

    return decorate


def settings_options(f):
    """Every option of the instrument's settings table, as click options on ``f``."""
    for name, opt in reversed(options()):
        default = Settings.__dataclass_fields__[name].default
        kw: dict[str, Any] = {"help": opt.help}
        if opt.is_flag:
            kw["is_flag"] = True
        else:
            kw["metavar"] = opt.metavar
            kw["default"] = default
            kw["show_default"] = opt.show_default
        if opt.number:
            kw["type"] = float
        if opt.path:
            kw["type"] = click.Path(dir_okay=False)
        if opt.check is not None:
            kw["callback"] = _checked(opt.check)
        f = click.option(opt.flag, name, **kw)(f)
    return f
