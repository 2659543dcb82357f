"""``riffpad convert``: Riffusion spectrogram image <-> audio, either way, one file or many."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import click

from riffpad.audio.files import AUDIO_SUFFIXES
from riffpad.commands.options import torch_device_option

IMAGE_SUFFIXES = (".png",)  # lossless only: a JPEG's pixels are not the spectrogram's


@dataclass(frozen=True)
class _Options:
    seed: int | None
    iterations: int | None
    exif_max_value: bool
    device: str | None


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Convert every PATH into this folder (images to NAME.wav, audio to NAME.png).",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Start Griffin-Lim from random phase with this seed (default: a deterministic start).",
)
@click.option(
    "--iterations",
    type=click.IntRange(1, 1000),
    default=None,
    help="Griffin-Lim effort (default: the image's params, 32).",
)
@click.option(
    "--exif-max-value",
    is_flag=True,
    help="Scale by the image's EXIF MAX_VALUE instead of Riffusion's fixed 30e6.",
)
@torch_device_option("torch device (default: cuda if available, else cpu).")
def convert(
    paths: tuple[Path, ...],
    out_dir: Path | None,
    seed: int | None,
    iterations: int | None,
    exif_max_value: bool,
    torch_device: str | None,
) -> None:
    """Convert a spectrogram PNG to WAV or audio to a spectrogram PNG.

    \b
    riffpad convert SOURCE DEST          one file, DEST named by you
    riffpad convert IN... --out-dir DIR  many files in one process (no start-up per file)

    Both directions use Riffusion's format: 512 HTK mel bins over 0-10 kHz, 10 ms per
    column, pixel = 255 - 255 (S/max)^0.25, parameters in EXIF. Audio of any rate and
    channel count is mixed to mono and resampled to 44.1 kHz; WAVs come out as 16-bit mono
    at 44.1 kHz, loudness-normalised as Riffusion does. Files are written atomically. In a
    batch a file that fails is reported and the others are still converted.
    """
    opts = _Options(seed, iterations, exif_max_value, torch_device)
    if out_dir is None:
        if len(paths) != 2:
            raise click.UsageError(
                f"give SOURCE and DEST, or several inputs with --out-dir (got {len(paths)} paths)"
            )
        source, dest = paths
        _check_source(source)
        src_kind, dst_kind = _kind(source), _kind(dest)
        if src_kind == dst_kind:
            raise click.UsageError(
                f"convert goes between an image and audio; got {source.name} -> {dest.name}"
            )
        if dst_kind == "audio" and dest.suffix.lower() != ".wav":
            raise click.UsageError(f"{dest.name}: audio is written as WAV; name it .wav")
        if not dest.parent.is_dir():
            raise click.UsageError(f"folder {dest.parent} does not exist")
        jobs = [(source, dest)]
    else:
        jobs = _plan_batch(paths, out_dir)
    failed = []
    t_all = time.perf_counter()
    for source, dest in jobs:
        t0 = time.perf_counter()
        try:
            what = _convert_one(source, dest, opts)
        except click.ClickException as e:
            if out_dir is None:
                raise
            failed.append(source)
            click.echo(f"error: {e.format_message()}", err=True)
            continue
        click.echo(f"wrote {what} to {dest} in {time.perf_counter() - t0:.2f} s")
    if out_dir is not None:
        done = len(jobs) - len(failed)
        click.echo(
            f"converted {done} of {len(jobs)} files into {out_dir} "
            f"in {time.perf_counter() - t_all:.2f} s"
        )
        if failed:
            raise click.ClickException(
                f"{len(failed)} file(s) not converted: {', '.join(str(f) for f in failed)}"
            )


def _plan_batch(paths: tuple[Path, ...], out_dir: Path) -> list[tuple[Path, Path]]:
    """(source, dest) for every input, checked before anything is written: known types,
    existing files, no two outputs with one name, no output over an input."""
    if not out_dir.is_dir():
        raise click.UsageError(f"--out-dir {out_dir} does not exist")
    jobs, taken = [], {}
    inputs = {p.resolve() for p in paths}
    for source in paths:
        _check_source(source)
        suffix = ".png" if _kind(source) == "audio" else ".wav"
        dest = out_dir / (source.stem + suffix)
        key = dest.resolve()
        if key in taken:
            raise click.UsageError(
                f"{taken[key]} and {source} would both be written to {dest}; convert them apart"
            )
        if key in inputs:
            raise click.UsageError(f"{dest} is also an input; pick another --out-dir")
        taken[key] = source
        jobs.append((source, dest))
    return jobs


def _convert_one(source: Path, dest: Path, opts: _Options) -> str:
    """Convert one file (the kinds are checked); ClickException names the file on failure."""
    from PIL import Image, UnidentifiedImageError

    from riffpad.audio.analysis import image_from_audio
    from riffpad.audio.files import read_audio, save_image, write_wav
    from riffpad.audio.params import params_from_image
    from riffpad.audio.synthesis import audio_from_image

    if _kind(source) == "image":
        try:
            with Image.open(source) as img:
                img.load()
                params = params_from_image(img)
                audio = audio_from_image(
                    img,
                    params,
                    use_exif_max_value=opts.exif_max_value,
                    n_iter=opts.iterations,
                    device=opts.device,
                    # A seed asks for a random start; else the default (deterministic) one.
                    **({} if opts.seed is None else {"seed": opts.seed, "init": None}),
                )
        except (UnidentifiedImageError, ValueError, OSError) as e:
            raise click.ClickException(f"{source}: {e}") from None
        _write(dest, write_wav, audio, params.sample_rate)
        return f"{len(audio) / params.sample_rate:.2f} s of audio"
    try:
        audio = read_audio(source)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    image = image_from_audio(audio, device=opts.device)
    _write(dest, save_image, image)
    return f"a {image.width}x{image.height} spectrogram"


def _write(dest: Path, writer, *args) -> None:
    try:
        writer(dest, *args)
    except OSError as e:
        raise click.ClickException(f"cannot write {dest}: {e}") from None


def _check_source(path: Path) -> None:
    if not path.is_file():
        raise click.UsageError(f"{path}: no such file")


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    raise click.UsageError(
        f"{path.name}: unknown file type; use .png for spectrograms or "
        f"{', '.join(sorted(AUDIO_SUFFIXES))} for audio"
    )
