"""Engine behaviour on the tiny random-weight model (tests/support/tinymodel.py), loaded through the
same loader as the real model. Small seed images (128 px) keep each render to ~a second."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from riffpad.engine import (
    Engine,
    EngineOptions,
    ModelError,
    RenderRequest,
    RequestError,
    SeedError,
)
from riffpad.engine.pipeline import Blend, Leaf, timestep_plan
from riffpad.engine.wire import request_from_riffusion

pytestmark = pytest.mark.usefixtures("single_thread")

SMALL = dict(seed_image="small_beat", steps=6)


def pixels(take) -> np.ndarray:
    return np.asarray(take.image, dtype=np.int16)


class UNetSpy:
    """Records (batch size, timestep) of every UNet forward through a forward hook."""

    def __init__(self, engine):
        self.calls: list[tuple[int, int]] = []
        self.handle = engine.core.unet.register_forward_hook(self.hook)

    def hook(self, module, args, output):
        sample, t = args[0], args[1]
        self.calls.append((sample.shape[0], int(t)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


# -- loading ---------------------------------------------------------------------------------
def test_loads_real_geometry_and_renders_512(engine):
    assert engine.device == torch.device("cpu") and engine.dtype == torch.float32
    assert engine.core.vae_scale_factor == 8
    assert engine.scheduler_class == "PNDMScheduler"  # the checkpoint's own
    assert {"og_beat", "small_beat", "builtin:beat"} <= set(engine.seed_images())
    from riffpad.engine import seeds

    latents = engine.core.encode_image(seeds.resolve_seed("og_beat", engine.folder).image, 0)
    assert tuple(latents.shape) == (1, 4, 64, 64)
    take = engine.render(RenderRequest("dub bass", steps=2, denoising=0.5), audio=False)
    assert take.image.size == (512, 512) and take.image.mode == "RGB"
    json.dumps(take.params)  # JSON-able
    assert take.params["model_folder"] == str(engine.folder)


def test_loader_refuses_files_and_broken_weights(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not loaded")
    with pytest.raises(ModelError, match="riffpad model import"):
        Engine.load(ckpt, device="cpu")
    # A diffusers folder whose UNet .bin is not a checkpoint: the message names the file.
    folder = tmp_path / "pickled"
    for part in ("vae", "text_encoder", "unet"):
        (folder / part).mkdir(parents=True)
        (folder / part / "config.json").write_text("{}")
    for part in ("vae", "text_encoder"):
        (folder / part / "model.safetensors").write_bytes(b"")
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ModelError, match=r"unet/diffusion_pytorch_model\.bin: not a readable"):
        Engine.load(folder, device="cpu")
    with pytest.raises(ModelError, match="no such folder"):
        Engine.load(tmp_path / "missing" / "model", device="cpu")


def test_device_and_dtype_choice():
    from riffpad.engine import loader

    assert loader.pick_dtype(torch.device("cpu")) == torch.float32
    assert loader.pick_dtype(torch.device("cuda")) == torch.float16
    assert loader.pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="no CUDA"):
            loader.pick_device("cuda")
    with pytest.raises(ModelError, match="unknown dtype"):
        loader.pick_dtype(torch.device("cpu"), "float8")


# -- blending --------------------------------------------------------------------------------
def test_alpha_0_is_prompt_a_alone(engine):
    blend = engine.render(RenderRequest("dub bass", "jazz piano", 0.0, 5, 9, **SMALL), audio=False)
    a_only = engine.render(RenderRequest("dub bass", "dub bass", 0.0, 5, 5, **SMALL), audio=False)
    b_only = engine.render(
        RenderRequest("jazz piano", "jazz piano", 0.0, 5, 5, **SMALL), audio=False
    )
    assert np.array_equal(pixels(blend), pixels(a_only))
    assert not np.array_equal(pixels(blend), pixels(b_only))


def test_alpha_1_is_prompt_b_alone(engine):
    # Riffusion samples the seed image's VAE posterior with the start seed at any alpha, so a
    # B-only render shares seed A; the text-to-audio case below covers the noise side.
    req = RenderRequest("dub bass", "jazz piano", 1.0, 5, 5, guidance=3.0, guidance_b=9.0, **SMALL)
    b_only = RenderRequest("jazz piano", "jazz piano", 0.0, 5, 5, guidance=9.0, **SMALL)
    diff = np.abs(
        pixels(engine.render(req, audio=False)) - pixels(engine.render(b_only, audio=False))
    )
    assert diff.max() <= 1  # lerp(a, b, 1) = a + (b - a): b up to float rounding


def test_alpha_1_text_to_audio_is_b_alone(engine):
    common = dict(seed_image=None, steps=4, width=128, height=128)
    req = RenderRequest("dub bass", "jazz piano", 1.0, 5, 11, **common)
    b_only = RenderRequest("jazz piano", "jazz piano", 0.0, 11, 11, **common)
    take = engine.render(req, audio=False)
    # Every timestep runs; PNDM (skip_prk_steps) has steps + 1 of them, as in diffusers' txt2img.
    assert take.params["unet_calls"] == len(engine.core.scheduler.timesteps) == 5
    assert take.image.size == (128, 128)
    diff = np.abs(pixels(take) - pixels(engine.render(b_only, audio=False)))
    assert diff.max() <= 1


def test_alpha_mid_differs_from_both_ends(engine):
    ends = [
        pixels(
            engine.render(RenderRequest("dub bass", "jazz piano", a, 5, 9, **SMALL), audio=False)
        )
        for a in (0.0, 0.5, 1.0)
    ]
    assert not np.array_equal(ends[1], ends[0]) and not np.array_equal(ends[1], ends[2])


def test_same_inputs_same_output(engine, tiny_model_dir):
    req = RenderRequest("(funk guitar:1.2)", "techno", 0.3, 17, 18, **SMALL)
    first = engine.render(req, audio=False)  # may fill the noise/latent caches
    second = engine.render(req, audio=False)  # served from them
    uncached = Engine.load(tiny_model_dir, device="cpu", options=EngineOptions(cache=False))
    fresh = uncached.render(req, audio=False)
    assert np.array_equal(pixels(first), pixels(second))
    assert np.array_equal(pixels(first), pixels(fresh))
    other_seed = engine.render(
        RenderRequest("(funk guitar:1.2)", "techno", 0.3, 99, 18, **SMALL), audio=False
    )
    assert not np.array_equal(pixels(first), pixels(other_seed))


def test_prompt_weight_changes_the_image(engine):
    plain = engine.render(RenderRequest("dub bass", **SMALL), audio=False)
    weighted = engine.render(RenderRequest("(dub bass:1.5) jazz", **SMALL), audio=False)
    assert not np.array_equal(pixels(plain), pixels(weighted))


# -- promote ---------------------------------------------------------------------------------
def test_promote_then_render_reproduces_from_lineage(engine):
    first = RenderRequest("church bells", "jazz piano", 0.4, 1, 2, **SMALL)
    take1 = engine.render(first, audio=False)
    new_a = engine.promote(first)
    assert new_a == Blend(Leaf("church bells", 1), Leaf("jazz piano", 2), 0.4)

    # At alpha 0 the promoted A *is* the earlier blend: same embedding, noise, image.
    again = engine.render(RenderRequest(new_a, "funk guitar", 0.0, 123, 7, **SMALL), audio=False)
    assert np.array_equal(pixels(again), pixels(take1))

    # Promote twice, render, and reproduce from the JSON lineage alone.
    second = RenderRequest(new_a, "funk guitar", 0.6, 123, 7, **SMALL)
    third = RenderRequest(engine.promote(second), "techno", 0.25, 0, 8, **SMALL)
    take3 = engine.render(third, audio=False)
    lineage = json.loads(json.dumps(take3.lineage))
    assert lineage["prompt_a"]["a"]["a"] == {"prompt": "church bells", "seed": 1}
    assert lineage["prompt_a"]["b"] == {"prompt": "funk guitar", "seed": 7}
    assert lineage["prompt_b"] == "techno" and lineage["seed_b"] == 8
    replay = engine.render(lineage, audio=False)
    assert np.array_equal(pixels(replay), pixels(take3))
    assert replay.lineage == take3.lineage


def test_promoted_noise_is_slerp_of_parents(engine):
    from riffpad.engine.pipeline import slerp

    shape = (1, 4, 16, 16)
    blend = Blend(Leaf("a", 1), Leaf("b", 2), 0.3)
    core = engine.core
    expected = slerp(0.3, core.seed_noise(1, shape), core.seed_noise(2, shape))
    assert torch.equal(core.noise(blend, shape), expected)
    nested = Blend(blend, Leaf("c", 3), 0.5)
    assert torch.equal(core.noise(nested, shape), slerp(0.5, expected, core.seed_noise(3, shape)))
    ea, eb = core.embedding(Leaf("a", 1)), core.embedding(Leaf("b", 2))
    assert torch.equal(core.embedding(blend), ea + 0.3 * (eb - ea))


# -- guidance and timesteps ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("guidance", "guidance_b", "alpha", "batch"),
    [(1.0, None, 0.0, 1), (0.5, None, 0.0, 1), (1.5, None, 0.0, 2), (1.0, 3.0, 0.1, 2)],
)
def test_cfg_only_above_guidance_1(engine, guidance, guidance_b, alpha, batch):
    req = RenderRequest(
        "dub bass", "jazz", alpha, 1, 2, guidance=guidance, guidance_b=guidance_b, **SMALL
    )
    with UNetSpy(engine) as spy:
        take = engine.render(req, audio=False)
    assert spy.calls and {b for b, _ in spy.calls} == {batch}
    assert take.params["cfg"] is (batch == 2)


@pytest.mark.parametrize(
    ("steps", "denoising", "calls"), [(50, 0.75, 38), (20, 0.5, 11), (10, 1.0, 10), (4, 0.1, 1)]
)
def test_unet_calls_as_riffusion_computes(engine, steps, denoising, calls):
    # Riffusion (PNDM, steps_offset 1): init_timestep = min(int(steps*strength)+1, steps),
    # noise at timesteps[-init_timestep], run timesteps[steps - init_timestep + 1:].
    req = RenderRequest("dub bass", steps=steps, denoising=denoising, seed_image="small_beat")
    with UNetSpy(engine) as spy:
        take = engine.render(req, audio=False)
    sched = engine.core.scheduler
    init_timestep, t_start = timestep_plan(sched, steps, denoising)
    assert init_timestep == min(int(steps * denoising) + 1, steps)
    assert len(spy.calls) == calls == take.params["unet_calls"]
    assert [t for _, t in spy.calls] == [int(t) for t in sched.timesteps[t_start:]]


def test_denoising_interpolates_by_alpha(engine):
    req = RenderRequest(
        "dub",
        "jazz",
        0.5,
        1,
        2,
        steps=50,
        denoising=0.2,
        denoising_b=0.8,
        seed_image="small_beat",
        guidance=1.0,
    )
    take = engine.render(req, audio=False)
    assert take.params["denoising_used"] == pytest.approx(0.5)
    assert take.params["unet_calls"] == 26  # int(50*0.5)+1


# -- schedulers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("dpm++", "DPMSolverMultistepScheduler"),
        ("euler", "EulerDiscreteScheduler"),
        ("ddim", "DDIMScheduler"),
        ("pndm", "PNDMScheduler"),
    ],
)
def test_scheduler_selection(engine, name, cls):
    base = RenderRequest("dub bass", **SMALL)
    take = engine.render(RenderRequest("dub bass", scheduler=name, **SMALL), audio=False)
    assert take.params["scheduler_class"] == cls and take.params["scheduler"] == name
    assert take.lineage["scheduler"] == name
    if name != "pndm":
        assert not np.array_equal(pixels(take), pixels(engine.render(base, audio=False)))
    # The request's scheduler is for that render only; the engine default stays.
    assert engine.render(base, audio=False).params["scheduler_class"] == "PNDMScheduler"
    # The config is the checkpoint's (betas), not the class default.
    sched = engine._schedulers[name]
    assert sched.config.beta_schedule == "scaled_linear" and sched.config.beta_end == 0.012


def test_unknown_scheduler(engine):
    with pytest.raises(ModelError, match=r"unknown scheduler .heun.*dpm\+\+"):
        engine.render(RenderRequest("x", scheduler="heun", **SMALL), audio=False)


# -- seeds and masks -------------------------------------------------------------------------
def test_mask_keeps_black_and_repaints_white(engine):
    base = dict(prompt_a="dub bass", prompt_b="jazz", alpha=0.5, steps=6, seed_image="small_beat")
    plain = engine.render(RenderRequest(**base), audio=False)
    masked = engine.render(RenderRequest(**base, mask_image="small_mask"), audio=False)
    assert not np.array_equal(pixels(plain), pixels(masked))


def test_seed_image_path_and_errors(engine, tiny_model_dir, tmp_path):
    path = tiny_model_dir / "seed_images" / "small_beat.png"
    by_path = engine.render(RenderRequest("dub", seed_image=str(path), steps=4), audio=False)
    by_name = engine.render(RenderRequest("dub", seed_image="small_beat", steps=4), audio=False)
    assert np.array_equal(pixels(by_path), pixels(by_name))
    with pytest.raises(SeedError, match=r"not found.*small_beat"):
        engine.render(RenderRequest("dub", seed_image="no_such_seed"), audio=False)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(SeedError, match=r"broken\.png"):
        engine.render(RenderRequest("dub", seed_image=str(bad)), audio=False)
    with pytest.raises(RequestError, match="mask needs a seed image"):
        engine.render(RenderRequest("dub", seed_image=None, mask_image="small_mask"), audio=False)
    with pytest.raises(RequestError, match="same size"):
        engine.render(RenderRequest("dub", seed_image="small_beat", mask_image="mask_left_half"))


def test_warmup(engine):
    seconds = engine.warmup()
    assert seconds > 0 and engine.warmup_seconds == seconds


# -- request validation and Riffusion's request format ---------------------------------------
README_REQUEST = {
    "alpha": 0.75,
    "num_inference_steps": 50,
    "seed_image_id": "og_beat",
    "start": {"prompt": "church bells on sunday", "seed": 42, "denoising": 0.75, "guidance": 7.0},
    "end": {"prompt": "jazz with piano", "seed": 123, "denoising": 0.75, "guidance": 7.0},
}


def test_riffusion_request_parses():
    req = request_from_riffusion(README_REQUEST)
    assert (req.prompt_a, req.seed_a, req.prompt_b, req.seed_b) == (
        "church bells on sunday",
        42,
        "jazz with piano",
        123,
    )
    assert (req.alpha, req.steps, req.seed_image, req.mask_image) == (0.75, 50, "og_beat", None)
    # Defaults as Riffusion's datatypes: denoising 0.75, guidance 7, 50 steps, og_beat.
    minimal = request_from_riffusion(
        {
            "alpha": 1,
            "start": {"prompt": "a", "seed": 1},
            "end": {"prompt": "b", "seed": 2},
            "mask_image_id": "",
            "extra": "ignored",
        }
    )
    assert (minimal.denoising, minimal.guidance, minimal.steps) == (0.75, 7.0, 50)
    assert minimal.seed_image == "default" and minimal.mask_image is None  # og_beat if there


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"start": {"prompt": "a"}}, "start.seed is missing"),
        ({"end": None}, "end must be dict"),
        ({"alpha": None}, "alpha must be int or float"),
        ({"alpha": "half"}, "alpha must be int or float"),
        ({"alpha": 1.5}, r"alpha must be within \[0.0, 1.0\]"),
        ({"num_inference_steps": 2.5}, "num_inference_steps must be int"),
        ({"start": {"prompt": "a", "seed": True}}, "start.seed must be int"),
        ({"seed_image_id": "../../etc/passwd"}, "seed_image_id must name a PNG"),
    ],
)
def test_riffusion_request_errors(patch, message):
    data = json.loads(json.dumps(README_REQUEST)) | patch
    with pytest.raises(RequestError, match=message):
        request_from_riffusion(data)
    missing = {k: v for k, v in README_REQUEST.items() if k != "alpha"}
    with pytest.raises(RequestError, match="alpha is missing"):
        request_from_riffusion(missing)


def test_render_request_validation():
    with pytest.raises(RequestError, match="denoising"):
        RenderRequest("a", denoising=1.5)
    with pytest.raises(RequestError, match="steps"):
        RenderRequest("a", steps=0)
    with pytest.raises(RequestError, match="unknown request field"):
        RenderRequest.from_dict({"prompt_a": "a", "colour": "red"})
    with pytest.raises(RequestError, match="bad promoted blend"):
        RenderRequest.from_dict({"prompt_a": {"a": {"prompt": "x"}}})
    req = RenderRequest("a", seed_a=10)
    assert req.b == Leaf("a", 11)  # prompt B defaults to A, seed B to seed A + 1
    assert RenderRequest.from_dict(req.to_dict()) == RenderRequest("a", "a", seed_a=10, seed_b=11)


# -- CLI -------------------------------------------------------------------------------------
def test_cli_request_file_errors_name_the_file(tmp_path):
    from click.testing import CliRunner

    from riffpad.cli import main

    bad = tmp_path / "req.json"
    bad.write_text(json.dumps({"alpha": 0.5, "start": {"prompt": "a"}, "end": {}}))
    result = CliRunner().invoke(main, ["render", "--request", str(bad)])
    assert result.exit_code == 2
    assert "req.json: start.seed is missing" in result.output
    bad.write_text('{"alpha": 0.5,\n "start": }')
    result = CliRunner().invoke(main, ["render", "--request", str(bad)])
    assert result.exit_code == 2 and "req.json: line 2 column" in result.output


def test_cli_render_writes_png_and_json(tmp_path, tiny_model_dir):
    from click.testing import CliRunner

    from riffpad.cli import main

    out = tmp_path / "clips" / "take1"
    args = [
        "render",
        "--model",
        str(tiny_model_dir),
        "--torch-device",
        "cpu",
        "--prompt-a",
        "dub",
        "--prompt-b",
        "jazz",
        "--alpha",
        "0.5",
        "--seed-a",
        "3",
        "--steps",
        "4",
        "--seed-image",
        "small_beat",
        "--scheduler",
        "ddim",
        "--out",
        str(out),
        "--no-audio",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads(Path(f"{out}.json").read_text())
    params = record["params"]
    assert params["seed_b"] == 4 and params["scheduler_class"] == "DDIMScheduler"
    assert params["model"] == str(tiny_model_dir) and params["device"] == "cpu"
    assert "diffusion_s" in record["timings"] and "load_s" in record["timings"]
    from PIL import Image

    with Image.open(f"{out}.png") as img:
        assert img.format == "PNG" and img.size == (128, 128)
    assert not list(out.parent.glob(".*"))  # no temporary files left behind


# -- built-in and audio seeds ----------------------------------------------------------------
def test_builtin_beat_fills_the_clip_in_whole_bars():
    from riffpad.audio import clip
    from riffpad.engine import seeds

    audio = seeds.synth_beat()
    assert audio.dtype == np.float32 and audio.shape == (clip.CLIP_SAMPLES,) == (225351,)
    assert clip.CLIP_SECONDS == pytest.approx(5.11)
    # Two bars of 4/4 at the stated tempo span the clip exactly.
    assert seeds.BEAT_BARS * 4 * 60 / seeds.BEAT_BPM == pytest.approx(clip.CLIP_SECONDS)
    assert round(seeds.BEAT_BPM, 2) == 93.93
    assert 0.5 < np.abs(audio).max() <= 0.9 + 1e-6
    assert np.array_equal(audio, seeds.synth_beat())  # deterministic
    # Onsets on the beat grid: each quarter note starts louder than the 30 ms before it.
    beat = clip.CLIP_SAMPLES / (4 * seeds.BEAT_BARS)
    win = int(0.03 * clip.SAMPLE_RATE)
    for q in range(1, 4 * seeds.BEAT_BARS):
        i = round(q * beat)
        before = np.sqrt(np.mean(audio[i - win : i] ** 2))
        after = np.sqrt(np.mean(audio[i : i + win] ** 2))
        assert after > 1.5 * before, q


def test_builtin_and_audio_seeds_become_spectrograms(engine, tmp_path):
    import soundfile

    from riffpad.engine import seeds

    image = seeds.resolve_seed("builtin:beat", engine.folder).image
    assert image.size == (512, 512) and image.mode == "RGB"
    take = engine.render(
        RenderRequest("dub", seed_image="builtin:beat", steps=2, denoising=0.5), audio=False
    )
    assert take.image.size == (512, 512)
    # A user's audio file (stereo, 22.05 kHz, shorter than a clip) becomes a seed too.
    wav = tmp_path / "loop.wav"
    t = np.arange(22050 * 3) / 22050
    soundfile.write(wav, np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1) * 0.5, 22050)
    from_audio = seeds.resolve_seed(str(wav), engine.folder).image
    assert from_audio.size == (512, 512)
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(1000), 44100)
    with pytest.raises(SeedError, match="silent"):
        seeds.resolve_seed(str(silent), engine.folder)


def test_hub_id_loads_from_cache_without_network(tiny_model_dir, tmp_path, monkeypatch):
    """A Hub model already in the Hugging Face cache loads offline, via the same loader."""
    import shutil

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "hub" / "models--riffpad-test--tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    engine = Engine.load("riffpad-test/tiny", device="cpu", cache_dir=tmp_path / "hub")
    assert engine.folder == repo / "snapshots" / commit
    assert "og_beat" in engine.seed_images()
    with pytest.raises(ModelError, match=r"(?s)riffpad-test/missing is not downloaded.*model pull"):
        Engine.load("riffpad-test/missing", device="cpu", cache_dir=tmp_path / "hub")


def test_cli_request_file_renders_like_riffusion_server(tmp_path, tiny_model_dir):
    from click.testing import CliRunner

    from riffpad.cli import main

    body = json.loads(json.dumps(README_REQUEST))
    body |= {"num_inference_steps": 5, "seed_image_id": "small_beat"}
    body["mask_image_id"] = "small_mask"
    req_file = tmp_path / "request.json"
    req_file.write_text(json.dumps(body))
    out = tmp_path / "served"
    args = [
        "render",
        "--model",
        str(tiny_model_dir),
        "--torch-device",
        "cpu",
        "--request",
        str(req_file),
        "--out",
        str(out),
        "--no-audio",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    params = json.loads(Path(f"{out}.json").read_text())["params"]
    assert (params["prompt_a"], params["seed_a"]) == ("church bells on sunday", 42)
    assert (params["prompt_b"], params["seed_b"], params["alpha"]) == ("jazz with piano", 123, 0.75)
    assert params["mask_image"] == "small_mask" and params["steps"] == 5
    assert params["unet_calls"] == 4  # min(int(5 * 0.75) + 1, 5) = 4
    body["seed_image_id"] = "nope"
    req_file.write_text(json.dumps(body))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "seed image 'nope' not found" in result.output


def test_long_prompt_blends_with_short_one(engine):
    """Riffusion cannot concatenate a >75-token prompt with a 77-token one; riffpad encodes
    every prompt of the blend (and the unconditional one) at the longest chunk count."""
    long_prompt = "techno " * 40  # 160 tokens of the tiny vocab: three 77-token chunks
    blend = RenderRequest(long_prompt, "dub", 0.5, 1, 2, **SMALL).blend
    assert engine.core.chunks(blend) == 3
    assert engine.core.embedding(blend, 3).shape == (1, 231, 32)
    assert engine.core.prompts.unconditional(3).shape == (1, 231, 32)
    with UNetSpy(engine) as spy:
        take = engine.render(RenderRequest(long_prompt, "dub", 0.5, 1, 2, **SMALL), audio=False)
    assert take.params["cfg"] and {b for b, _ in spy.calls} == {2}


def test_take_audio_and_cli_wav(engine, tmp_path, tiny_model_dir):
    """Spectrogram to audio is engine-audio's; the engine hands every take through it."""
    import soundfile
    from click.testing import CliRunner

    from riffpad.cli import main

    take = engine.render(RenderRequest("dub", seed_image="short_beat", steps=4))
    assert take.image.size == (64, 512)
    assert take.audio.dtype == np.float32 and take.audio.ndim == 1
    assert take.sample_rate == 44100 and len(take.audio) == 441 * (64 - 1)
    assert np.abs(take.audio).max() > 0 and "audio_s" in take.timings

    out = tmp_path / "wav" / "clip"
    args = [
        "render",
        "--model",
        str(tiny_model_dir),
        "--torch-device",
        "cpu",
        "--prompt-a",
        "dub",
        "--steps",
        "4",
        "--seed-image",
        "short_beat",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    data, rate = soundfile.read(f"{out}.wav")
    assert rate == 44100 and data.ndim == 1 and len(data) == 441 * 63
    assert json.loads(Path(f"{out}.json").read_text())["files"]["wav"] == "clip.wav"
    from PIL import Image

    from riffpad.audio.params import ExifTags, SpectrogramParams, params_from_image

    with Image.open(f"{out}.png") as img:  # lossless, and tagged like Riffusion's images
        assert img.format == "PNG"
        # The CLI rendered the same request as `take` above, on a fresh load of the model.
        assert np.array_equal(np.asarray(img.convert("RGB")), np.asarray(take.image))
        assert ExifTags.SAMPLE_RATE in img.getexif()
        assert params_from_image(img) == SpectrogramParams()


def test_unreadable_audio_seed_names_the_file(engine, tmp_path):
    from riffpad.engine import seeds

    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF....WAVEnot audio")
    with pytest.raises(SeedError, match=r"noise\.wav"):
        seeds.resolve_seed(str(bad), engine.folder)


def test_cli_render_usage_errors(tmp_path):
    from click.testing import CliRunner

    from riffpad.cli import main

    result = CliRunner().invoke(main, ["render"])
    assert result.exit_code == 2 and "give --prompt-a" in result.output
    missing = tmp_path / "no-model"
    result = CliRunner().invoke(main, ["render", "-a", "dub", "--model", str(missing)])
    assert result.exit_code == 1 and "no such folder" in result.output
    pickled = tmp_path / "weights.ckpt"
    pickled.write_bytes(b"x")
    result = CliRunner().invoke(main, ["render", "-a", "dub", "--model", str(pickled)])
    assert result.exit_code == 1 and "riffpad model import" in result.output
    result = CliRunner().invoke(main, ["render", "-a", "dub", "--alpha", "2"])
    assert result.exit_code == 2 and "--alpha" in result.output


def test_a_cut_prompt_is_said_in_riffpads_words_and_recorded(engine, caplog, capfd):
    """A 5,000-character prompt used to render after only transformers' own "(1298 > 77)"
    warning; riffpad now says how much of it it uses, and the take records it."""
    long_prompt = "dub " * 1250 + "piano"  # 1,251 tokens of the tiny vocab, 5,005 characters
    assert len(long_prompt) > 5000
    engine.core.tokenizer.deprecation_warnings.clear()  # transformers warns once per tokenizer
    capfd.readouterr()
    with caplog.at_level("WARNING", logger="riffpad.engine"):
        take = engine.render(RenderRequest(long_prompt, "piano", 0.5, 1, 2, **SMALL), audio=False)
    said = [r.getMessage() for r in caplog.records if r.name == "riffpad.engine"]
    assert len(said) == 1
    assert "is 1251 tokens long; riffpad uses the first 225 (3 chunks of 75)" in said[0]
    assert "ignores the rest, from 'dub dub dub" in said[0]
    assert "Token indices sequence length" not in capfd.readouterr().err
    assert take.params["prompt_tokens"] == [
        {"tokens": 1251, "used": 225, "cut": True},
        {"tokens": 1, "used": 1, "cut": False},
    ]
    # Said once per prompt, not per render.
    caplog.clear()
    with caplog.at_level("WARNING", logger="riffpad.engine"):
        engine.render(RenderRequest(long_prompt, "piano", 0.25, 1, 2, **SMALL), audio=False)
    assert not [r for r in caplog.records if r.name == "riffpad.engine"]
    usage = engine.core.prompts.usage("dub " * 75)
    assert (usage.tokens, usage.used, usage.cut) == (75, 75, False)
