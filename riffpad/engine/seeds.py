"""Seed images: where img2img starts from.

A seed is one of
- ``None`` / ``"none"``: no image, pure text-to-audio from noise at full strength;
- ``"builtin:NAME"``: a loop riffpad synthesises itself (``loops.LOOPS``: beat, techno, waltz,
  shuffle, dub; no one else's data);
- ``"default"``: ``og_beat`` when the model has it, else ``builtin:beat`` (``default_seed``);
- a name in the model folder's ``seed_images/`` (riffusion-model-v1: og_beat, agile, marim,
  motorway, vibes; Riffusion's server resolves ids the same way, as ``<id>.png``);
- a path to an image (PNG) or to an audio file, which is turned into a spectrogram seed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from riffpad.audio.clip import CLIP_SAMPLES, CLIP_SECONDS, SAMPLE_RATE
from riffpad.audio.files import AUDIO_SUFFIXES
from riffpad.engine.loops import (  # re-exported: riffpad.engine.seeds.synth_beat etc.
    BEAT_BARS,
    BEAT_BPM,
    LOOPS,
    synth_beat,
)

__all__ = ["BEAT_BARS", "BEAT_BPM", "synth_beat"]

BUILTIN_PREFIX = "builtin:"
BUILTINS = tuple(LOOPS)
DEFAULT_SEED_IMAGE = "og_beat"  # Riffusion's default seed_image_id
DEFAULT_BUILTIN = BUILTIN_PREFIX + "beat"
AUTO = "default"  # a request's seed_image when it names none: see default_seed()
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_NAME = re.compile(r"[\w.-]+")


class SeedError(ValueError):
    """A seed image that cannot be found or read."""


@dataclass(frozen=True)
class Seed:
    image: Image.Image | None
    key: tuple | None  # identifies the image for latent caching; None: don't cache
    label: str


@functools.lru_cache(maxsize=4)
def builtin_image(name: str) -> Image.Image:
    if name not in LOOPS:
        raise SeedError(f"no built-in seed {name!r}; built-ins: {', '.join(BUILTINS)}")
    from riffpad.audio.analysis import image_from_audio

    return image_from_audio(LOOPS[name].synth())


def audio_to_seed(path: Path) -> Image.Image:
    """An audio file's first 5.11 s (mono, 44.1 kHz, zero-padded) as a spectrogram seed."""
    from riffpad.audio.analysis import image_from_audio
    from riffpad.audio.files import read_audio

    try:
        mono = read_audio(path, SAMPLE_RATE)
    except ValueError as exc:
        raise SeedError(str(exc)) from exc
    clip = np.zeros(CLIP_SAMPLES, np.float32)
    n = min(len(mono), CLIP_SAMPLES)
    clip[:n] = mono[:n]
    if not np.any(clip):
        raise SeedError(f"{path}: the first {CLIP_SECONDS:.2f} s are silent")
    return image_from_audio(clip)


def is_plain_name(name: str) -> bool:
    """A bare file stem (no path separators), as image ids in request files must be."""
    return bool(_NAME.fullmatch(name)) and name not in (".", "..")


def seed_names(model_dir: Path | None) -> list[str]:
    """Seeds to play from: the model's seed images (not its masks), then riffpad's loops."""
    folder = Path(model_dir) / "seed_images" if model_dir else None
    pngs = sorted(p.stem for p in folder.glob("*.png")) if folder and folder.is_dir() else []
    named = [n for n in pngs if not n.startswith("mask")]
    return named + [BUILTIN_PREFIX + b for b in BUILTINS]


def default_seed(model_dir: Path | None) -> str:
    """Riffusion's ``og_beat`` when the model folder has it, else riffpad's own beat; never
    whichever PNG happens to come first (Riffusion's seed_images/ holds masks too)."""
    return DEFAULT_SEED_IMAGE if _named_png(DEFAULT_SEED_IMAGE, model_dir) else DEFAULT_BUILTIN


def _named_png(name: str, model_dir: Path | None) -> Path | None:
    """``seed_images/<name>.png`` in the model folder (or ``<name>.png`` at its top)."""
    if model_dir is None or not is_plain_name(name):
        return None
    for candidate in (
        Path(model_dir) / "seed_images" / f"{name}.png",
        Path(model_dir) / f"{name}.png",
    ):
        if candidate.is_file():
            return candidate
    return None


def resolve_seed(spec: str | None, model_dir: Path | None) -> Seed:
    """Turn a seed spec (see module doc) into an image."""
    if spec is None or str(spec).strip().lower() in ("", "none"):
        return Seed(None, None, "none")
    spec = str(spec)
    if spec == AUTO:
        spec = default_seed(model_dir)
    if spec.startswith(BUILTIN_PREFIX):
        name = spec[len(BUILTIN_PREFIX) :]
        return Seed(builtin_image(name).copy(), ("builtin", name), spec)
    path = Path(spec).expanduser()
    named = _named_png(spec, model_dir)
    if named is not None:
        path = named
    elif not path.is_file():
        raise SeedError(
            f"seed image {spec!r} not found: give a file, 'none', or one of "
            f"{', '.join(seed_names(model_dir)) or '(no seed_images/ in the model)'}"
        )
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return Seed(audio_to_seed(path), key, spec)
    try:
        with Image.open(path) as img:
            img.load()
            return Seed(img.convert("RGB"), key, spec)
    except OSError as exc:
        raise SeedError(f"{path}: not an image riffpad can read ({exc})") from exc


def resolve_mask(spec: str | None, model_dir: Path | None) -> Image.Image | None:
    """A mask by name in ``seed_images/`` or by path; white is repainted, black kept."""
    if spec is None or str(spec).strip().lower() in ("", "none"):
        return None
    seed = resolve_seed(spec, model_dir)
    return seed.image
