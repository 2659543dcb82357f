"""riffpad's command line.

Sub-commands are loaded lazily so that ``riffpad --help`` and the pad tools
never pay for importing torch and diffusers.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

import click

from riffpad import __version__
from riffpad.commands.options import settings_options
from riffpad.instrument.settings import Settings, SettingsError, load_config

# name -> "module:attribute". Each layer owns its module under riffpad/commands/.
COMMANDS: dict[str, str] = {
    "devices": "riffpad.commands.pad:devices",
    "monitor": "riffpad.commands.monitor:monitor",
    "record": "riffpad.commands.pad:record",
    "calibrate": "riffpad.commands.calibrate:calibrate",
    "render": "riffpad.commands.engine:render",
    "convert": "riffpad.commands.convert:convert",
    "udev": "riffpad.commands.udev:udev",
    "doctor": "riffpad.commands.doctor:doctor",
    "model": "riffpad.commands.model:model",
    "serve": "riffpad.commands.serve:serve",
}


class LazyGroup(click.Group):
    def _available(self) -> list[str]:
        return [
            name
            for name, target in COMMANDS.items()
            if importlib.util.find_spec(target.split(":")[0]) is not None
        ]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._available()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None or cmd_name not in COMMANDS:
            return cmd
        module_name, attr = COMMANDS[cmd_name].split(":")
        if importlib.util.find_spec(module_name) is None:
            return None
        return getattr(importlib.import_module(module_name), attr)


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", prog_name="riffpad")
@click.option("-v", "--verbose", count=True, help="More logging: -v info, -vv debug.")
@settings_options
@click.option("--config", "config_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Config file (default: config.toml in the user config dir).")  # fmt: skip
@click.option("--no-live", is_flag=True, help="Plain log lines instead of the live view.")
@click.pass_context
def main(ctx: click.Context, verbose: int, config_file: str | None, no_live: bool, **opts) -> None:
    """Play Riffusion live from a Sony DualSense, straight over HID.

    Without a command: the instrument. R2 fires, right stick X blends prompt A into B,
    Cross promotes the blend to A; hold PS (or Ctrl-C) to quit.
    """
    setup_logging(verbose)
    if ctx.invoked_subcommand is not None:
        return
    # Imported here so that sub-commands and --help stay fast.
    from riffpad.instrument.wiring import run

    try:
        config = load_config(config_file)
    except SettingsError as e:
        raise click.ClickException(str(e)) from None
    for key, value in config.items():
        if ctx.get_parameter_source(key) in (None, click.core.ParameterSource.DEFAULT):
            opts[key] = value
    ctx.exit(run(Settings(**opts, live=False if no_live else None)))
