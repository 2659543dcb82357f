"""Riffusion's generation maths (``RiffusionPipeline.riffuse`` + ``interpolate_img2img``).

Every step follows Riffusion 0.0.5's ``riffusion_pipeline.py`` in the same order of float
operations, so with the same weights, inputs and scheduler the image equals Riffusion's (see
tests/integration/test_riffusion_reference.py). What is new here and not in Riffusion:

- prompts form a tree: a *promoted* prompt A is an earlier blend (its lerped text embedding and
  its slerped noise), so ``Blend(a, b, alpha)`` nests;
- with no seed image the render starts from pure noise at full strength (text-to-audio, the
  way diffusers' text-to-image pipeline starts);
- prompts longer than 75 tokens (Riffusion raises on them) are blended at the longest length.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from riffpad.engine.prompts import PromptEncoder

DOT_THRESHOLD = 0.9995  # torch_util.slerp: above this |cos|, lerp instead
LATENT_CHANNELS = 4
IMAGE_MULTIPLE = 32


def slerp(t: float, v0: torch.Tensor, v1: torch.Tensor, dot_threshold: float = DOT_THRESHOLD):
    """Spherical interpolation computed as Riffusion's ``torch_util.slerp``: in numpy on the CPU,
    in the tensors' own dtype, the angle taken over the whole flattened tensors."""
    device = v0.device
    a = v0.detach().cpu().numpy()
    b = v1.detach().cpu().numpy()
    dot = np.sum(a * b / (np.linalg.norm(a) * np.linalg.norm(b)))
    if np.abs(dot) > dot_threshold:
        out = (1 - t) * a + t * b
    else:
        theta_0 = np.arccos(dot)
        sin_theta_0 = np.sin(theta_0)
        theta_t = theta_0 * t
        s0 = np.sin(theta_0 - theta_t) / sin_theta_0
        s1 = np.sin(theta_t) / sin_theta_0
        out = s0 * a + s1 * b
    return torch.from_numpy(out).to(device)


def preprocess_image(image: Image.Image) -> torch.Tensor:
    """RGB image -> (1, 3, H, W) in [-1, 1], each side cut down to a multiple of 32 (LANCZOS)."""
    image = image.convert("RGB")
    w, h = (s - s % IMAGE_MULTIPLE for s in image.size)
    if w == 0 or h == 0:
        raise ValueError(f"seed image {image.size} is smaller than {IMAGE_MULTIPLE} px")
    image = image.resize((w, h), resample=Image.LANCZOS)
    array = np.array(image).astype(np.float32) / 255.0
    return 2.0 * torch.from_numpy(array[None].transpose(0, 3, 1, 2)) - 1.0


def preprocess_mask(mask: Image.Image, scale_factor: int = 8) -> torch.Tensor:
    """Mask -> (1, 4, H/8, W/8) where 1 keeps the seed and 0 repaints (white = repaint)."""
    mask = mask.convert("L")
    w, h = (s - s % IMAGE_MULTIPLE for s in mask.size)
    mask = mask.resize((w // scale_factor, h // scale_factor), resample=Image.NEAREST)
    array = np.array(mask).astype(np.float32) / 255.0
    array = np.tile(array, (LATENT_CHANNELS, 1, 1))[None]
    return 1 - torch.from_numpy(array)


# A prompt in a blend tree: a text prompt with its seed, or an earlier blend promoted to A.
@dataclass(frozen=True)
class Leaf:
    prompt: str
    seed: int


@dataclass(frozen=True)
class Blend:
    a: Node
    b: Node
    alpha: float


Node = Leaf | Blend


def node_to_dict(node: Node) -> dict:
    if isinstance(node, Leaf):
        return {"prompt": node.prompt, "seed": node.seed}
    return {"a": node_to_dict(node.a), "b": node_to_dict(node.b), "alpha": node.alpha}


def node_from_dict(data: dict) -> Node:
    if not isinstance(data, dict):
        raise ValueError(f"a prompt node must be an object, not {data!r}")
    if "prompt" in data:
        return Leaf(str(data["prompt"]), int(data["seed"]))
    if {"a", "b", "alpha"} <= data.keys():
        return Blend(node_from_dict(data["a"]), node_from_dict(data["b"]), float(data["alpha"]))
    raise ValueError(f"a prompt node needs prompt+seed or a+b+alpha, got keys {sorted(data)}")


def leaves(node: Node) -> list[Leaf]:
    return [node] if isinstance(node, Leaf) else leaves(node.a) + leaves(node.b)


def start_seed(node: Node) -> int:
    """Seed of the VAE posterior sample: prompt A's seed (the root A of a promoted tree)."""
    return node.seed if isinstance(node, Leaf) else start_seed(node.a)


class LRU(OrderedDict):
    """A small least-recently-used cache (noise and latents live on the GPU: keep it bounded)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        while len(self) > self.size:
            self.popitem(last=False)
        return value


def _cat(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``torch.cat``, except that one tensor stays itself (a lone image makes no copy)."""
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


def timestep_plan(scheduler, steps: int, strength: float) -> tuple[int, int]:
    """(init_timestep, t_start) exactly as interpolate_img2img computes them."""
    offset = scheduler.config.get("steps_offset", 0)
    init_timestep = min(int(steps * strength) + offset, steps)
    t_start = max(steps - init_timestep + offset, 0)
    return init_timestep, t_start


@dataclass
class Denoised:
    image: Image.Image
    latents: torch.Tensor
    unet_calls: int
    unet_batch: int
    init_timestep: int | None


@dataclass(frozen=True)
class Item:
    """One image of a batch: ``riffuse``'s arguments that may differ between images."""

    node: Blend
    init_latents: torch.Tensor | None
    latent_shape: tuple[int, ...] | None = None
    mask: Image.Image | None = None
    strength_a: float = 0.75
    strength_b: float = 0.75
    guidance_a: float = 7.0
    guidance_b: float = 7.0


@dataclass
class _Planned:
    item: Item
    guidance: float
    chunks: int
    text: torch.Tensor
    mask_t: torch.Tensor | None
    shape: tuple[int, ...]
    strength: float


class RiffusionCore:
    """The maths, given loaded diffusers/transformers components on one device."""

    def __init__(
        self, vae, text_encoder, tokenizer, unet, scheduler, device, dtype, cache: bool = True
    ):
        self.vae, self.text_encoder, self.tokenizer = vae, text_encoder, tokenizer
        self.unet, self.scheduler = unet, scheduler
        self.device = torch.device(device)
        self.dtype = dtype
        self.prompts = PromptEncoder(tokenizer, text_encoder, self.device)
        self.scaling = float(getattr(vae.config, "scaling_factor", 0.18215))
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        # Seed noise and seed-image latents are pure functions of their inputs: reuse them.
        self.cache = cache
        self._noise = LRU(256)
        self._latents = LRU(32)
        self._accepts_eta = False
        self.set_scheduler(scheduler)
        self.graphs: dict = {}  # name -> GraphedCall, when CUDA graphs are on

    def use_cuda_graphs(self) -> None:
        """Replay the UNet and the VAE decoder from CUDA graphs (same kernels, same numbers)."""
        from riffpad.engine.graphs import GraphedCall, GraphedUNet

        if self.graphs:
            return
        unet = GraphedUNet(self.unet)
        decode = GraphedCall(lambda z: self.vae.decode(z).sample, "VAE decoder")
        self.unet, self._decode = unet, decode
        self.graphs = {"unet": unet.call, "vae_decode": decode}

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents).sample

    def set_scheduler(self, scheduler) -> None:
        self.scheduler = scheduler
        self._accepts_eta = "eta" in inspect.signature(scheduler.step).parameters

    # Generators live on the pipeline device; MPS takes CPU generators (as Riffusion does).
    def generator(self, seed: int) -> torch.Generator:
        on = "cpu" if self.device.type == "mps" else self.device
        return torch.Generator(device=on).manual_seed(int(seed))

    def seed_noise(self, seed: int, shape: tuple[int, ...]) -> torch.Tensor:
        """``torch.randn`` from a fresh generator seeded with ``seed``, as Riffusion draws it."""

        def draw():
            gen = self.generator(seed)
            if self.device.type == "mps":  # CPU generator: draw there, then move
                return torch.randn(shape, generator=gen, dtype=self.dtype).to(self.device)
            return torch.randn(shape, generator=gen, device=self.device, dtype=self.dtype)

        if not self.cache:
            return draw()
        return self._noise.get_or((int(seed), tuple(shape)), draw)

    def noise(self, node: Node, shape: tuple[int, ...]) -> torch.Tensor:
        """A leaf's seed noise, or a blend's slerp of its parents' noise (promoted A's too)."""
        if isinstance(node, Leaf):
            return self.seed_noise(node.seed, shape)

        def mix():
            return slerp(node.alpha, self.noise(node.a, shape), self.noise(node.b, shape))

        if not self.cache:
            return mix()
        return self._noise.get_or((node, tuple(shape)), mix)

    def chunks(self, node: Node) -> int:
        return max(self.prompts.chunks_needed(leaf.prompt) for leaf in leaves(node))

    def embedding(self, node: Node, chunks: int = 1) -> torch.Tensor:
        if isinstance(node, Leaf):
            return self.prompts.weighted(node.prompt, chunks)
        start = self.embedding(node.a, chunks)
        end = self.embedding(node.b, chunks)
        return start + node.alpha * (end - start)

    @torch.no_grad()
    def encode_image(self, image: Image.Image, seed: int, key=None) -> torch.Tensor:
        """VAE latents of the seed image, sampled with the start seed, times 0.18215.

        ``key`` names the image (for example its file and mtime) so repeated renders reuse
        the latents: the sample is a pure function of image and seed.
        """

        def encode():
            pixels = preprocess_image(image).to(device=self.device, dtype=self.dtype)
            dist = self.vae.encode(pixels).latent_dist
            return self.scaling * dist.sample(generator=self.generator(seed))

        if key is None or not self.cache:
            return encode()
        return self._latents.get_or((key, int(seed)), encode)

    def latent_shape(self, width: int, height: int) -> tuple[int, int, int, int]:
        f = self.vae_scale_factor
        return (1, LATENT_CHANNELS, height // f, width // f)

    @torch.no_grad()
    def riffuse(
        self,
        node: Blend,
        *,
        init_latents: torch.Tensor | None,
        latent_shape: tuple[int, ...] | None = None,
        mask: Image.Image | None = None,
        strength_a: float = 0.75,
        strength_b: float = 0.75,
        guidance_a: float = 7.0,
        guidance_b: float = 7.0,
        steps: int = 50,
        eta: float = 0.0,
        on_step: Callable[[int, int], None] | None = None,
    ) -> Denoised:
        """One image from a blend: ``node.a`` and ``node.b`` mixed by ``node.alpha``."""
        item = Item(
            node, init_latents, latent_shape, mask, strength_a, strength_b, guidance_a, guidance_b
        )
        return self.riffuse_batch([item], steps=steps, eta=eta, on_step=on_step)[0]

    def _plan(self, item: Item) -> _Planned:
        """Everything one image needs before the denoising loop (no UNet call)."""
        node, init_latents = item.node, item.init_latents
        alpha = node.alpha
        guidance = item.guidance_a * (1.0 - alpha) + item.guidance_b * alpha
        chunks = self.chunks(node)
        text = self.embedding(node, chunks)

        mask_t = None
        if item.mask is not None:
            if init_latents is None:
                raise ValueError("a mask needs a seed image to keep parts of")
            mask_t = preprocess_mask(item.mask, scale_factor=self.vae_scale_factor)
            mask_t = mask_t.to(device=self.device, dtype=text.dtype)
            if mask_t.shape[-2:] != init_latents.shape[-2:]:
                raise ValueError(
                    f"mask is {tuple(mask_t.shape[-2:])} latents, seed image "
                    f"{tuple(init_latents.shape[-2:])}: they must be the same size"
                )
        if init_latents is not None:
            shape = tuple(init_latents.shape)
        else:
            shape = tuple(item.latent_shape)
        strength = (1 - alpha) * item.strength_a + alpha * item.strength_b
        return _Planned(item, guidance, chunks, text, mask_t, shape, strength)

    def batch_key(self, item: Item, steps: int) -> tuple:
        """Images with equal keys can share one denoising loop (``riffuse_batch``): the same
        steps, start timestep (from strength), latent size, CFG on or off, prompt length and
        masking. Cheap: no text encoding, no UNet."""
        alpha = item.node.alpha
        guidance = item.guidance_a * (1.0 - alpha) + item.guidance_b * alpha
        if item.init_latents is None:
            plan, shape = None, tuple(item.latent_shape)
        else:
            strength = (1 - alpha) * item.strength_a + alpha * item.strength_b
            plan, shape = (
                timestep_plan(self.scheduler, steps, strength),
                tuple(item.init_latents.shape),
            )
        chunks = self.chunks(item.node)
        return (steps, plan, shape, guidance > 1.0, chunks, item.mask is not None)

    @torch.no_grad()
    def riffuse_batch(
        self,
        items: list[Item],
        *,
        steps: int = 50,
        eta: float = 0.0,
        on_step: Callable[[int, int], None] | None = None,
    ) -> list[Denoised]:
        """Several images through one denoising loop: the UNet and the scheduler see them as
        one batch, everything else (text, noise, CFG mix, VAE decode) runs per image with
        the same operations as a lone image, so each equals its own ``riffuse``. The items
        must share ``batch_key``."""
        if not items:
            return []
        plans = [self._plan(item) for item in items]
        keys = {self.batch_key(item, steps) for item in items}
        if len(keys) > 1:
            raise ValueError(f"these renders cannot share a batch: {sorted(map(str, keys))}")
        first = plans[0]

        scheduler = self.scheduler
        # Timesteps (and sigmas) on the pipeline device, as diffusers' own pipelines keep them;
        # the values are the same as Riffusion's CPU ones.
        scheduler.set_timesteps(steps, device=self.device)
        cfg = first.guidance > 1.0
        texts = [p.text for p in plans]
        if cfg:
            texts = [self.prompts.unconditional(first.chunks)] * len(plans) + texts
        text = _cat(texts)

        noises, starts = [], []
        init_timestep, t_start = None, 0
        for p in plans:
            noise = self.noise(p.item.node, p.shape)
            noises.append(noise)
            if p.item.init_latents is not None:
                init_timestep, t_start = timestep_plan(scheduler, steps, p.strength)
                if init_timestep < 1:
                    raise ValueError(
                        f"denoising {p.strength} with {steps} steps runs no step at all"
                    )
                noising_t = torch.tensor([scheduler.timesteps[-init_timestep]], device=self.device)
                starts.append(scheduler.add_noise(p.item.init_latents, noise, noising_t).clone())
            else:  # text-to-audio: pure noise, every timestep
                starts.append(noise * scheduler.init_noise_sigma)
        n = len(plans)
        latents = _cat(starts)
        masked = first.mask_t is not None
        if masked:
            init_all = _cat([p.item.init_latents for p in plans])
            noise_all = _cat(noises)
            mask_all = _cat([p.mask_t for p in plans])

        step_kwargs = {"eta": eta} if self._accepts_eta else {}
        timesteps = scheduler.timesteps[t_start:].to(self.device)
        # The same values as Python numbers for the scheduler's step: it indexes its CPU
        # tables with them, and a GPU tensor there would stall the CPU until the GPU has
        # caught up, every step.
        step_values = scheduler.timesteps[t_start:].tolist()
        calls = 0
        for i, t in enumerate(timesteps):
            model_in = torch.cat([latents] * 2) if cfg else latents
            model_in = scheduler.scale_model_input(model_in, t)
            noise_pred = self.unet(model_in, t, encoder_hidden_states=text).sample
            calls += 1
            if cfg:
                uncond, cond = noise_pred.chunk(2)
                # Per image with its own guidance as a Python number: the same rounding as
                # a lone image (a guidance tensor would round to the latents' dtype first).
                mixed = [
                    uncond[j : j + 1] + p.guidance * (cond[j : j + 1] - uncond[j : j + 1])
                    for j, p in enumerate(plans)
                ]
                noise_pred = _cat(mixed)
            step = scheduler.step(noise_pred, step_values[i], latents, **step_kwargs)
            latents = step.prev_sample
            if masked:
                proper = scheduler.add_noise(init_all, noise_all, t.reshape(1))
                latents = (proper * mask_all) + (latents * (1 - mask_all))
            if on_step is not None:
                on_step(i + 1, len(timesteps))

        out = []
        for j in range(n):
            lat = latents[j : j + 1] if n > 1 else latents
            out.append(Denoised(self.decode(lat), lat, calls, 2 if cfg else 1, init_timestep))
        return out

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> Image.Image:
        from diffusers.utils.pil_utils import numpy_to_pil

        pixels = self._decode(1.0 / self.scaling * latents)
        pixels = (pixels / 2 + 0.5).clamp(0, 1)
        return numpy_to_pil(pixels.cpu().permute(0, 2, 3, 1).numpy())[0]
