"""``riffpad render``: one clip from flags or from a Riffusion server request file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from riffpad import DEFAULT_MODEL
from riffpad.commands.options import torch_device_option


def save_take(take, prefix: str | Path) -> list[Path]:
    """PREFIX.wav, PREFIX.png (lossless spectrogram) and PREFIX.json (every parameter)."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    wav, png, meta = (prefix.with_name(prefix.name + ext) for ext in (".wav", ".png", ".json"))
    from riffpad.atomic import write_text
    from riffpad.audio.files import save_image, write_wav

    written = []
    if take.audio is not None:
        write_wav(wav, take.audio, take.sample_rate)
        written.append(wav)
    save_image(png, take.image)  # tagged by the engine as a Riffusion spectrogram
    written.append(png)
    record = {
        "params": take.params,
        "timings": take.timings,
        "lineage": take.lineage,
        "files": {"wav": wav.name if take.audio is not None else None, "png": png.name},
    }
    write_text(meta, json.dumps(record, indent=2) + "\n")
    written.append(meta)
    return written


def load_request_file(path: Path):
    """Riffusion's InferenceInput JSON -> RenderRequest; errors name the file (and line)."""
    from riffpad.engine.engine import RequestError
    from riffpad.engine.wire import request_from_riffusion

    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise click.BadParameter(f"{path}: {exc.strerror or exc}", param_hint="--request") from exc
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{path}: line {exc.lineno} column {exc.colno}: {exc.msg}", param_hint="--request"
        ) from exc
    try:
        return request_from_riffusion(data)
    except RequestError as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--request") from exc


@click.command()
@click.option("--prompt-a", "-a", help="Prompt A, e.g. 'church bells, (dub bass:1.3)'.")
@click.option("--prompt-b", "-b", help="Prompt B (default: prompt A).")
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Blend of prompt A (0) into prompt B (1).",
)
@click.option("--seed-a", type=click.IntRange(0), default=42, show_default=True)
@click.option("--seed-b", type=click.IntRange(0), help="Default: seed A + 1.")
@click.option("--steps", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option(
    "--cfg",
    "guidance",
    type=float,
    default=7.0,
    show_default=True,
    help="Classifier-free guidance: how closely the clip follows the prompt.",
)
@click.option(
    "--denoise", "denoising", type=click.FloatRange(0, 1), default=0.75, show_default=True
)
@click.option(
    "--seed-image",
    default="default",
    show_default=True,
    help="A name in the model's seed_images/, builtin:beat (techno, waltz, shuffle, dub), "
    "a PNG or audio file, or none. default: og_beat if the model has it, else builtin:beat.",
)
@click.option("--mask-image", help="Mask (white = repaint) by name in seed_images/ or path.")
@click.option("--scheduler", help="default (the model's own), pndm, dpm++, euler, ddim.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Hub id or folder.")
@click.option("--revision", metavar="REV", help="Hub branch, tag, commit or refs/pr/N.")
@torch_device_option()
@click.option("--dtype", help="float16 or float32 (default: float16 on CUDA, else float32).")
@click.option(
    "--request",
    "request_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Riffusion server request JSON (InferenceInput); replaces the prompt flags.",
)
@click.option(
    "--out",
    "-o",
    default="riffpad-render",
    show_default=True,
    help="Writes OUT.wav, OUT.png and OUT.json.",
)
@click.option("--no-audio", is_flag=True, help="Only the spectrogram PNG and the JSON.")
@click.option("--engine", "engine_url", metavar="URL", help="Render on this server instead.")
def render(
    prompt_a,
    prompt_b,
    alpha,
    seed_a,
    seed_b,
    steps,
    guidance,
    denoising,
    seed_image,
    mask_image,
    scheduler,
    model,
    revision,
    torch_device,
    dtype,
    request_file,
    out,
    no_audio,
    engine_url,
):
    """Render one clip (Riffusion img2img interpolation) to OUT.wav/.png/.json."""
    from riffpad.engine import Engine, ModelError, RequestError, SeedError
    from riffpad.engine.engine import RenderRequest

    if request_file is not None:
        request = load_request_file(request_file)
    elif not prompt_a:
        raise click.UsageError("give --prompt-a (or --request FILE)")
    else:
        try:
            request = RenderRequest(
                prompt_a=prompt_a,
                prompt_b=prompt_b,
                alpha=alpha,
                seed_a=seed_a,
                seed_b=seed_b,
                steps=steps,
                guidance=guidance,
                denoising=denoising,
                seed_image=seed_image,
                mask_image=mask_image,
            )
        except RequestError as exc:
            raise click.UsageError(str(exc)) from exc
    if engine_url:
        from riffpad.engine.remote import remote_render

        take = remote_render(engine_url, request, audio=not no_audio)
        for path in save_take(take, out):
            click.echo(str(path))
        return
    try:
        engine = Engine.load(
            model, device=torch_device, dtype=dtype, scheduler=scheduler, revision=revision
        )
        take = engine.render(request, audio=not no_audio)
    except (ModelError, RequestError, SeedError) as exc:
        raise click.ClickException(str(exc)) from exc
    take.timings["load_s"] = engine.load_seconds
    for path in save_take(take, out):
        click.echo(str(path))
    t = take.timings
    click.echo(
        f"{take.params['unet_calls']} UNet calls, {t['diffusion_s']:.2f} s diffusion, "
        f"{t['total_s']:.2f} s total on {take.params['device']}",
        err=True,
    )
