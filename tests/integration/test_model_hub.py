"""``riffpad model pull/list/info/rm`` against a fake Hub on loopback (HF_ENDPOINT), run as the
user runs them (a subprocess with HF_HOME pointing at a fresh cache)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.fakehub import COMMIT, FakeHub, repo_files
from support.tinymodel import pickle_weights

from riffpad.engine import hub as hubmod

ROOT = Path(__file__).resolve().parents[2]
REPO = "riffusion/riffusion-model-v1"
UNET_BIN = "unet/diffusion_pytorch_model.bin"
# Files the real repo holds that riffpad must not fetch.
DECOYS = {
    "riffusion-model-v1.ckpt": b"c" * 5000,
    "safety_checker/pytorch_model.bin": b"s" * 3000,
    "safety_checker/config.json": b"{}",
    "feature_extractor/preprocessor_config.json": b"{}",
    "unet_traced/unet_traced.pt": b"t" * 2000,
    "unet/diffusion_pytorch_model.fp16.bin": b"h" * 2000,
    "README.md": b"# riffusion",
}


@pytest.fixture(scope="module")
def riffusion_files(tmp_path_factory, tiny_model_dir) -> dict[str, bytes]:
    """riffusion-model-v1 as uploaded in December 2022: .bin weights, no seed images."""
    folder = shutil.copytree(tiny_model_dir, tmp_path_factory.mktemp("r") / "m")
    shutil.rmtree(folder / "seed_images")
    return {**repo_files(pickle_weights(folder)), **DECOYS}


# huggingface_hub writes what it received in 10 MB chunks, so a cut shorter than that resumes
# from 0; the tiny model's files are ~1 MB, so tests shrink the chunk to see a byte resume.
SMALL_CHUNKS = (
    "import huggingface_hub.constants as c; c.DOWNLOAD_CHUNK_SIZE = 65536; "
    "from riffpad.cli import main; main()"
)


# Where no small file system can be mounted (not root): the disk reports 1 MB free.
FULL_DISK = (
    "import shutil; real = shutil.disk_usage; "
    "shutil.disk_usage = lambda p: real(p)._replace(free=1_000_000); "
    "from riffpad.cli import main; main()"
)


def riffpad(
    *args: str,
    home: Path,
    hub: FakeHub | None,
    timeout: float = 600,
    small_chunks: bool = False,
    launcher: str | None = None,
):
    env = dict(os.environ, HF_HOME=str(home / "hf"), XDG_CACHE_HOME=str(home / "xdg"))
    env["PYTHONPATH"] = str(ROOT)
    for name in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_ENDPOINT", "HF_TOKEN"):
        env.pop(name, None)
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    if hub is not None:
        env["HF_ENDPOINT"] = hub.url
    launcher = SMALL_CHUNKS if small_chunks else launcher
    launch = ["-c", launcher] if launcher else ["-m", "riffpad"]
    return subprocess.run(
        [sys.executable, *launch, "model", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_choose_files_takes_one_format_per_component_and_nothing_else():
    names = [
        "model_index.json",
        "v1.ckpt",
        "safety_checker/pytorch_model.bin",
        "unet_traced/unet_traced.pt",
        "scheduler/scheduler_config.json",
        "tokenizer/vocab.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.bin",
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/config.json",
        "vae/diffusion_pytorch_model.bin",
        "vae/diffusion_pytorch_model.fp16.bin",
        "text_encoder/config.json",
        "text_encoder/model-00001-of-00002.safetensors",
        "text_encoder/model-00002-of-00002.safetensors",
        "text_encoder/model.safetensors.index.json",
        "seed_images/og_beat.png",
    ]
    assert hubmod.choose_files(names) == sorted(
        [
            "model_index.json",
            "scheduler/scheduler_config.json",
            "tokenizer/vocab.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.bin",
            "text_encoder/config.json",
            "text_encoder/model-00001-of-00002.safetensors",
            "text_encoder/model-00002-of-00002.safetensors",
            "text_encoder/model.safetensors.index.json",
            "seed_images/og_beat.png",
        ]
    )


@pytest.mark.slow
def test_pull_resumes_a_cut_download_then_list_info_rm(riffusion_files, tmp_path):
    with FakeHub({REPO: riffusion_files}) as hub:
        hub.cut.add(UNET_BIN)
        done = riffpad("pull", home=tmp_path, hub=hub, small_chunks=True)
        assert done.returncode == 0, done.stderr
        size = sum(len(d) for n, d in riffusion_files.items() if n not in DECOYS)
        assert f"{REPO} @ {COMMIT[:12]}" in done.stdout
        assert hubmod.human(size) in done.stdout and "ok: unet" in done.stdout
        # The cut file was fetched again from where it stopped, not from the start.
        half = len(riffusion_files[UNET_BIN]) // 2
        ranges = hub.gets(UNET_BIN)
        assert len(ranges) == 2 and ranges[0] is None
        resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
        assert half - 65536 <= resumed_at <= half
        fetched = {
            p.split("/resolve/")[1].split("/", 1)[1]
            for m, p, _ in hub.log
            if m == "GET" and "/resolve/" in p
        }
        assert not fetched & set(DECOYS)
    snap = tmp_path / "hf" / "hub" / "models--riffusion--riffusion-model-v1" / "snapshots" / COMMIT
    got = (snap / UNET_BIN).read_bytes()
    assert hashlib.sha256(got).digest() == hashlib.sha256(riffusion_files[UNET_BIN]).digest()

    # Everything below works without the Hub.
    listed = riffpad("list", home=tmp_path, hub=None)
    assert listed.returncode == 0, listed.stderr
    assert REPO in listed.stdout and "bin" in listed.stdout and "0 seed images" in listed.stdout
    assert "riffpad safetensors copies" in listed.stdout  # the verify step converted them
    info = riffpad("info", home=tmp_path, hub=None)
    assert info.returncode == 0, info.stderr
    assert f"folder: {snap}" in info.stdout and "unet: bin" in info.stdout
    assert "-> safetensors copy" in info.stdout and "default seed: builtin:beat" in info.stdout

    removed = riffpad("rm", REPO, "--yes", home=tmp_path, hub=None)
    assert removed.returncode == 0, removed.stderr
    assert "3 converted copies" in removed.stdout
    assert not snap.exists() and not list((tmp_path / "xdg" / "riffpad" / "converted").iterdir())
    listed = riffpad("list", home=tmp_path, hub=None)
    assert "no models" in listed.stdout
    again = riffpad("rm", REPO, "--yes", home=tmp_path, hub=None)
    assert again.returncode == 1 and "not in the cache" in again.stderr


@pytest.mark.slow
def test_stopped_pull_keeps_finished_files_and_fetches_only_the_rest(riffusion_files, tmp_path):
    with FakeHub({REPO: riffusion_files}) as hub:
        hub.fail.add(UNET_BIN)
        first = riffpad("pull", "--no-verify", home=tmp_path, hub=hub)
        assert first.returncode == 1
        assert f"pull of {REPO} stopped" in first.stderr and "Traceback" not in first.stderr
        hub.fail.clear()
        second = riffpad("pull", "--no-verify", home=tmp_path, hub=hub)
        assert second.returncode == 0, second.stderr
        assert "already here" in second.stdout
        assert len(hub.gets("vae/diffusion_pytorch_model.bin")) == 1  # not fetched twice
        assert len(hub.gets(UNET_BIN)) >= 1
        bad_rev = riffpad("pull", "--revision", "nope", home=tmp_path, hub=hub)
        assert bad_rev.returncode == 1 and "has no revision 'nope'" in bad_rev.stderr
        no_repo = riffpad("pull", "someone/nothing", home=tmp_path, hub=hub)
        assert no_repo.returncode == 1 and "no model someone/nothing" in no_repo.stderr


@pytest.mark.slow
def test_pull_onto_a_full_disk_is_refused_before_downloading(riffusion_files, tmp_path):
    home = tmp_path / "small"
    home.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(home)]
    mounted = subprocess.run(mount, capture_output=True).returncode == 0  # a real 4 MB disk
    try:
        with FakeHub({REPO: riffusion_files}) as hub:
            done = riffpad("pull", home=home, hub=hub, launcher=None if mounted else FULL_DISK)
            assert done.returncode == 1
            assert "not enough free disk space" in done.stderr and str(home) in done.stderr
            assert not [p for m, p, _ in hub.log if m == "GET" and "/resolve/" in p]
    finally:
        if mounted:
            subprocess.run(["umount", str(home)], check=False)


def test_first_run_with_the_hub_unreachable_says_what_to_do(tmp_path):
    with FakeHub({}) as hub:
        dead = hub.url  # the port is closed once the server stops
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=dead, PYTHONPATH=str(ROOT))
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_HUB_CACHE", None)
    cmd = [sys.executable, "-m", "riffpad", "render", "--prompt-a", "X", "--no-audio"]
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path / "t")], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1
    assert f"{REPO} is not downloaded yet, and could not reach the Hugging Face Hub" in done.stderr
    assert "riffpad model pull" in done.stderr and "--model PATH" in done.stderr
    assert "Traceback" not in done.stderr and "HF_HUB_OFFLINE" not in done.stderr
