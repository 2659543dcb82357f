"""Pipeline overhead: riffpad's Engine vs diffusers' StableDiffusionImg2ImgPipeline.

Both run the same tiny random-weight model (tests/tinymodel.py, Riffusion geometry), the same
512x512 seed image, steps, strength (0.75) and guidance (7, so CFG on), in one process. The
tiny UNet makes the model's own compute small, so the difference is pipeline overhead: text
encoding, image preprocessing and VAE encoding per call, scheduler bookkeeping.

    PYTHONPATH=. python benchmarks/bench_pipeline.py [--steps 20] [--repeats 5] [--threads 1]

Prints median seconds per render of each and the ratio riffpad/diffusers (goal: <= 1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from diffusers import StableDiffusionImg2ImgPipeline
    from tinymodel import save_tiny_model

    from riffpad.engine import Engine, RenderRequest, seeds

    with tempfile.TemporaryDirectory() as tmp:
        folder = save_tiny_model(Path(tmp) / "tiny")
        engine = Engine.load(folder, device="cpu")
        core = engine.core
        ref = StableDiffusionImg2ImgPipeline(
            vae=core.vae,
            text_encoder=core.text_encoder,
            tokenizer=core.tokenizer,
            unet=core.unet,
            scheduler=engine._schedulers["default"],
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        ref.set_progress_bar_config(disable=True)
        seed_image = seeds.resolve_seed("og_beat", folder).image
        prompt = "church bells on sunday"
        request = RenderRequest(
            prompt, prompt, 0.0, 42, 42, steps=args.steps, denoising=0.75, guidance=7.0
        )

        def ours():
            return engine.render(request, audio=False)

        def theirs():
            gen = torch.Generator("cpu").manual_seed(42)
            return ref(
                prompt,
                image=seed_image,
                strength=0.75,
                num_inference_steps=args.steps,
                guidance_scale=7.0,
                generator=gen,
            ).images[0]

        calls = {"n": 0}
        hook = core.unet.register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
        ours(), theirs()  # warm both
        calls["n"] = 0
        ours()
        ours_calls = calls["n"]
        calls["n"] = 0
        theirs()
        theirs_calls = calls["n"]
        hook.remove()

        t_ours = median_time(ours, args.repeats)
        t_theirs = median_time(theirs, args.repeats)
    print(
        f"tiny model, 512x512 seed, {args.steps} steps, strength 0.75, CFG 7, threads "
        f"{torch.get_num_threads()}, median of {args.repeats}"
    )
    print(f"UNet calls per render: riffpad {ours_calls}, diffusers img2img {theirs_calls}")
    print(f"riffpad Engine.render:            {t_ours * 1000:8.1f} ms")
    print(f"diffusers StableDiffusionImg2Img: {t_theirs * 1000:8.1f} ms")
    print(f"ratio riffpad/diffusers: {t_ours / t_theirs:.2f} (goal <= 1)")


if __name__ == "__main__":
    main()
