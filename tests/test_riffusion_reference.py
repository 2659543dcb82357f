"""riffpad's image equals the one Riffusion's own pipeline makes (same weights, inputs,
scheduler), to float tolerance.

Riffusion is installed as the reference, not as a dependency:
``pip install --no-deps riffusion==0.0.5``. Its ``riffusion_pipeline.py`` needs two names that
current libraries dropped; a minimal shim provides them for the import only:
``diffusers.pipeline_utils`` (removed in diffusers 0.22; DiffusionPipeline lives in
``diffusers.pipelines``) and ``transformers.CLIPFeatureExtractor`` (removed in transformers 5;
``CLIPImageProcessor`` replaced it). Neither is used on the path under test.
"""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("single_thread")

pytest.importorskip("riffusion", reason="reference: pip install --no-deps riffusion==0.0.5")


@pytest.fixture(scope="module")
def riffusion_modules():
    import diffusers
    import transformers

    shim = types.ModuleType("diffusers.pipeline_utils")
    shim.DiffusionPipeline = diffusers.DiffusionPipeline
    saved = sys.modules.get("diffusers.pipeline_utils")
    had_fe = hasattr(transformers, "CLIPFeatureExtractor")
    sys.modules["diffusers.pipeline_utils"] = shim
    if not had_fe:
        transformers.CLIPFeatureExtractor = transformers.CLIPImageProcessor
    try:
        pipeline_mod = importlib.import_module("riffusion.riffusion_pipeline")
        datatypes = importlib.import_module("riffusion.datatypes")
    finally:
        if saved is None:
            sys.modules.pop("diffusers.pipeline_utils", None)
        else:
            sys.modules["diffusers.pipeline_utils"] = saved
        if not had_fe:
            del transformers.CLIPFeatureExtractor
    return pipeline_mod, datatypes


@pytest.fixture(scope="module")
def reference(riffusion_modules, engine):
    """Riffusion's RiffusionPipeline built from the very modules riffpad's engine loaded."""
    pipeline_mod, _ = riffusion_modules
    core = engine.core
    pipe = pipeline_mod.RiffusionPipeline(
        vae=core.vae,
        text_encoder=core.text_encoder,
        tokenizer=core.tokenizer,
        unet=core.unet,
        scheduler=engine._schedulers["default"],
        safety_checker=None,
        feature_extractor=None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _riffusion_image(riffusion_modules, pipe, engine, req, seed_image, mask_image=None):
    from riffpad.engine import seeds

    _, dt = riffusion_modules
    inputs = dt.InferenceInput(
        start=dt.PromptInput(
            prompt=req.prompt_a, seed=req.seed_a, denoising=req.denoising, guidance=req.guidance
        ),
        end=dt.PromptInput(
            prompt=req.prompt_b,
            seed=req.seed_b,
            denoising=req.denoising_b if req.denoising_b is not None else req.denoising,
            guidance=req.guidance_b if req.guidance_b is not None else req.guidance,
        ),
        alpha=req.alpha,
        num_inference_steps=req.steps,
    )
    init = seeds.resolve_seed(seed_image, engine.folder).image
    mask = seeds.resolve_mask(mask_image, engine.folder) if mask_image else None
    return pipe.riffuse(inputs, init, mask_image=mask)


CASES = {
    "alpha-mid-cfg": dict(
        prompt_a="church bells on sunday",
        prompt_b="(jazz piano:1.3) [drums]",
        alpha=0.37,
        seed_a=42,
        seed_b=123,
        steps=8,
        guidance=7.0,
        guidance_b=9.0,
        denoising=0.75,
        denoising_b=0.6,
    ),
    "cfg-off": dict(
        prompt_a="dub bass",
        prompt_b="lofi beat",
        alpha=0.5,
        seed_a=7,
        seed_b=8,
        steps=6,
        guidance=1.0,
        denoising=0.8,
    ),
    "alpha-0": dict(
        prompt_a="techno",
        prompt_b="ambient pad",
        alpha=0.0,
        seed_a=3,
        seed_b=4,
        steps=5,
        guidance=5.0,
        denoising=0.7,
    ),
    "alpha-1": dict(
        prompt_a="techno",
        prompt_b="(ambient pad)",
        alpha=1.0,
        seed_a=3,
        seed_b=4,
        steps=5,
        guidance=5.0,
        denoising=0.7,
    ),
}


@pytest.mark.parametrize("mask", [None, "small_mask"], ids=["no-mask", "mask"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_image_equals_riffusion(riffusion_modules, reference, engine, case, mask):
    from riffpad.engine import RenderRequest

    req = RenderRequest(**CASES[case], seed_image="small_beat", mask_image=mask)
    ours = engine.render(req, audio=False)
    theirs = _riffusion_image(riffusion_modules, reference, engine, req, "small_beat", mask)
    a = np.asarray(ours.image, dtype=np.int16)
    b = np.asarray(theirs, dtype=np.int16)
    assert a.shape == b.shape == (128, 128, 3)
    assert a.std() > 5  # a real picture, not a flat (NaN-cast) one: the comparison means something
    # Same float operations in the same order: the 8-bit images are identical.
    assert np.array_equal(a, b), f"max difference {np.abs(a - b).max()}"
    assert ours.params["cfg"] == (
        req.guidance * (1 - req.alpha) + (req.guidance_b or req.guidance) * req.alpha > 1
    )


PROMPTS = [
    "",
    "dub bass",
    "(dub bass:1.3) with [jazz] piano",
    "((church)) bells [[on sunday]] (funk guitar:0.5)",
    r"escaped \(paren\) and (unbalanced",
    "(slow synth:1.4) " + "ambient pad " * 60,  # 124 tokens: two 77-token chunks
    "techno " * 40,  # 160 tokens: three chunks
]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_weighted_embedding_equals_riffusion(riffusion_modules, reference, engine, prompt):
    import torch

    ours = engine.core.prompts.weighted(prompt)
    theirs = reference.embed_text_weighted(prompt)
    assert ours.shape == theirs.shape
    tokens = len(engine.core.prompts.tokens_with_weights(prompt)[0])
    assert ours.shape[1] == 77 * max(1, -(-tokens // 75))
    assert torch.equal(ours, theirs)


def test_parse_weights_equals_riffusion(riffusion_modules):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from riffpad.engine.prompts import parse_weights

    parse_theirs = importlib.import_module(
        "riffusion.external.prompt_weighting"
    ).parse_prompt_attention
    alphabet = st.sampled_from(list("ab ()[]:\\.1230-+"))

    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet, max_size=24))
    def check(text):
        try:
            theirs = [tuple(r) for r in parse_theirs(text)]
        except ValueError:  # e.g. "(:.)": lpw calls float(".")
            with pytest.raises(ValueError, match="bad prompt weight"):
                parse_weights(text)
            return
        assert parse_weights(text) == theirs

    check()
    assert parse_weights("a (b:1.5) [c]") == [("a ", 1.0), ("b", 1.5), (" ", 1.0), ("c", 1 / 1.1)]


def test_slerp_equals_riffusion(riffusion_modules):
    import torch

    from riffpad.engine.pipeline import slerp

    torch_util = importlib.import_module("riffusion.util.torch_util")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(1, 4, 16, 16, generator=gen)
    b = torch.randn(1, 4, 16, 16, generator=gen)
    for t in (0.0, 0.25, 0.5, 0.9, 1.0):
        assert torch.equal(slerp(t, a, b), torch_util.slerp(t, a, b))
        # Nearly parallel vectors: both fall back to lerp.
        close = a + 1e-3 * b
        assert torch.equal(slerp(t, a, close), torch_util.slerp(t, a, close))
