"""Pipeline overhead: riffpad's Engine vs diffusers' StableDiffusionImg2ImgPipeline.

Both run the same tiny random-weight model (tests/support/tinymodel.py, Riffusion geometry), the
same 512x512 seed image, steps, strength (0.75) and guidance (7, so CFG on), in one process. The
tiny UNet makes the model's own compute small, so the difference is pipeline overhead: text
encoding, image preprocessing and VAE encoding per call, scheduler bookkeeping.

    PYTHONPATH=. python benchmarks/bench_pipeline.py [--steps 20] [--repeats 7] [--threads 1]

Prints, per render of each (runs interleaved, medians), the wall time and the time outside the
UNet's forward (the pipeline's overhead: the UNet's own time is the same work in both and
varies from run to run by more than the overhead), and the ratios riffpad/diffusers
(goal: <= 1).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import _paths  # noqa: F401  (the repository root on sys.path: see _paths.py)
import torch


class UNetClock:
    """Seconds spent inside the UNet's forward (hooks), to split a render's wall time into
    the model's own compute and the pipeline's overhead around it."""

    def __init__(self, unet):
        self.inside = 0.0
        self._t = 0.0
        self.calls = 0
        unet.register_forward_pre_hook(self._enter)
        unet.register_forward_hook(self._leave)

    def _enter(self, *_):
        self._t = time.perf_counter()

    def _leave(self, *_):
        self.inside += time.perf_counter() - self._t
        self.calls += 1


def interleaved(fns, repeats: int, clock: UNetClock) -> list[tuple[float, float]]:
    """(median wall seconds, median seconds outside the UNet) of each function, runs
    alternating so that both see the same load."""
    walls, overheads = [[] for _ in fns], [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            clock.inside = 0.0
            t = time.perf_counter()
            fn()
            wall = time.perf_counter() - t
            walls[i].append(wall)
            overheads[i].append(wall - clock.inside)
    return [
        (statistics.median(w), statistics.median(o)) for w, o in zip(walls, overheads, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from diffusers import StableDiffusionImg2ImgPipeline

    from riffpad.engine import Engine, RenderRequest, seeds
    from tests.support.tinymodel import save_tiny_model

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

        clock = UNetClock(core.unet)
        ours(), theirs()  # warm both
        clock.calls = 0
        ours()
        ours_calls, clock.calls = clock.calls, 0
        theirs()
        theirs_calls = clock.calls
        (t_ours, o_ours), (t_theirs, o_theirs) = interleaved([ours, theirs], args.repeats, clock)
    print(
        f"tiny model, 512x512 seed, {args.steps} steps, strength 0.75, CFG 7, threads "
        f"{torch.get_num_threads()}, median of {args.repeats}"
    )
    print(f"UNet calls per render: riffpad {ours_calls}, diffusers img2img {theirs_calls}")
    print(f"{'':34s} {'wall':>9s} {'outside the UNet':>17s}")
    print(f"riffpad Engine.render:             {t_ours * 1000:6.1f} ms {o_ours * 1000:14.1f} ms")
    print(
        f"diffusers StableDiffusionImg2Img:  {t_theirs * 1000:6.1f} ms {o_theirs * 1000:14.1f} ms"
    )
    print(
        f"ratio riffpad/diffusers: wall {t_ours / t_theirs:.2f}, pipeline overhead "
        f"{o_ours / o_theirs:.2f} (goal <= 1)"
    )


if __name__ == "__main__":
    main()
