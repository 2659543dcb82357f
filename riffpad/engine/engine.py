"""The engine: load once, warm up, then turn RenderRequests into Takes (image + audio)."""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from riffpad.audio.clip import SAMPLE_RATE
from riffpad.audio.params import tag_image
from riffpad.audio.synthesis import audio_from_image
from riffpad.engine import loader, seeds
from riffpad.engine.api import EngineInfo
from riffpad.engine.pipeline import (
    Blend,
    Item,
    Leaf,
    Node,
    RiffusionCore,
    leaves,
    node_from_dict,
    node_to_dict,
)

log = logging.getLogger(__name__)


class RequestError(ValueError):
    """A render request that cannot be rendered; the message names the field."""


@dataclass(frozen=True)
class RenderRequest:
    """Everything one clip depends on. Defaults are Riffusion's (server and web app).

    ``prompt_a`` is a text prompt (with ``seed_a``) or a promoted blend from
    ``Engine.promote``; then ``seed_a`` is not used (the blend carries its own seeds).
    ``guidance_b``/``denoising_b`` default to the A values (Riffusion interpolates start and
    end values by alpha). ``seed_b`` defaults to ``seed_a + 1`` as in Riffusion's web app.
    """

    prompt_a: str | Blend
    prompt_b: str | None = None
    alpha: float = 0.0
    seed_a: int = 42
    seed_b: int | None = None
    steps: int = 50
    guidance: float = 7.0
    denoising: float = 0.75
    guidance_b: float | None = None
    denoising_b: float | None = None
    seed_image: str | None = seeds.AUTO  # og_beat if the model has it, else builtin:beat
    mask_image: str | None = None
    scheduler: str | None = None  # None: the engine's scheduler
    width: int = 512  # only used without a seed image
    height: int = 512

    def __post_init__(self) -> None:
        checks = {
            "alpha": (self.alpha, 0.0, 1.0),
            "denoising": (self.denoising, 0.0, 1.0),
            "guidance": (self.guidance, 0.0, 100.0),
        }
        if self.denoising_b is not None:
            checks["denoising_b"] = (self.denoising_b, 0.0, 1.0)
        if self.guidance_b is not None:
            checks["guidance_b"] = (self.guidance_b, 0.0, 100.0)
        for name, (value, lo, hi) in checks.items():
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise RequestError(f"{name} must be a number, got {value!r}")
            if not lo <= value <= hi:
                raise RequestError(f"{name} must be within [{lo}, {hi}], got {value}")
        if not isinstance(self.steps, int) or not 1 <= self.steps <= 1000:
            raise RequestError(f"steps must be an integer in [1, 1000], got {self.steps!r}")
        for name in ("seed_a", "seed_b"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise RequestError(f"{name} must be an integer, got {value!r}")
            if value is not None and not 0 <= value < 2**63:
                raise RequestError(f"{name} must be within [0, 2**63), got {value}")
        if not isinstance(self.prompt_a, str | Blend):
            raise RequestError(f"prompt_a must be text or a promoted blend, not {self.prompt_a!r}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 64 or value % 64:
                raise RequestError(f"{name} must be a multiple of 64 (>= 64), got {value!r}")

    @property
    def a(self) -> Node:
        if isinstance(self.prompt_a, Blend):
            return self.prompt_a
        return Leaf(self.prompt_a, self.seed_a)

    @property
    def b(self) -> Leaf:
        prompt = self.prompt_b if self.prompt_b is not None else self.prompt_text_a
        seed = self.seed_b if self.seed_b is not None else self.seed_a + 1
        return Leaf(prompt, seed)

    @property
    def blend(self) -> Blend:
        return Blend(self.a, self.b, float(self.alpha))

    @property
    def prompt_text_a(self) -> str:
        return self.prompt_a if isinstance(self.prompt_a, str) else describe(self.prompt_a)

    def to_dict(self) -> dict:
        """JSON-able, complete: ``RenderRequest.from_dict`` of it renders the same take."""
        data = dataclasses.asdict(self)
        data["prompt_a"] = (
            node_to_dict(self.prompt_a) if isinstance(self.prompt_a, Blend) else (self.prompt_a)
        )
        data["seed_b"] = self.b.seed
        data["prompt_b"] = self.b.prompt
        return data

    @classmethod
    def from_dict(cls, data: dict) -> RenderRequest:
        if not isinstance(data, dict):
            raise RequestError(f"a render request must be an object, not {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise RequestError(f"unknown request field(s): {', '.join(unknown)}")
        if "prompt_a" not in data:
            raise RequestError("prompt_a is missing")
        values = dict(data)
        if isinstance(values["prompt_a"], dict):
            try:
                values["prompt_a"] = promoted_from_dict(values["prompt_a"])
            except (KeyError, TypeError, ValueError) as exc:
                raise RequestError(f"prompt_a: bad promoted blend ({exc})") from exc
        return cls(**values)


def describe(node: Node) -> str:
    """Readable one-line label of a (promoted) prompt."""
    if isinstance(node, Leaf):
        return node.prompt
    return f"({describe(node.a)} -> {describe(node.b)} @ {node.alpha:.2f})"


def promoted_from_dict(data: dict) -> Blend:
    node = node_from_dict(data)
    if not isinstance(node, Blend):
        raise ValueError("a promoted prompt is a blend (a, b, alpha)")
    return node


@dataclass
class Take:
    """One rendered clip."""

    image: Image.Image
    audio: np.ndarray | None
    sample_rate: int
    params: dict
    timings: dict
    lineage: dict  # RenderRequest.to_dict(): render it again with Engine.render(lineage)
    request: RenderRequest = field(repr=False)


@dataclass(frozen=True)
class EngineOptions:
    """Departures from Riffusion's defaults; all off unless named (None: automatic)."""

    channels_last: bool | None = None  # None: on for CUDA (a memory layout, same maths)
    # torch.compile the UNet and the VAE decoder: about a minute more at warm-up, then
    # faster (H100: 50 steps 0.32 s instead of 0.48). Fused kernels round differently, so
    # images may differ from Riffusion's by an 8-bit level.
    compile: bool = False
    # None: on for CUDA. Replays the same kernels as eager calls, so the same numbers.
    cuda_graphs: bool | None = None
    cache: bool = True  # reuse seed noise and VAE latents (exact: they are pure functions)


class Engine:
    """Riffusion's img2img interpolation on a loaded checkpoint. One render at a time."""

    def __init__(self, loaded: loader.Loaded, model: str, options: EngineOptions):
        self.model = model
        self.folder = loaded.folder
        self.device = loaded.device
        self.dtype = loaded.dtype
        self.options = options
        self.core = RiffusionCore(
            loaded.vae,
            loaded.text_encoder,
            loaded.tokenizer,
            loaded.unet,
            loaded.scheduler,
            loaded.device,
            loaded.dtype,
            cache=options.cache,
        )
        if options.compile:
            self.core.unet = _compiled(self.core.unet)
            self.core.vae.decoder = _compiled(self.core.vae.decoder)
        graphs = options.cuda_graphs
        if (graphs is None or graphs) and self.device.type == "cuda":
            self.core.use_cuda_graphs()
        self.scheduler_name = "default"
        self._schedulers: dict[str, Any] = {"default": loaded.scheduler}
        self._lock = threading.Lock()
        self.warmup_seconds: float | None = None
        self.load_seconds: float | None = None

    @classmethod
    def load(
        cls,
        model: str | Path = loader.DEFAULT_MODEL,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        scheduler: str | None = None,
        options: EngineOptions | None = None,
        cache_dir: str | Path | None = None,
        revision: str | None = None,
    ) -> Engine:
        """Load ``model`` (Hub id at ``revision``, or a diffusers folder) on ``device``
        (default: CUDA, MPS, CPU) in ``dtype`` (default: float16 on CUDA, float32 elsewhere)."""
        t0 = time.perf_counter()
        options = options or EngineOptions()
        dev = loader.pick_device(device)
        dt = loader.pick_dtype(dev, dtype)
        folder = loader.resolve_model(model, cache_dir=cache_dir, revision=revision)
        channels_last = options.channels_last
        if channels_last is None:
            channels_last = dev.type == "cuda"
        loaded = loader.load_components(
            folder, dev, dt, None, channels_last=channels_last, label=str(model)
        )
        engine = cls(loaded, str(model), options)
        if scheduler is not None:
            engine.set_scheduler(scheduler)
        engine.load_seconds = time.perf_counter() - t0
        log.info("loaded %s on %s (%s) in %.1f s", model, dev, dt, engine.load_seconds)
        return engine

    # -- schedulers -------------------------------------------------------------------------
    def set_scheduler(self, name: str | None) -> None:
        """The engine's scheduler for requests that name none."""
        self.scheduler_name = self._use_scheduler(name)

    def _use_scheduler(self, name: str | None) -> str:
        key = (name or "default").lower()
        key = loader.SCHEDULER_ALIASES.get(key, key)
        if key not in self._schedulers:
            self._schedulers[key] = loader.make_scheduler(key, self.folder)
        self.core.set_scheduler(self._schedulers[key])
        return key

    @property
    def scheduler_class(self) -> str:
        return type(self.core.scheduler).__name__

    def seed_images(self) -> list[str]:
        return seeds.seed_names(self.folder)

    def info(self) -> EngineInfo:
        return EngineInfo(self.model, self.scheduler_class, str(self.device), str(self.dtype))

    @staticmethod
    def describe_prompt(prompt: str | Node) -> str:
        return prompt if isinstance(prompt, str) else describe(prompt)

    def status_line(self) -> str:
        return self.info().describe()

    def default_seed_image(self) -> str:
        """The seed a request that names none starts from (``seeds.default_seed``)."""
        return seeds.default_seed(self.folder)

    # -- rendering --------------------------------------------------------------------------
    def warmup(self, request: RenderRequest | None = None) -> float:
        """One tiny render (two UNet steps with CFG, VAE encode and decode, audio) so the first
        real generation does not pay for lazy initialisation. Returns the seconds it took."""
        t0 = time.perf_counter()
        if request is None:
            request = RenderRequest("warmup", steps=2, denoising=0.5, seed_a=0)
        self.render(request)
        self.warmup_seconds = time.perf_counter() - t0
        return self.warmup_seconds

    def promote(self, request: RenderRequest | dict) -> Blend:
        """The current blend as a new prompt A: its lerped embedding and slerped noise."""
        if isinstance(request, dict):
            request = RenderRequest.from_dict(request)
        return request.blend

    def render(self, request: RenderRequest | dict, *, audio: bool = True, on_step=None) -> Take:
        """Render one clip. ``request`` may be a Take's ``lineage`` dict."""
        if isinstance(request, dict):
            request = RenderRequest.from_dict(request)
        with self._lock:
            return self._render(request, audio, on_step)

    def render_batch(self, requests: list[RenderRequest | dict], *, audio: bool = True) -> list:
        """Render several clips, those that can share a denoising loop as one UNet batch
        (same steps, strength, size, scheduler, CFG on or off: ``RiffusionCore.batch_key``).

        Each clip equals its own ``render``. Returns one Take or one exception per request, in
        order: a bad request fails alone, not its batch-mates.
        """
        out: list = [None] * len(requests)
        with self._lock:
            groups: dict[tuple, list[tuple[int, _Prepared]]] = {}
            for i, request in enumerate(requests):
                try:
                    if isinstance(request, dict):
                        request = RenderRequest.from_dict(request)
                    prep = self._prepare(request)
                    key = (prep.scheduler, self.core.batch_key(prep.item, request.steps))
                except Exception as exc:
                    out[i] = _as_request_error(exc)
                    continue
                groups.setdefault(key, []).append((i, prep))
            for (scheduler, _), members in groups.items():
                t = time.perf_counter()
                try:
                    self._use_scheduler(scheduler)
                    steps = members[0][1].request.steps
                    items = [prep.item for _, prep in members]
                    results = self.core.riffuse_batch(items, steps=steps)
                    _sync(self.device)
                except Exception as exc:
                    for i, _ in members:
                        out[i] = _as_request_error(exc)
                    continue
                diffusion_s = time.perf_counter() - t
                for (i, prep), result in zip(members, results, strict=True):
                    prep.timings["diffusion_s"] = diffusion_s
                    prep.timings["batch"] = len(members)
                    out[i] = self._finish(prep, result, audio)
        return out

    def _prepare(self, request: RenderRequest) -> _Prepared:
        """Inputs of one render (seed and mask images, VAE latents): everything before the
        denoising loop."""
        if request.seed_image == seeds.AUTO:  # the take's JSON names the seed it used
            request = dataclasses.replace(request, seed_image=self.default_seed_image())
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        scheduler = self._use_scheduler(request.scheduler or self.scheduler_name)
        seed = seeds.resolve_seed(request.seed_image, self.folder)
        mask = seeds.resolve_mask(request.mask_image, self.folder)
        blend = request.blend
        timings["inputs_s"] = time.perf_counter() - t0

        t = time.perf_counter()
        init_latents = None
        if seed.image is not None:
            init_latents = self.core.encode_image(seed.image, _start_seed(blend), key=seed.key)
        timings["encode_s"] = time.perf_counter() - t
        item = Item(
            blend,
            init_latents,
            self.core.latent_shape(request.width, request.height),
            mask,
            strength_a=request.denoising,
            strength_b=_or(request.denoising_b, request.denoising),
            guidance_a=request.guidance,
            guidance_b=_or(request.guidance_b, request.guidance),
        )
        return _Prepared(request, scheduler, item, timings, t0)

    def _render(self, request: RenderRequest, want_audio: bool, on_step) -> Take:
        prep = self._prepare(request)
        t = time.perf_counter()
        try:
            result = self.core.riffuse_batch([prep.item], steps=request.steps, on_step=on_step)[0]
        except RequestError:
            raise
        except ValueError as exc:  # inputs the maths cannot take (mask size, no steps)
            raise RequestError(str(exc)) from exc
        _sync(self.device)
        prep.timings["diffusion_s"] = time.perf_counter() - t
        return self._finish(prep, result, want_audio)

    def _finish(self, prep: _Prepared, result, want_audio: bool) -> Take:
        """Tags, audio, parameters and lineage of one denoised image."""
        request, scheduler, timings = prep.request, prep.scheduler, prep.timings
        init_latents = prep.item.init_latents
        tag_image(result.image)  # Riffusion's spectrogram EXIF tags, for every file made of it

        samples = None
        if want_audio:
            t = time.perf_counter()
            samples = np.asarray(audio_from_image(result.image), dtype=np.float32)
            timings["audio_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - prep.t0

        alpha = request.alpha
        params = request.to_dict()
        params.update(
            prompt_a_text=request.prompt_text_a,
            guidance_used=_lerp(request.guidance, _or(request.guidance_b, request.guidance), alpha),
            denoising_used=(
                _lerp(request.denoising, _or(request.denoising_b, request.denoising), alpha)
                if init_latents is not None
                else 1.0
            ),
            cfg=result.unet_batch == 2,
            unet_calls=result.unet_calls,
            init_timestep=result.init_timestep,
            model=self.model,
            model_folder=str(self.folder),
            scheduler=scheduler,
            scheduler_class=self.scheduler_class,
            device=str(self.device),
            dtype=str(self.dtype).removeprefix("torch."),
            image_size=list(result.image.size),
            sample_rate=SAMPLE_RATE,
            riffpad_options=dataclasses.asdict(self.options),
            cuda_graphs=bool(self.core.graphs),
            # How much of each prompt (A's leaves, then B) was used: past 3 x 75 tokens, none.
            prompt_tokens=[
                self.core.prompts.usage(leaf.prompt).as_dict() for leaf in leaves(request.blend)
            ],
        )
        lineage = request.to_dict()
        lineage["scheduler"] = scheduler
        return Take(
            image=result.image,
            audio=samples,
            sample_rate=SAMPLE_RATE,
            params=params,
            timings=timings,
            lineage=lineage,
            request=request,
        )


@dataclass
class _Prepared:
    request: RenderRequest
    scheduler: str
    item: Item
    timings: dict
    t0: float


def _as_request_error(exc: Exception) -> Exception:
    # What the maths cannot take is the request's fault (as in ``render``).
    if isinstance(exc, ValueError) and not isinstance(exc, RequestError | seeds.SeedError):
        return RequestError(str(exc))
    return exc


def _compiled(module):
    # A module another engine already compiled stays as it is (no second wrapper).
    return module if hasattr(module, "_orig_mod") else torch.compile(module)


def _start_seed(blend: Blend) -> int:
    from riffpad.engine.pipeline import start_seed

    return start_seed(blend)


def _or(value, default):
    return default if value is None else value


def _lerp(a: float, b: float, alpha: float) -> float:
    return a * (1.0 - alpha) + b * alpha


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# -- Riffusion's server request format (riffusion/datatypes.py InferenceInput) ---------------
