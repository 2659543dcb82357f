"""Fire-to-WAV latency at Stable Diffusion 1.5 size: riffpad's Engine vs diffusers' img2img.

Builds SD 1.5-size models with random weights from SD 1.5's own configs (UNet 860M, VAE 84M,
CLIP ViT-L/14 text encoder 123M; no download), then times, in the same run and on the same
modules, from "fire" to a WAV in memory:

- riffpad: ``Engine.render(request)`` (spectrogram image + audio, Riffusion's maths);
- baseline: diffusers ``StableDiffusionImg2ImgPipeline`` (same scheduler, strength 0.75,
  guidance 7) followed by the same spectrogram-to-audio conversion.

Goal on an H100: 50 steps to WAV < 0.5 s, 15 steps < 0.15 s. On a GPU machine:

    PYTHONPATH=. python benchmarks/gpu_latency.py [--compile] [--scheduler dpm++]

It also runs on the CPU (slowly) to show it works:

    PYTHONPATH=. python benchmarks/gpu_latency.py --device cpu --steps 2 --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

# Stable Diffusion v1.5 component configs (runwayml/stable-diffusion-v1-5 config.json files).
SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=(
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,
    act_fn="silu",
    center_input_sample=False,
    downsample_padding=1,
    flip_sin_to_cos=True,
    freq_shift=0,
    mid_block_scale_factor=1,
    norm_eps=1e-5,
)
SD15_VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=2,
    norm_num_groups=32,
    act_fn="silu",
    sample_size=512,
    scaling_factor=0.18215,
)
SD15_TEXT = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=768,
)


def build_sd15(folder: Path, device: torch.device, dtype: torch.dtype):
    """SD 1.5-size modules with random weights, plus a scheduler config and seed image on disk
    (the engine reads those from its model folder)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from tinymodel import RIFFUSION_SCHEDULER_CONFIG, build_components, save_tiny_model
    from transformers import CLIPTextConfig, CLIPTextModel

    from riffpad.engine import loader

    save_tiny_model(folder)  # scheduler/ and seed_images/ (weights unused)
    tok = build_components()["tokenizer"]
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**SD15_UNET)
    vae = AutoencoderKL(**SD15_VAE)
    text = CLIPTextModel(
        CLIPTextConfig(
            **SD15_TEXT,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    for m in (unet, vae, text):
        m.to(device=device, dtype=dtype).eval().requires_grad_(False)
    if device.type == "cuda":
        unet.to(memory_format=torch.channels_last)
        vae.to(memory_format=torch.channels_last)
    from diffusers import PNDMScheduler

    sched = PNDMScheduler(**RIFFUSION_SCHEDULER_CONFIG)
    return loader.Loaded(folder, vae, text, tok, unet, sched, device, dtype)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--steps", type=int, nargs="*", default=[15, 25, 50])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="half-length clip (256x512 seed), 1 repeat"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet")
    parser.add_argument("--scheduler", default=None, help="default (PNDM), dpm++, euler, ddim")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from diffusers import StableDiffusionImg2ImgPipeline

    from riffpad.engine import Engine, EngineOptions, RenderRequest, seeds
    from riffpad.engine import loader as engine_loader
    from riffpad.engine.spectrogram import audio_from_image

    device = engine_loader.pick_device(args.device)
    dtype = engine_loader.pick_dtype(device)
    repeats = 1 if args.quick else args.repeats
    # Spectrograms are 512 px high (mel bins); --quick halves the clip length (width) only.
    size = (256 if args.quick else 512, 512)
    results = {"device": str(device), "dtype": str(dtype), "size": size, "runs": []}
    if device.type == "cuda":
        results["gpu"] = torch.cuda.get_device_name()
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sd15-random"
        t = time.perf_counter()
        loaded = build_sd15(folder, device, dtype)
        if args.compile:
            loaded.unet = torch.compile(loaded.unet)
        print(
            f"built SD1.5-size random model on {device} ({dtype}) in "
            f"{time.perf_counter() - t:.1f} s",
            flush=True,
        )
        engine = Engine(loaded, "sd15-random", EngineOptions(compile=args.compile))
        if args.scheduler:
            engine.set_scheduler(args.scheduler)
        seed_img = seeds.resolve_seed("og_beat", folder).image.resize(size)
        seed_path = folder / "seed_images" / "bench_seed.png"
        seed_img.save(seed_path)

        ref = StableDiffusionImg2ImgPipeline(
            vae=loaded.vae,
            text_encoder=loaded.text_encoder,
            tokenizer=loaded.tokenizer,
            unet=loaded.unet,
            scheduler=engine.core.scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        ref.set_progress_bar_config(disable=True)

        t = time.perf_counter()
        engine.warmup(RenderRequest("warm", steps=2, denoising=0.5, seed_image="bench_seed"))
        print(f"engine warm-up {time.perf_counter() - t:.2f} s", flush=True)

        for steps in args.steps:
            request = RenderRequest(
                "church bells on sunday",
                "jazz with piano",
                0.25,
                42,
                43,
                steps=steps,
                seed_image="bench_seed",
            )

            def ours(request=request):
                take = engine.render(request)
                assert take.audio is not None and take.audio.dtype == np.float32

            def theirs(steps=steps):
                gen = torch.Generator(device).manual_seed(42)
                image = ref(
                    "church bells on sunday",
                    image=seed_img,
                    strength=0.75,
                    num_inference_steps=steps,
                    guidance_scale=7.0,
                    generator=gen,
                ).images[0]
                audio_from_image(image)

            ours(), theirs()  # warm this step count (schedulers, allocator, compile)
            t_ours = timed(ours, device, repeats)
            t_theirs = timed(theirs, device, repeats)
            take = engine.render(request)
            row = {
                "steps": steps,
                "unet_calls": take.params["unet_calls"],
                "riffpad_s": statistics.median(t_ours),
                "diffusers_s": statistics.median(t_theirs),
                "riffpad_breakdown_s": {k: round(v, 4) for k, v in take.timings.items()},
            }
            row["ratio"] = row["riffpad_s"] / row["diffusers_s"]
            results["runs"].append(row)
            print(
                f"{steps:3d} steps ({row['unet_calls']} UNet calls): riffpad "
                f"{row['riffpad_s'] * 1000:8.1f} ms  diffusers img2img+audio "
                f"{row['diffusers_s'] * 1000:8.1f} ms  ratio {row['ratio']:.2f}  "
                f"[{', '.join(f'{k} {v * 1000:.0f} ms' for k, v in take.timings.items())}]",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
