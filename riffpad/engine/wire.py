"""Riffusion's server wire format, both ways, as pure functions (no Ray, no sockets).

Request: Riffusion's ``InferenceInput`` (riffusion/datatypes.py) -> RenderRequest, plus one
riffpad field under its own name:

- ``riffpad_request``: the complete RenderRequest (``RenderRequest.to_dict()``, a take's
  lineage): promoted prompts, scheduler, seed image by riffpad name (``builtin:beat``,
  ``none``), size. riffpad's client sends it next to Riffusion's fields, which it fills
  with the same values; a server rejects the pair if they disagree, so Riffusion's fields
  always keep their meaning.

Answer: Riffusion's ``InferenceOutput`` ``{"image", "audio", "duration_s"}`` with data URLs
(riffpad: lossless PNG with the spectrogram EXIF tags and 32-bit float WAV), plus ``params``,
``timings``, ``lineage`` and ``sample_rate``. ``decode_output`` also reads Riffusion's own
answers (JPEG and MP3) by their MIME types.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from riffpad.engine import seeds
from riffpad.engine.engine import RenderRequest, RequestError
from riffpad.engine.pipeline import start_seed

EXTRA = "riffpad_request"
MAX_SIDE = 2048  # a server renders no bigger image than this (memory), whatever is asked
IMAGE_TYPES = {"image/png", "image/jpeg", "image/jpg", "image/webp"}
AUDIO_TYPES = {"audio/wav", "audio/x-wav", "audio/wave", "audio/mpeg", "audio/mp3", "audio/flac"}


class WireError(ValueError):
    """An answer riffpad cannot read (not JSON of the right shape, an undecodable payload)."""


# -- requests -----------------------------------------------------------------------------


def _remote_seed(name: str, value: str | None) -> None:
    """A server reads seed images by name only: never a path on its own disk."""
    if value is None or value.strip().lower() in ("", "none"):
        return
    if value.startswith(seeds.BUILTIN_PREFIX) or seeds.is_plain_name(value):
        return
    raise RequestError(
        f"{name} must name an image in the server's seed_images/, builtin:beat or none, "
        f"not a path: {value!r}"
    )


def _field(data: dict, name: str, kinds: tuple, where: str, default=dataclasses.MISSING):
    if name not in data or (data[name] is None and default is not dataclasses.MISSING):
        if default is dataclasses.MISSING:
            raise RequestError(f"{where}{name} is missing (required)")
        return default
    value = data[name]
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if not ok:
        wanted = " or ".join(k.__name__ for k in kinds)
        raise RequestError(f"{where}{name} must be {wanted}, got {value!r}")
    return value


def request_from_riffusion(data: Any) -> RenderRequest:
    """A RenderRequest from Riffusion's ``InferenceInput`` JSON (its server's request body).

    As Riffusion (dacite): required ``start``/``end`` {prompt, seed} and ``alpha``; ints are
    accepted for floats; unknown keys are ignored; ``negative_prompt`` is accepted but not used
    (Riffusion's riffuse ignores it too). Image ids name PNGs in the model's seed_images/.
    """
    if not isinstance(data, dict):
        raise RequestError(f"the request must be a JSON object, not {type(data).__name__}")
    prompts = {}
    for side in ("start", "end"):
        part = _field(data, side, (dict,), "")
        prompts[side] = {
            "prompt": _field(part, "prompt", (str,), f"{side}."),
            "seed": _field(part, "seed", (int,), f"{side}."),
            "denoising": float(_field(part, "denoising", (int, float), f"{side}.", 0.75)),
            "guidance": float(_field(part, "guidance", (int, float), f"{side}.", 7.0)),
        }
        _field(part, "negative_prompt", (str,), f"{side}.", None)
    alpha = float(_field(data, "alpha", (int, float), ""))
    steps = _field(data, "num_inference_steps", (int,), "", 50)
    seed_image = _field(data, "seed_image_id", (str,), "", seeds.AUTO)
    mask_image = _field(data, "mask_image_id", (str,), "", None) or None
    for name, value in (("seed_image_id", seed_image), ("mask_image_id", mask_image)):
        if value is not None and not seeds.is_plain_name(value):
            raise RequestError(f"{name} must name a PNG in seed_images/, got {value!r}")
    start, end = prompts["start"], prompts["end"]
    return RenderRequest(
        prompt_a=start["prompt"],
        seed_a=start["seed"],
        prompt_b=end["prompt"],
        seed_b=end["seed"],
        alpha=alpha,
        steps=steps,
        guidance=start["guidance"],
        guidance_b=end["guidance"],
        denoising=start["denoising"],
        denoising_b=end["denoising"],
        seed_image=seed_image,
        mask_image=mask_image,
    )


def parse_inference_input(data: Any) -> RenderRequest:
    """A request body -> RenderRequest; RequestError (a 400) names the bad field."""
    base = request_from_riffusion(data)  # Riffusion's fields, ints accepted for floats
    extra = data.get(EXTRA)
    if extra is None:
        return base
    if not isinstance(extra, dict):
        raise RequestError(f"{EXTRA} must be an object (a RenderRequest), not {extra!r}")
    try:
        request = RenderRequest.from_dict(extra)
    except RequestError as exc:
        raise RequestError(f"{EXTRA}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise RequestError(f"{EXTRA}: {exc}") from None
    # Riffusion's fields must say what the full request says.
    a = request.a
    checks = {
        "alpha": (base.alpha, float(request.alpha)),
        "num_inference_steps": (base.steps, request.steps),
        "start.seed": (base.seed_a, start_seed(a)),
        "end.prompt": (base.prompt_b, request.b.prompt),
        "end.seed": (base.seed_b, request.b.seed),
    }
    for name, (riffusion, ours) in checks.items():
        if riffusion != ours:
            raise RequestError(f"{name} is {riffusion!r} but {EXTRA} says {ours!r}")
    return request


def check_servable(request: RenderRequest) -> None:
    """What a server refuses that a local engine takes: paths, huge images."""
    _remote_seed("seed_image", request.seed_image)
    _remote_seed("mask_image", request.mask_image)
    for name in ("width", "height"):
        if getattr(request, name) > MAX_SIDE:
            raise RequestError(f"{name} must be at most {MAX_SIDE}, got {getattr(request, name)}")


def request_to_inference_input(request: RenderRequest) -> dict:
    """The body riffpad's client sends: Riffusion's fields (any Riffusion server renders
    them) and the full request under ``riffpad_request`` (riffpad's server renders that)."""
    check_servable(request)
    b = request.b
    seed_image = request.seed_image
    return {
        "alpha": float(request.alpha),
        "num_inference_steps": request.steps,
        # A name Riffusion knows, or null (riffpad_request says which builtin, or none).
        "seed_image_id": seed_image if seed_image and seeds.is_plain_name(seed_image) else None,
        "mask_image_id": request.mask_image,
        "start": {
            "prompt": request.prompt_text_a,
            "seed": start_seed(request.a),
            "negative_prompt": None,
            "denoising": float(request.denoising),
            "guidance": float(request.guidance),
        },
        "end": {
            "prompt": b.prompt,
            "seed": b.seed,
            "negative_prompt": None,
            "denoising": float(_or(request.denoising_b, request.denoising)),
            "guidance": float(_or(request.guidance_b, request.guidance)),
        },
        EXTRA: request.to_dict(),
    }


def _or(value, default):
    return default if value is None else value


# -- answers ------------------------------------------------------------------------------


def data_url(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(payload).decode("ascii")


def parse_data_url(url: Any, field: str) -> tuple[str, bytes]:
    """``data:<mime>;base64,<payload>`` -> (mime, bytes)."""
    if not isinstance(url, str) or not url.startswith("data:") or "," not in url:
        raise WireError(f"{field} is not a data URL: {str(url)[:40]!r}")
    head, payload = url[5:].split(",", 1)
    parts = head.split(";")
    if "base64" not in parts[1:]:
        raise WireError(f"{field}: only base64 data URLs are read, got {head!r}")
    try:
        return parts[0].strip().lower(), base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WireError(f"{field}: bad base64 ({exc})") from None


def png_bytes(image: Image.Image) -> bytes:
    """Lossless PNG carrying the image's EXIF (the engine's Riffusion spectrogram tags)."""
    buf = io.BytesIO()
    exif = image.getexif()
    image.save(buf, format="PNG", **({"exif": exif} if exif else {}))
    return buf.getvalue()


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """32-bit float WAV: the engine's samples exactly (browsers decode it too)."""
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, np.asarray(audio, np.float32), int(sample_rate), "FLOAT", format="WAV")
    return buf.getvalue()


def encode_output(take) -> dict:
    """A Take -> Riffusion's InferenceOutput (lossless) plus riffpad's fields."""
    audio = take.audio if take.audio is not None else np.zeros(0, np.float32)
    out = {
        "image": data_url("image/png", png_bytes(take.image)),
        "audio": data_url("audio/wav", wav_bytes(audio, take.sample_rate)),
        "duration_s": len(audio) / float(take.sample_rate),
        "sample_rate": int(take.sample_rate),
    }
    for key in ("params", "timings", "lineage"):
        out[key] = _plain(getattr(take, key))
    return out


def _plain(value):
    """JSON-able copy: numpy numbers as Python ones, tuples as lists, the rest as text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@dataclass
class RemoteTake:
    """What riffpad's client makes of an answer: riffpad.engine.Take's fields."""

    image: Image.Image
    audio: np.ndarray
    sample_rate: int
    params: dict
    timings: dict
    lineage: dict | None
    duration_s: float
    formats: tuple[str, str]  # (image MIME, audio MIME)


def decode_image(mime: str, payload: bytes) -> Image.Image:
    if mime not in IMAGE_TYPES:
        raise WireError(f"image: unexpected type {mime!r}")
    try:
        with Image.open(io.BytesIO(payload)) as img:
            img.load()
            exif = img.getexif()
            out = img.convert("RGB")
    except OSError as exc:
        raise WireError(f"image: not a readable {mime} ({exc})") from None
    if exif:  # Riffusion's spectrogram tags travel on with the image
        out.info["exif"] = exif.tobytes()
    return out


def decode_audio(mime: str, payload: bytes) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate; MP3 through libsndfile (1.1 or newer)."""
    import soundfile

    if mime not in AUDIO_TYPES:
        raise WireError(f"audio: unexpected type {mime!r}")
    try:
        data, rate = soundfile.read(io.BytesIO(payload), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        hint = ""
        if "mpeg" in mime or "mp3" in mime:
            hint = (
                f"; this libsndfile ({soundfile.__libsndfile_version__}) cannot decode MP3:"
                " riffpad needs libsndfile 1.1 or newer for Riffusion's own server"
            )
        raise WireError(f"audio: cannot decode {mime} ({exc}){hint}") from None
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), int(rate)


def decode_output(data: Any) -> RemoteTake:
    """An InferenceOutput (riffpad's or Riffusion's) -> RemoteTake; WireError if garbage."""
    if not isinstance(data, dict):
        raise WireError(f"the answer must be a JSON object, not {type(data).__name__}")
    missing = [k for k in ("image", "audio") if k not in data]
    if missing:
        raise WireError(f"the answer lacks {', '.join(missing)}")
    image_mime, image_payload = parse_data_url(data["image"], "image")
    audio_mime, audio_payload = parse_data_url(data["audio"], "audio")
    image = decode_image(image_mime, image_payload)
    audio, rate = decode_audio(audio_mime, audio_payload)
    duration = data.get("duration_s", len(audio) / rate)
    if not isinstance(duration, int | float) or not math.isfinite(duration):
        raise WireError(f"duration_s must be a number, got {duration!r}")
    extras = {}
    for key in ("params", "timings"):
        value = data.get(key, {})
        extras[key] = dict(value) if isinstance(value, dict) else {}
    lineage = data.get("lineage")
    return RemoteTake(
        image=image,
        audio=audio,
        sample_rate=rate,
        params=extras["params"],
        timings=extras["timings"],
        lineage=lineage if isinstance(lineage, dict) else None,
        duration_s=float(duration),
        formats=(image_mime, audio_mime),
    )


def error_body(message: str) -> dict:
    return {"error": message}
