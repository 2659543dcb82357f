"""Seed images: where img2img starts from.

A seed is one of
- ``None`` / ``"none"``: no image, pure text-to-audio from noise at full strength;
- ``"builtin:beat"``: a drum and bass loop riffpad synthesises itself (no one else's data);
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

BEAT_BARS = 2  # two bars of 4/4 fill the clip exactly ...
BEAT_BPM = 60 * 4 * BEAT_BARS / CLIP_SECONDS  # ... at 93.93 BPM
BUILTIN_PREFIX = "builtin:"
BUILTINS = ("beat",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_NAME = re.compile(r"[\w.-]+")


class SeedError(ValueError):
    """A seed image that cannot be found or read."""


@dataclass(frozen=True)
class Seed:
    image: Image.Image | None
    key: tuple | None  # identifies the image for latent caching; None: don't cache
    label: str


def synth_beat(
    sample_rate: int = SAMPLE_RATE, samples: int = CLIP_SAMPLES, bars: int = BEAT_BARS
) -> np.ndarray:
    """A dry drum and bass loop in A minor that fills ``samples`` in whole bars of 4/4.

    Kick on 1 and 3 (and the "and" of 3), snare on 2 and 4, closed hats on eighths, a
    sub bass on the eighths following a i-VI-VII-i line. Deterministic (fixed noise seed).
    """
    rng = np.random.default_rng(94)
    out = np.zeros(samples, np.float64)
    beat = samples / (4 * bars)  # samples per quarter note
    t = np.arange(samples) / sample_rate

    def place(start: float, sound: np.ndarray, gain: float) -> None:
        i = round(start)
        n = min(len(sound), samples - i)
        out[i : i + n] += gain * sound[:n]

    def env(length_s: float, decay_s: float) -> np.ndarray:
        n = int(length_s * sample_rate)
        return np.exp(-np.arange(n) / (decay_s * sample_rate))

    # Kick: a sine falling from 150 Hz to 45 Hz.
    k_env = env(0.35, 0.09)
    k_t = np.arange(len(k_env)) / sample_rate
    freq = 45 + 105 * np.exp(-k_t / 0.03)
    kick = np.sin(2 * np.pi * np.cumsum(freq) / sample_rate) * k_env
    # Snare: noise plus a 190 Hz body.
    s_env = env(0.2, 0.05)
    s_t = np.arange(len(s_env)) / sample_rate
    snare = (0.7 * rng.standard_normal(len(s_env)) + 0.5 * np.sin(2 * np.pi * 190 * s_t)) * s_env
    # Hat: differenced noise (bright), very short.
    h_env = env(0.05, 0.012)
    hat = np.diff(rng.standard_normal(len(h_env) + 1)) * h_env

    roots = (55.0, 43.65, 49.0, 55.0)  # A1, F1, G1, A1: one per half bar
    for bar in range(bars):
        for q in range(4):
            pos = (bar * 4 + q) * beat
            if q in (0, 2):
                place(pos, kick, 0.9)
            else:
                place(pos, snare, 0.45)
            for half in (0, 1):
                place(pos + half * beat / 2, hat, 0.12 if half else 0.18)
        place((bar * 4 + 2.5) * beat, kick, 0.6)
    # Bass: eighth notes, a saw-ish tone with a short envelope.
    eighth = beat / 2
    for n in range(8 * bars):
        root = roots[(n // 4) % len(roots)]
        start = round(n * eighth)
        end = min(samples, round((n + 1) * eighth))
        seg = t[start:end] - t[start]
        tone = np.sin(2 * np.pi * root * seg) + 0.3 * np.sin(4 * np.pi * root * seg)
        out[start:end] += 0.35 * tone * np.exp(-seg / 0.18)
    return (out / np.max(np.abs(out)) * 0.9).astype(np.float32)


@functools.lru_cache(maxsize=4)
def builtin_image(name: str) -> Image.Image:
    if name != "beat":
        raise SeedError(f"no built-in seed {name!r}; built-ins: {', '.join(BUILTINS)}")
    from riffpad.audio.analysis import image_from_audio

    return image_from_audio(synth_beat())


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
    folder = Path(model_dir) / "seed_images" if model_dir else None
    named = sorted(p.stem for p in folder.glob("*.png")) if folder and folder.is_dir() else []
    return named + [BUILTIN_PREFIX + b for b in BUILTINS]


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
