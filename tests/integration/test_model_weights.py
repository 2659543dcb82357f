"""Pickled .bin checkpoints (riffusion-model-v1's layout): loaded through torch's weights-only
unpickler once, converted to safetensors in riffpad's cache, never unpickled again; a pickle
that would run code is refused before it runs; the default seed without seed images."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support.tinymodel import pickle_weights

from riffpad.engine import Engine, ModelError, RenderRequest, seeds, weights

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home / "riffpad"


@pytest.fixture
def bin_model(tiny_model_dir, tmp_path):
    return pickle_weights(shutil.copytree(tiny_model_dir, tmp_path / "bin-model"))


def _pixels(engine: Engine) -> np.ndarray:
    request = RenderRequest("dub bass", seed_image="small_beat", steps=3, denoising=0.6)
    return np.asarray(engine.render(request, audio=False).image, dtype=np.int16)


def test_bin_model_renders_like_its_safetensors_twin(
    tiny_model_dir, bin_model, cache_home, single_thread
):
    assert not list(bin_model.glob("*/*.safetensors"))
    reference = _pixels(Engine.load(tiny_model_dir, device="cpu"))
    from_bin = _pixels(Engine.load(bin_model, device="cpu"))
    assert np.abs(reference - from_bin).max() <= 1
    # The copies live in riffpad's cache, as safetensors, with their source recorded.
    copies = weights.converted_entries()
    assert {c["component"] for c in copies} == {"vae", "unet", "text_encoder"}
    for c in copies:
        assert list(c["path"].glob("*.safetensors")) and c["path"].is_relative_to(cache_home)
        assert c["model"] == str(bin_model)


def test_second_start_reads_the_safetensors_copy_and_never_unpickles(
    bin_model, cache_home, monkeypatch, single_thread
):
    first = _pixels(Engine.load(bin_model, device="cpu"))
    calls = []

    def no_unpickling(*args, **kwargs):
        calls.append(args)
        raise AssertionError("torch.load called on the second start")

    monkeypatch.setattr(torch, "load", no_unpickling)
    monkeypatch.setattr(torch.serialization, "load", no_unpickling)
    dirs = weights.load_dirs(bin_model)
    assert all(d.is_relative_to(cache_home / "converted") for d in dirs.values())
    second = _pixels(Engine.load(bin_model, device="cpu"))
    assert calls == [] and np.array_equal(first, second)


def test_changed_bin_is_converted_again(bin_model, cache_home):
    comp = weights.component(bin_model, "vae")
    before = weights.conversion_key(comp)
    state = torch.load(comp.files[0], weights_only=True)
    state[next(iter(state))] += 1
    torch.save(state, comp.files[0])
    assert weights.conversion_key(weights.component(bin_model, "vae")) != before


class Payload:
    """Unpickling this calls ``open(marker, "w")``: code from the file runs."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_refused_and_its_code_never_runs(bin_model, cache_home, tmp_path):
    unet_bin = bin_model / "unet" / "diffusion_pytorch_model.bin"
    state = torch.load(unet_bin, weights_only=True)
    marker = tmp_path / "pwned"
    torch.save({**state, "evil": Payload(marker)}, unet_bin)
    # The payload is real: an unrestricted load runs it.
    probe = tmp_path / "probe"
    torch.save({"evil": Payload(probe)}, tmp_path / "probe.bin")
    torch.load(tmp_path / "probe.bin", weights_only=False)
    assert probe.exists()

    with pytest.raises(ModelError) as err:
        Engine.load(bin_model, device="cpu")
    message = str(err.value)
    assert str(unet_bin) in message and "refused" in message and "could run code" in message
    assert not marker.exists()
    assert not any(c["component"] == "unet" for c in weights.converted_entries())


def _hf_snapshot(model: Path, hf_home: Path, repo: str) -> Path:
    """``model`` laid out in a Hugging Face cache as huggingface_hub writes it: content in
    blobs/<sha256>, symlinks from snapshots/<commit>/, refs/main naming the commit."""
    repo_dir = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    commit = "c0ffee" * 6 + "c0ff"
    snap = repo_dir / "snapshots" / commit
    (repo_dir / "blobs").mkdir(parents=True)
    for f in sorted(model.rglob("*")):
        if f.is_file():
            data = f.read_bytes()
            blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            link = snap / f.relative_to(model)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    return snap


@pytest.mark.slow
def test_offline_render_of_bin_riffusion_snapshot_without_seed_images(bin_model, tmp_path):
    shutil.rmtree(bin_model / "seed_images")
    hf_home = tmp_path / "hf"
    _hf_snapshot(bin_model, hf_home, "riffusion/riffusion-model-v1")
    env = dict(os.environ, HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env.pop("HF_HUB_CACHE", None)
    out = tmp_path / "take"
    cmd = [sys.executable, "-m", "riffpad", "render", "--prompt-a", "X", "--no-audio"]
    done = subprocess.run(
        [*cmd, "--out", str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    params = json.loads(Path(f"{out}.json").read_text())["params"]
    assert (
        params["seed_image"] == "builtin:beat" and params["model"] == "riffusion/riffusion-model-v1"
    )
    assert Path(f"{out}.png").is_file()
    assert "accelerate" not in done.stderr and "Traceback" not in done.stderr


def test_first_run_offline_says_what_to_do(tmp_path):
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = str(ROOT)
    env.pop("HF_HUB_CACHE", None)
    cmd = [sys.executable, "-m", "riffpad", "render", "--prompt-a", "X", "--no-audio"]
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path / "t")], env=env, capture_output=True, text=True, timeout=300
    )
    text = done.stderr
    assert done.returncode == 1
    assert "riffusion/riffusion-model-v1 is not downloaded yet" in text
    assert "about 4.3 GB" in text and str(tmp_path / "hf") in text
    assert "riffpad model pull" in text and "--model PATH" in text
    assert "Traceback" not in text and "LocalEntryNotFoundError" not in text


def test_default_seed_is_og_beat_or_a_builtin_never_a_mask(tmp_path):
    folder = tmp_path / "m"
    (folder / "seed_images").mkdir(parents=True)
    from PIL import Image

    Image.new("L", (8, 8)).save(folder / "seed_images" / "mask_beat_lines_80.png")
    Image.new("L", (8, 8)).save(folder / "seed_images" / "agile.png")
    assert seeds.default_seed(folder) == "builtin:beat"
    assert "mask_beat_lines_80" not in seeds.seed_names(folder)
    assert seeds.resolve_seed("default", folder).label == "builtin:beat"
    Image.new("L", (8, 8)).save(folder / "seed_images" / "og_beat.png")
    assert seeds.default_seed(folder) == "og_beat"


def test_builtin_loops_fill_the_clip_in_whole_bars():
    from riffpad.engine import loops

    assert len(loops.LOOPS) >= 4
    feels = {(lp.bars, lp.beats_per_bar) for lp in loops.LOOPS.values()}
    assert len(feels) >= 3  # different metres or bar counts, not one pattern renamed
    clips = {}
    for name, lp in loops.LOOPS.items():
        audio = lp.synth()
        assert audio.shape == (loops.CLIP_SAMPLES,) and audio.dtype == np.float32
        assert lp.bars * lp.beats_per_bar * 60 / lp.bpm == pytest.approx(loops.CLIP_SECONDS)
        # The loop is rhythmic: energy comes in onsets on the beat grid.
        beat = loops.CLIP_SAMPLES / (lp.bars * lp.beats_per_bar)
        frame = 441
        energy = np.add.reduceat(audio.astype(np.float64) ** 2, np.arange(0, len(audio), frame))
        onsets = np.maximum(np.diff(energy), 0)
        on_grid = sum(
            onsets[max(0, round(i * beat / frame) - 2) : round(i * beat / frame) + 3].sum()
            for i in range(lp.bars * lp.beats_per_bar)
        )
        assert on_grid > 0.25 * onsets.sum(), name
        clips[name] = audio
    names = list(clips)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert abs(np.corrcoef(clips[a], clips[b])[0, 1]) < 0.5, (a, b)
    assert seeds.builtin_image("waltz").size == (512, 512)


def test_a_warning_note_is_printed_once(caplog, capsys):
    """ "no audio output" reached the terminal twice: as riffpad's line and again through
    the logging handler. A plain-line note is printed once (and kept at debug level)."""
    import io
    import logging

    from riffpad.instrument.status import Snapshot, StatusView

    buf = io.StringIO()
    view = StatusView(Snapshot(), live=False, stream=buf)
    with caplog.at_level(logging.WARNING):
        view.note("no audio: no device; playing silently", logging.WARNING)
    assert buf.getvalue().count("playing silently") == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_model_import_refuses_a_malicious_ckpt(tmp_path, tiny_model_dir, cache_home):
    from click.testing import CliRunner

    from riffpad.cli import main

    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "evil": Payload(marker)}, ckpt)
    out = tmp_path / "imported"
    args = ["model", "import", str(ckpt), "--config", str(tiny_model_dir), "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert str(ckpt) in result.output and "refused" in result.output
    assert not marker.exists() and not out.exists()


def test_model_import_says_what_it_needs_offline(tmp_path, monkeypatch, cache_home):
    from click.testing import CliRunner
    from huggingface_hub import constants

    from riffpad.cli import main

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"")
    result = CliRunner().invoke(main, ["model", "import", str(ckpt)])
    assert result.exit_code == 1
    assert "riffpad model pull" in result.output and "--config" in result.output


def test_instrument_and_render_start_from_the_same_default_seed(
    tiny_model_dir, tmp_path, monkeypatch, single_thread
):
    """A model whose seed_images/ holds masks and other seeds but no og_beat: the instrument's
    first seed is the built-in beat, as render's, not the first PNG (a mask)."""
    import io

    from riffpad.instrument.settings import Settings
    from riffpad.instrument.status import Snapshot, StatusView
    from riffpad.instrument.wiring import build
    from riffpad.resources import DEMO_CAPTURE

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    folder = shutil.copytree(tiny_model_dir, tmp_path / "no-og")
    (folder / "seed_images" / "og_beat.png").rename(folder / "seed_images" / "agile.png")
    (folder / "seed_images" / "mask_left_half.png").rename(
        folder / "seed_images" / "a_mask_first.png"
    )
    engine = Engine.load(folder, device="cpu")
    opts = Settings(replay=str(DEMO_CAPTURE), no_audio=True, live=False, out=str(tmp_path / "w"))
    inst = build(opts, StatusView(Snapshot(), live=False, stream=io.StringIO()), engine=engine)
    try:
        assert inst.seed_images[0] == "builtin:beat" == engine.default_seed_image()
        take = engine.render(RenderRequest("dub", steps=2, denoising=0.5), audio=False)
        assert take.params["seed_image"] == "builtin:beat"
        assert take.lineage["seed_image"] == "builtin:beat"
    finally:
        inst.worker.close(cancel_pending=True, timeout=0.1)
