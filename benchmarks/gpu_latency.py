"""Fire-to-WAV latency at Stable Diffusion 1.5 size: riffpad's Engine vs diffusers' img2img.

Builds SD 1.5-size models with random weights from SD 1.5's own configs (UNet 860M, VAE 84M,
CLIP ViT-L/14 text encoder 123M; no download), then times, in the same run and on the same
modules, from "fire" to a WAV in memory:

- riffpad: ``Engine.render(request)`` (spectrogram image + audio, Riffusion's maths), in the
  variants asked for: ``graphs`` (the CUDA default: UNet and VAE decoder replayed from CUDA
  graphs), ``eager`` (no graphs), ``compile`` (torch.compile'd UNet, no graphs);
- baseline: stock diffusers ``StableDiffusionImg2ImgPipeline`` (same scheduler, strength 0.75,
  guidance 7, eager) followed by the same spectrogram-to-audio conversion.

Before timing it checks, at this size: riffpad's image equals Riffusion 0.0.5's own pipeline
on the same modules (``--riffusion``, needs riffusion installed with --no-deps), graphs give
the same image as eager, and the same image gives the same audio twice.

Goal on an H100: 50 steps to WAV < 0.5 s, 15 steps < 0.15 s. On a GPU machine:

    PYTHONPATH=.:tests python benchmarks/gpu_latency.py --riffusion --json out.json

It also runs on the CPU with the tiny test model, to show it works:

    PYTHONPATH=.:tests python benchmarks/gpu_latency.py --size tiny --device cpu --steps 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import traceback
from pathlib import Path

import _paths  # noqa: F401  (the repository root on sys.path: see _paths.py)
import numpy as np
import torch

GOALS_S = {15: 0.15, 50: 0.5}  # fire-to-WAV goals on an H100, 512x512

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


def build(folder: Path, size: str, device: torch.device, dtype: torch.dtype):
    """Random-weight modules (SD 1.5 configs, or the tests' tiny ones), plus the scheduler
    config and seed images on disk that the engine reads from its model folder."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from riffpad.engine import loader
    from tests.support.tinymodel import (
        RIFFUSION_SCHEDULER_CONFIG,
        build_components,
        save_tiny_model,
    )

    save_tiny_model(folder)  # scheduler/, seed_images/ and the tiny weights
    parts = build_components()
    tok = parts["tokenizer"]
    if size == "sd15":
        torch.manual_seed(0)
        with torch.device(device):  # initialise on the device: seconds, not a minute
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
    else:
        unet, vae, text = parts["unet"], parts["vae"], parts["text_encoder"]
    for m in (unet, vae, text):
        m.to(device=device, dtype=dtype).eval().requires_grad_(False)
    if device.type == "cuda":  # as the engine's loader does on CUDA
        unet.to(memory_format=torch.channels_last)
        vae.to(memory_format=torch.channels_last)
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


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def diff_stats(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a - b)
    return {"equal": bool(np.array_equal(a, b)), "max": int(d.max()), "mean": float(d.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--size", choices=["sd15", "tiny"], default="sd15")
    parser.add_argument("--steps", type=int, nargs="*", default=[15, 25, 50])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--variants",
        default="graphs,eager",
        help="riffpad variants: graphs, eager, then compile, compile-graphs (comma-separated)",
    )
    parser.add_argument("--scheduler", default=None, help="default (PNDM), dpm++, euler, ddim")
    parser.add_argument("--riffusion", action="store_true", help="check against Riffusion 0.0.5")
    parser.add_argument("--budget-s", type=float, default=None, help="skip what would start later")
    parser.add_argument("--json", type=Path, help="also write the results here (after each step)")
    args = parser.parse_args()
    t_start = time.perf_counter()

    from diffusers import StableDiffusionImg2ImgPipeline

    from riffpad.audio.synthesis import audio_from_image
    from riffpad.engine import Engine, EngineOptions, RenderRequest, seeds
    from riffpad.engine import loader as engine_loader

    device = engine_loader.pick_device(args.device)
    dtype = engine_loader.pick_dtype(device)
    results: dict = {
        "device": str(device),
        "dtype": str(dtype),
        "size": args.size,
        "torch": torch.__version__,
        "checks": {},
        "runs": [],
        "skipped": [],
    }
    if device.type == "cuda":
        results["gpu"] = torch.cuda.get_device_name()

    def save():
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))

    def over_budget(what: str) -> bool:
        if args.budget_s is not None and time.perf_counter() - t_start > args.budget_s:
            print(f"budget of {args.budget_s:.0f} s spent: skipping {what}", flush=True)
            results["skipped"].append(what)
            return True
        return False

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "random-model"
        t = time.perf_counter()
        loaded = build(folder, args.size, device, dtype)
        print(
            f"built {args.size} random model on {device} ({dtype}) in "
            f"{time.perf_counter() - t:.1f} s",
            flush=True,
        )
        engines = {}
        for name in args.variants.split(","):
            if name.startswith("compile"):
                continue  # built later, when the time budget allows
            engines[name] = Engine(
                loaded, f"{args.size}-random", EngineOptions(cuda_graphs=name == "graphs")
            )
        first = next(iter(engines.values()))
        seed_img = seeds.resolve_seed("og_beat", folder).image.resize((512, 512))
        seed_img.save(folder / "seed_images" / "bench_seed.png")

        for name, engine in engines.items():
            if args.scheduler:
                engine.set_scheduler(args.scheduler)
            t = time.perf_counter()
            engine.warmup(RenderRequest("warm", steps=2, denoising=0.5, seed_image="bench_seed"))
            print(f"{name}: warm-up {time.perf_counter() - t:.2f} s", flush=True)

        ref = StableDiffusionImg2ImgPipeline(
            vae=loaded.vae,
            text_encoder=loaded.text_encoder,
            tokenizer=loaded.tokenizer,
            unet=loaded.unet,  # the plain module: stock diffusers, eager
            scheduler=first.core.scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        ref.set_progress_bar_config(disable=True)

        def request(steps: int) -> RenderRequest:
            return RenderRequest(
                "church bells on sunday",
                "jazz with piano",
                0.25,
                42,
                43,
                steps=steps,
                seed_image="bench_seed",
            )

        # -- checks ----------------------------------------------------------------------
        check_req = request(15)
        images = {}
        for name, engine in engines.items():
            take = engine.render(check_req)
            images[name] = take
            arr = pixels(take.image)
            results["checks"][f"{name}_image_std"] = float(arr.std())
            print(f"{name}: image std {arr.std():.1f} (a flat image would be ~0)", flush=True)
        if "graphs" in images and "eager" in images:
            d = diff_stats(pixels(images["graphs"].image), pixels(images["eager"].image))
            results["checks"]["graphs_vs_eager"] = d
            print(f"graphs vs eager image: {d}", flush=True)
            g = engines["graphs"].core.graphs
            results["checks"]["graph_captures"] = {k: v.captures for k, v in g.items()}
            results["checks"]["graph_failures"] = {k: v.failures for k, v in g.items()}
        take = images[next(iter(images))]
        again = audio_from_image(take.image)
        results["checks"]["audio_repeatable"] = bool(np.array_equal(take.audio, again))
        print(f"same image, same audio: {results['checks']['audio_repeatable']}", flush=True)
        if args.riffusion:
            try:
                from tests.support.riffusion_ref import (
                    import_riffusion,
                    riffusion_image,
                    riffusion_pipeline,
                )

                plain = engines.get("eager") or Engine(
                    loaded, "plain", EngineOptions(cuda_graphs=False)
                )
                modules = import_riffusion()
                pipe = riffusion_pipeline(modules[0], plain.core, plain.core.scheduler)
                for alpha in (0.25, 0.0):
                    req = RenderRequest(
                        "church bells on sunday",
                        "jazz with piano",
                        alpha,
                        42,
                        43,
                        steps=15,
                        seed_image="bench_seed",
                    )
                    ours = plain.render(req, audio=False)
                    theirs = riffusion_image(modules, pipe, req, seed_img)
                    d = diff_stats(pixels(ours.image), pixels(theirs))
                    results["checks"][f"riffusion_alpha_{alpha}"] = d
                    print(f"riffpad vs Riffusion's pipeline, alpha {alpha}: {d}", flush=True)
            except Exception:  # report it, keep timing
                results["checks"]["riffusion_error"] = traceback.format_exc()
                print(traceback.format_exc(), flush=True)
        save()

        # -- timings ---------------------------------------------------------------------
        def theirs_fn(steps):
            def run():
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

            return run

        def ours_fn(engine, steps):
            req = request(steps)

            def run():
                take = engine.render(req)
                assert take.audio is not None and take.audio.dtype == np.float32

            return run

        def measure(name, engine, steps, baseline):
            ours = ours_fn(engine, steps)
            ours()  # warm this step count (scheduler tables, allocator)
            t_ours = timed(ours, device, args.repeats)
            take = engine.render(request(steps))
            row = {
                "variant": name,
                "steps": steps,
                "unet_calls": take.params["unet_calls"],
                "riffpad_s": statistics.median(t_ours),
                "riffpad_all_s": [round(x, 4) for x in t_ours],
                "diffusers_s": baseline,
                "riffpad_breakdown_s": {k: round(v, 4) for k, v in take.timings.items()},
            }
            row["ratio"] = row["riffpad_s"] / baseline
            if steps in GOALS_S:
                row["goal_s"] = GOALS_S[steps]
                row["goal_met"] = row["riffpad_s"] < GOALS_S[steps]
            results["runs"].append(row)
            save()
            print(
                f"{name:14s} {steps:3d} steps ({row['unet_calls']} UNet calls): riffpad "
                f"{row['riffpad_s'] * 1000:8.1f} ms  diffusers img2img+audio "
                f"{baseline * 1000:8.1f} ms  ratio {row['ratio']:.2f}  "
                f"[{', '.join(f'{k} {v * 1000:.1f} ms' for k, v in take.timings.items())}]"
                + (
                    f"  goal < {GOALS_S[steps]} s: {'met' if row['goal_met'] else 'missed'}"
                    if steps in GOALS_S
                    else ""
                ),
                flush=True,
            )

        baselines = {}
        for steps in args.steps:
            if over_budget(f"diffusers at {steps} steps"):
                break
            fn = theirs_fn(steps)
            fn()
            baselines[steps] = statistics.median(timed(fn, device, args.repeats))
            results.setdefault("diffusers_s", {})[steps] = baselines[steps]
            for name, engine in engines.items():
                if over_budget(f"{name} at {steps} steps"):
                    break
                measure(name, engine, steps, baselines[steps])

        late = [v for v in args.variants.split(",") if v.startswith("compile")]
        for name in late:
            if not baselines or over_budget(name):
                break
            # Compiled last: the diffusers baseline above ran on the plain modules (the
            # engine compiles the shared VAE decoder in place).
            options = EngineOptions(compile=True, cuda_graphs=name == "compile-graphs")
            engine = Engine(loaded, name, options)
            if args.scheduler:
                engine.set_scheduler(args.scheduler)
            t = time.perf_counter()
            take = engine.render(check_req)
            results["checks"][f"{name}_first_render_s"] = time.perf_counter() - t
            d = diff_stats(pixels(take.image), pixels(images[next(iter(images))].image))
            results["checks"][f"{name}_vs_first_variant"] = d
            print(
                f"{name}: first render {results['checks'][f'{name}_first_render_s']:.1f} s; "
                f"image vs {next(iter(images))}: {d}",
                flush=True,
            )
            for steps in baselines:
                if over_budget(f"{name} at {steps} steps"):
                    break
                measure(name, engine, steps, baselines[steps])

    print("\nsummary (median of repeats; ratio = riffpad / diffusers, lower is faster)")
    print(f"{results.get('gpu', results['device'])}, {dtype}, torch {torch.__version__}")
    for row in results["runs"]:
        goal = ""
        if "goal_s" in row:
            goal = f"goal < {row['goal_s']} s {'met' if row['goal_met'] else 'MISSED'}"
        print(
            f"  {row['variant']:14s} {row['steps']:3d} steps  riffpad {row['riffpad_s']:.3f} s  "
            f"diffusers {row['diffusers_s']:.3f} s  ratio {row['ratio']:.2f}  " + goal
        )
    print(f"checks: {json.dumps({k: v for k, v in results['checks'].items() if 'error' not in k})}")
    results["wall_s"] = time.perf_counter() - t_start
    save()


if __name__ == "__main__":
    main()
