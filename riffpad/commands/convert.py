"""``riffpad convert``: Riffusion spectrogram image <-> audio, either way."""

from __future__ import annotations

import time
from pathlib import Path

import click

from riffpad.commands.options import torch_device_option

IMAGE_SUFFIXES = {".png"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif"}


@click.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Start Griffin-Lim from random phase with this seed (default: the vocoder start).",
)
@click.option(
    "--iterations",
    type=click.IntRange(1, 1000),
    default=None,
    help="Griffin-Lim iterations (default: the image's params, 32).",
)
@click.option(
    "--exif-max-value",
    is_flag=True,
    help="Scale by the image's EXIF MAX_VALUE instead of Riffusion's fixed 30e6.",
)
@torch_device_option("torch device (default: cuda if available, else cpu).")
def convert(
    source: Path,
    dest: Path,
    seed: int | None,
    iterations: int | None,
    exif_max_value: bool,
    torch_device: str | None,
) -> None:
    """Convert SOURCE to DEST: a spectrogram PNG to WAV, or audio to a spectrogram PNG.

    Both directions use Riffusion's format: 512 HTK mel bins over 0-10 kHz, 10 ms per
    column, pixel = 255 - 255 (S/max)^0.25, parameters in EXIF. Audio of any rate and
    channel count is mixed to mono and resampled to 44.1 kHz; WAVs come out as 16-bit mono
    at 44.1 kHz, loudness-normalised as Riffusion does. Files are written atomically.
    """
    from PIL import Image, UnidentifiedImageError

    from riffpad.engine import spectrogram as sp

    src_kind = _kind(source)
    dst_kind = _kind(dest)
    if src_kind == dst_kind:
        raise click.UsageError(
            f"convert goes between an image and audio; got {source.name} -> {dest.name}"
        )
    if dst_kind == "audio" and dest.suffix.lower() != ".wav":
        raise click.UsageError(f"{dest.name}: audio is written as WAV; name it .wav")
    if not dest.parent.is_dir():
        raise click.UsageError(f"folder {dest.parent} does not exist")
    t0 = time.perf_counter()
    if src_kind == "image":
        try:
            with Image.open(source) as img:
                img.load()
                params = sp.params_from_image(img)
                audio = sp.audio_from_image(
                    img,
                    params,
                    use_exif_max_value=exif_max_value,
                    n_iter=iterations,
                    seed=seed or 0,
                    init="vocoder" if seed is None else None,
                    device=torch_device,
                )
        except (UnidentifiedImageError, ValueError, OSError) as e:
            raise click.ClickException(f"{source}: {e}") from None
        sp.write_wav(dest, audio, params.sample_rate)
        what = f"{len(audio) / params.sample_rate:.2f} s of audio"
    else:
        try:
            audio = sp.read_audio(source)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        image = sp.image_from_audio(audio, device=torch_device)
        sp.save_image(dest, image)
        what = f"a {image.width}x{image.height} spectrogram"
    click.echo(f"wrote {what} to {dest} in {time.perf_counter() - t0:.2f} s")


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
