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


# The instrument's options (the main group's), with the config-file key each one reads.
INSTRUMENT_OPTIONS = (
    "device",
    "model",
    "torch_device",
    "scheduler",
    "out",
    "prompt_a",
    "prompt_b",
    "prompts",
    "no_audio",
    "audio_device",
    "loop",
    "replay",
    "capture_output",
    "mapping",
    "calibration",
    "seed_image",
    "trigger_feel",
    "jam",
    "record_audio",
    "lookahead",
    "crossfade",
    "bpm",
    "beats_per_bar",
    "link",
    "midi_clock",
    "midi_out",
    "compile",
)


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", prog_name="riffpad")
@click.option("-v", "--verbose", count=True, help="More logging: -v info, -vv debug.")
@click.option("--device", metavar="PATH", help="hidraw node of the pad (default: the first found).")
@click.option("--model", metavar="PATH|ID", help="Model folder or Hugging Face id.")
@click.option("--torch-device", metavar="DEV", help="torch device: cpu, cuda, cuda:1, mps.")
@click.option("--scheduler", metavar="NAME", help="Diffusers scheduler (default: the model's).")
@click.option("--out", metavar="DIR", default="watched", show_default=True,
              help="Watched folder the takes are written to.")  # fmt: skip
@click.option("--prompt-a", metavar="TEXT", help="Prompt A (right stick left).")
@click.option("--prompt-b", metavar="TEXT", help="Prompt B (right stick right).")
@click.option("--prompts", metavar="FILE",
              help="Prompt bank: TOML [[prompt]] tables or one prompt per line.")  # fmt: skip
@click.option("--no-audio", is_flag=True, help="Do not play takes (files only).")
@click.option("--audio-device", metavar="NAME|N", help="sounddevice output (default: system's).")
@click.option("--loop", is_flag=True, help="Loop the last take until the next one arrives.")
@click.option("--replay", metavar="CAPTURE", type=click.Path(dir_okay=False),
              help="Play a capture through the instrument instead of a live pad; "
                   "'demo' plays the shipped demo (a file named demo here wins).")  # fmt: skip
@click.option("--capture-output", metavar="FILE", type=click.Path(dir_okay=False),
              help="Log every output report sent to the pad (JSON Lines).")  # fmt: skip
@click.option("--mapping", metavar="FILE", help="Control mapping (default: mappings/dualsense).")
@click.option("--calibration", metavar="FILE", help="Calibration file (default: the pad's).")
@click.option("--seed-image", metavar="NAME|FILE", help="Seed image (default: og_beat).")
@click.option("--trigger-feel", is_flag=True, help="L2 resists more the more steps it asks.")
@click.option("--jam", is_flag=True, help="Jam at once: endless music that follows the pad.")
@click.option("--record-audio", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write all the jam plays to one WAV (with or without audio).")  # fmt: skip
@click.option("--lookahead", metavar="CLIPS", type=float, default=1.0, show_default=True,
              help="Jam: clips rendered ahead of the one playing.")  # fmt: skip
@click.option("--crossfade", metavar="MS", type=float, default=50.0, show_default=True,
              help="Jam: milliseconds each clip overlaps the next (0-1000).")  # fmt: skip
@click.option("--bpm", metavar="N", type=click.FloatRange(20, 400),
              help="Jam: fixed tempo, clips fitted to whole bars (default: free).")  # fmt: skip
@click.option("--beats-per-bar", metavar="N", type=click.IntRange(1, 16), default=4,
              show_default=True, help="Jam: beats in a bar.")  # fmt: skip
@click.option("--link", is_flag=True,
              help="Jam: follow an Ableton Link session (extra riffpad[link]).")  # fmt: skip
@click.option("--midi-clock", metavar="PORT",
              help="Jam: follow MIDI clock from this input (extra riffpad[midi]).")  # fmt: skip
@click.option("--midi-out", metavar="PORT",
              help="Notes for fire/promote; clock out with --bpm (riffpad[midi]).")  # fmt: skip
@click.option("--compile", is_flag=True,
              help="torch.compile the model (CUDA): a minute to start, faster takes.")  # fmt: skip
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
    from riffpad.instrument.app import Options, run
    from riffpad.instrument.prompts import PromptFileError, load_config

    try:
        config = load_config(config_file)
    except PromptFileError as e:
        raise click.ClickException(str(e)) from None
    for key, value in config.items():
        if ctx.get_parameter_source(key) in (None, click.core.ParameterSource.DEFAULT):
            opts[key] = value
    options = Options(**{k: opts[k] for k in INSTRUMENT_OPTIONS}, live=False if no_live else None)
    if options.audio_device is not None and str(options.audio_device).isdigit():
        options.audio_device = int(options.audio_device)
    ctx.exit(run(options))
