"""The engine's batched path (``Engine.render_batch``): several clips through one UNet batch,
each equal to its own single render."""

import numpy as np
import pytest

from riffpad.engine import RenderRequest, RequestError

pytestmark = pytest.mark.usefixtures("single_thread")


def pixels(take) -> np.ndarray:
    return np.asarray(take.image.convert("RGB"))


def _unet_batches(engine):
    sizes = []
    unet = engine.core.unet
    handle = unet.register_forward_hook(lambda m, args, out: sizes.append(args[0].shape[0]))
    return sizes, handle


@pytest.mark.parametrize(
    "a, b",
    [
        # Different prompts, seeds, alpha and guidance; same steps, strength and size.
        (
            dict(prompt_a="jazz piano", prompt_b="dub bass", alpha=0.3, seed_a=7, guidance=7.0),
            dict(prompt_a="church bells", alpha=0.8, seed_a=123, guidance=3.5),
        ),
        # Text-to-audio (no seed image), one of them without CFG.
        (
            dict(prompt_a="techno", seed_image=None, guidance=1.0, seed_a=1),
            dict(prompt_a="lofi beat", seed_image=None, guidance=1.0, seed_a=2, alpha=0.5),
        ),
    ],
)
def test_a_batch_of_two_equals_two_single_renders(engine, a, b):
    requests = [RenderRequest(steps=4, denoising=0.5, **kw) for kw in (a, b)]
    singles = [engine.render(r) for r in requests]
    sizes, hook = _unet_batches(engine)
    try:
        batched = engine.render_batch(requests)
    finally:
        hook.remove()
    cfg = 2 if requests[0].guidance > 1 else 1
    assert sizes and set(sizes) == {2 * cfg}  # one UNet batch holding both clips
    for one, both in zip(singles, batched, strict=True):
        # The same maths; only the UNet's matrix products round differently, because BLAS
        # picks its kernels by batch size (the first difference: 6e-8 in the time embedding).
        diff = np.abs(pixels(one).astype(int) - pixels(both).astype(int))
        assert diff.max() <= 1 and diff.mean() < 1e-3  # a few pixels one 8-bit level apart
        # Griffin-Lim spreads a one-level pixel change over its neighbourhood, but quietly.
        rel = np.linalg.norm(one.audio - both.audio) / np.linalg.norm(one.audio)
        assert rel < 0.1
        assert one.lineage == both.lineage
        assert one.params["unet_calls"] == both.params["unet_calls"]
        assert both.timings["batch"] == 2
    # ... where another clip is a different sound altogether.
    a, b = batched[0].audio, batched[1].audio
    assert np.linalg.norm(a - b) / np.linalg.norm(a) > 0.5


def test_incompatible_requests_are_rendered_in_separate_batches(engine):
    requests = [
        RenderRequest("jazz piano", steps=4, denoising=0.5),
        RenderRequest("jazz piano", steps=4, denoising=0.75),  # another start timestep
        RenderRequest("dub bass", steps=3, denoising=0.5),  # other steps
    ]
    sizes, hook = _unet_batches(engine)
    try:
        takes = engine.render_batch(requests)
    finally:
        hook.remove()
    assert all(t.timings["batch"] == 1 for t in takes)
    assert set(sizes) == {2}  # CFG pairs only, never two clips in one call
    for request, take in zip(requests, takes, strict=True):
        assert np.array_equal(pixels(take), pixels(engine.render(request)))


def test_a_bad_request_fails_alone(engine):
    good = RenderRequest("jazz piano", steps=2, denoising=0.5)
    takes = engine.render_batch([good, RenderRequest("x", seed_image="no-such-seed")])
    assert np.array_equal(pixels(takes[0]), pixels(engine.render(good)))
    assert isinstance(takes[1], ValueError) and "no-such-seed" in str(takes[1])
    masked_no_seed = {"prompt_a": "x", "seed_image": None, "mask_image": "mask_left_half"}
    (bad,) = engine.render_batch([masked_no_seed])
    assert isinstance(bad, RequestError)
