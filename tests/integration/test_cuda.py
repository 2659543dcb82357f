"""The engine on a CUDA GPU: Riffusion's image, CUDA graphs, and audio on the device.

Skipped where there is no CUDA device (CI, most machines); run on a GPU machine with
``python -m pytest -m cuda``. The reference is Riffusion 0.0.5's own pipeline on the same
modules (see support/riffusion_ref.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.riffusion_ref import CASES as REFERENCE_CASES

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

# Two of the CPU reference cases: CFG on (prompts blended, both ends' settings) and off.
CASES = {name: REFERENCE_CASES[name] for name in ("alpha-mid-cfg", "cfg-off")}


def _load(model_dir, dtype, **options):
    from riffpad.engine import Engine, EngineOptions

    return Engine.load(model_dir, device="cuda", dtype=dtype, options=EngineOptions(**options))


@pytest.fixture(scope="module", params=["float16", "float32"])
def plain(request, tiny_model_dir):
    """Riffusion's own layout and launch path: contiguous tensors, no graphs."""
    return _load(tiny_model_dir, request.param, channels_last=False, cuda_graphs=False)


def _pixels(image) -> np.ndarray:
    array = np.asarray(image, dtype=np.int16)
    assert array.std() > 5  # a real picture, not a flat (NaN-cast) one
    return array


@pytest.mark.parametrize("mask", [None, "small_mask"], ids=["no-mask", "mask"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_cuda_image_equals_riffusion(plain, case, mask):
    pytest.importorskip("riffusion", reason="reference: pip install --no-deps riffusion==0.0.5")
    from support.riffusion_ref import import_riffusion, riffusion_image, riffusion_pipeline

    from riffpad.engine import RenderRequest, seeds

    modules = import_riffusion()
    pipe = riffusion_pipeline(modules[0], plain.core, plain._schedulers["default"])
    req = RenderRequest(**CASES[case], seed_image="small_beat", mask_image=mask)
    ours = plain.render(req, audio=False)
    init = seeds.resolve_seed("small_beat", plain.folder).image
    mask_img = seeds.resolve_mask(mask, plain.folder) if mask else None
    theirs = riffusion_image(modules, pipe, req, init, mask_img)
    a, b = _pixels(ours.image), _pixels(theirs)
    assert ours.params["device"].startswith("cuda")
    assert np.array_equal(a, b), f"max difference {np.abs(a - b).max()}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_cuda_graphs_replay_the_same_image(plain, tiny_model_dir, case):
    from riffpad.engine import RenderRequest

    graphed = _load(tiny_model_dir, plain.dtype, channels_last=False, cuda_graphs=True)
    req = RenderRequest(**CASES[case], seed_image="small_beat")
    first = graphed.render(req, audio=False)
    again = graphed.render(req, audio=False)  # replays the captured graphs
    unet = graphed.core.graphs["unet"]
    assert unet.captures >= 1 and unet.failures == 0
    assert unet.replays >= 2 * first.params["unet_calls"]
    assert first.params["cuda_graphs"] is True
    eager = plain.render(req, audio=False)
    assert np.array_equal(_pixels(first.image), _pixels(eager.image))
    assert np.array_equal(_pixels(again.image), _pixels(eager.image))


def test_default_cuda_engine_is_close_to_riffusions_layout(tiny_model_dir):
    """channels_last and graphs (the CUDA defaults) may pick other conv kernels: the image
    stays within a few 8-bit levels of the contiguous, eager one."""
    from riffpad.engine import RenderRequest

    default = _load(tiny_model_dir, "float16")
    plain16 = _load(tiny_model_dir, "float16", channels_last=False, cuda_graphs=False)
    assert default.core.graphs
    req = RenderRequest(**CASES["alpha-mid-cfg"], seed_image="small_beat")
    a = _pixels(default.render(req, audio=False).image)
    b = _pixels(plain16.render(req, audio=False).image)
    diff = np.abs(a - b)
    print(f"channels_last+graphs vs contiguous eager: max {diff.max()}, mean {diff.mean():.4f}")
    assert diff.max() <= 8 and diff.mean() < 0.5


def test_cuda_audio_is_deterministic_and_matches_the_cpu():
    from riffpad.audio.analysis import mel_spectrogram, spectrogram_from_image
    from riffpad.audio.mel import mel_spectral_convergence
    from riffpad.audio.synthesis import audio_from_image
    from riffpad.engine import seeds

    image = seeds.builtin_image("beat")
    first = audio_from_image(image, device="cuda")
    again = audio_from_image(image, device="cuda")
    assert np.array_equal(first, again)  # sample for sample
    cpu = audio_from_image(image, device="cpu")
    assert first.shape == cpu.shape and first.dtype == np.float32
    reference = spectrogram_from_image(image)
    err_gpu = mel_spectral_convergence(reference, mel_spectrogram(first, device="cpu"))
    err_cpu = mel_spectral_convergence(reference, mel_spectrogram(cpu, device="cpu"))
    print(f"mel spectral convergence: cuda {err_gpu:.4f}, cpu {err_cpu:.4f}")
    assert abs(err_gpu - err_cpu) < 0.01
