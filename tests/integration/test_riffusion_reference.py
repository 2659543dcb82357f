"""riffpad's image equals the one Riffusion's own pipeline makes (same weights, inputs,
scheduler), to float tolerance. Riffusion 0.0.5 is imported as the reference through the shim
in support/riffusion_ref.py (``pip install --no-deps riffusion==0.0.5``).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from support.riffusion_ref import CASES, import_riffusion, riffusion_image, riffusion_pipeline

pytestmark = pytest.mark.usefixtures("single_thread")

pytest.importorskip("riffusion", reason="reference: pip install --no-deps riffusion==0.0.5")


@pytest.fixture(scope="module")
def riffusion_modules():
    return import_riffusion()


@pytest.fixture(scope="module")
def reference(riffusion_modules, engine):
    """Riffusion's RiffusionPipeline built from the very modules riffpad's engine loaded."""
    return riffusion_pipeline(riffusion_modules[0], engine.core, engine._schedulers["default"])


def _riffusion_image(riffusion_modules, pipe, engine, req, seed_image, mask_image=None):
    from riffpad.engine import seeds

    init = seeds.resolve_seed(seed_image, engine.folder).image
    mask = seeds.resolve_mask(mask_image, engine.folder) if mask_image else None
    return riffusion_image(riffusion_modules, pipe, req, init, mask)


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


@pytest.fixture(scope="module")
def engine16(tiny_model_dir):
    from riffpad.engine import Engine

    return Engine.load(tiny_model_dir, device="cpu", dtype="float16")


@pytest.mark.parametrize("mask", [None, "small_mask"], ids=["no-mask", "mask"])
def test_float16_image_equals_riffusion(riffusion_modules, engine16, mask):
    """The half-precision path (as on CUDA: fp16 noise, fp16 numpy slerp) equals Riffusion's."""
    from riffpad.engine import RenderRequest

    core = engine16.core
    pipe = riffusion_pipeline(riffusion_modules[0], core, engine16._schedulers["default"])
    req = RenderRequest(**CASES["alpha-mid-cfg"], seed_image="small_beat", mask_image=mask)
    ours = engine16.render(req, audio=False)
    assert ours.params["dtype"] == "float16" and core.unet.dtype == torch.float16
    theirs = _riffusion_image(riffusion_modules, pipe, engine16, req, "small_beat", mask)
    a, b = np.asarray(ours.image, dtype=np.int16), np.asarray(theirs, dtype=np.int16)
    assert a.std() > 5
    assert np.array_equal(a, b), f"max difference {np.abs(a - b).max()}"
