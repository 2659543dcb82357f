"""Find and load a Stable Diffusion v1 checkpoint in diffusers format, safetensors only.

The default is ``riffusion/riffusion-model-v1`` from the Hugging Face Hub: downloaded on first
use (huggingface_hub shows progress bars), read from the cache afterwards, offline included.
A local folder in diffusers format works the same way. Weights are read with safetensors only:
``.bin``/``.ckpt`` files are Python pickles, which can run code when loaded, so riffpad refuses
them instead of unpickling a file it cannot vouch for. The safety checker is never loaded.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from riffpad import DEFAULT_MODEL  # also riffpad.engine.DEFAULT_MODEL

log = logging.getLogger(__name__)

WEIGHTED = ("vae", "text_encoder", "unet")
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")

# Named schedulers (diffusers classes, built from the checkpoint's scheduler config).
SCHEDULERS = {
    "pndm": "PNDMScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "ddim": "DDIMScheduler",
}
SCHEDULER_ALIASES = {"dpmsolver++": "dpm++", "dpm": "dpm++", "dpmpp": "dpm++"}

_DOWNLOAD_PATTERNS = [
    "model_index.json",
    "*/config.json",
    "*/*.safetensors",
    "*/*.safetensors.index.json",
    "tokenizer/*",
    "scheduler/*",
    "*.png",  # the seed-image library (seed_images/*.png; matches at any depth)
]
_SKIP_PATTERNS = ["*.fp16.*", "*non_ema*", "*.bin", "*.ckpt", "*.pt", "*.pth"]


class ModelError(RuntimeError):
    """The model cannot be found or loaded; the message says what to do."""


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA, then Apple MPS, then CPU; a forced device must exist."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {dev} asked for, but torch sees no CUDA GPU")
    if dev.type == "mps" and not (torch.backends.mps.is_available()):
        raise ModelError(f"device {dev} asked for, but torch has no MPS backend here")
    return dev


def pick_dtype(device: torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """float16 on CUDA, float32 elsewhere (as Riffusion: fp16 is unsupported on CPU and MPS)."""
    if dtype is None or dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float16": torch.float16, "fp16": torch.float16, "half": torch.float16}
    names |= {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16}
    if dtype not in names:
        raise ModelError(f"unknown dtype {dtype!r}; use one of {', '.join(sorted(names))}")
    return names[dtype]


def _refuse_pickles(folder: Path) -> None:
    for part in WEIGHTED:
        sub = folder / part
        if not sub.is_dir():
            raise ModelError(f"{folder} is not a diffusers model folder: no {part}/ inside")
        if any(sub.glob("*.safetensors")):
            continue
        pickles = sorted(p.name for p in sub.iterdir() if p.suffix in PICKLE_SUFFIXES)
        found = f" (found {', '.join(pickles)})" if pickles else ""
        raise ModelError(
            f"{sub} has no .safetensors weights{found}. riffpad loads safetensors only and "
            "never unpickles .bin/.ckpt files, which can run arbitrary code. Convert the "
            "weights to safetensors with a tool you trust, or use a model that ships them."
        )


def resolve_model(model: str | Path = DEFAULT_MODEL, cache_dir: str | Path | None = None) -> Path:
    """A local folder, or a Hub repo id downloaded to (or found in) the Hugging Face cache.

    The cache is tried first, without network, so a downloaded model works offline.
    """
    path = Path(model).expanduser()
    if path.suffix in PICKLE_SUFFIXES:
        raise ModelError(
            f"{model}: riffpad refuses pickle checkpoints (.bin/.ckpt): loading one can run "
            "arbitrary code. Give a diffusers folder with .safetensors weights."
        )
    if path.is_file():
        raise ModelError(f"{model} is a file; give a folder in diffusers format")
    if path.is_dir():
        _refuse_pickles(path)
        return path
    if str(model).count("/") != 1 or str(model).startswith((".", "/", "~")):
        raise ModelError(f"{model}: no such folder, and not a Hugging Face repo id (owner/name)")

    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    kwargs = dict(repo_id=str(model), allow_patterns=_DOWNLOAD_PATTERNS, cache_dir=cache_dir)
    kwargs["ignore_patterns"] = _SKIP_PATTERNS
    try:
        folder = Path(snapshot_download(local_files_only=True, **kwargs))
        _refuse_pickles(folder)
        return folder
    except (LocalEntryNotFoundError, ModelError, OSError):
        pass
    log.info("downloading %s (first run only; cached afterwards)", model)
    try:
        folder = Path(snapshot_download(**kwargs))
    except Exception as exc:  # network, auth, unknown repo: one clear message
        raise ModelError(f"could not download {model}: {exc}") from exc
    _refuse_pickles(folder)
    return folder


def scheduler_names() -> list[str]:
    return ["default", *SCHEDULERS]


def make_scheduler(name: str | None, folder: Path):
    """``default``/None: the checkpoint's own scheduler; otherwise a named diffusers scheduler
    built ``from_config`` of the checkpoint's scheduler config."""
    import diffusers

    config_file = folder / "scheduler" / "scheduler_config.json"
    config = json.loads(config_file.read_text())
    key = (name or "default").lower()
    key = SCHEDULER_ALIASES.get(key, key)
    if key == "default":
        class_name = config.get("_class_name", "PNDMScheduler")
    elif key in SCHEDULERS:
        class_name = SCHEDULERS[key]
    else:
        raise ModelError(f"unknown scheduler {name!r}; choose from {', '.join(scheduler_names())}")
    cls = getattr(diffusers, class_name, None)
    if cls is None or not issubclass(cls, diffusers.SchedulerMixin):
        raise ModelError(f"{config_file}: {class_name!r} is not a diffusers scheduler")
    return cls.from_config(config)


@dataclass
class Loaded:
    folder: Path
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    unet: torch.nn.Module
    scheduler: object
    device: torch.device
    dtype: torch.dtype


def load_components(
    folder: Path,
    device: torch.device,
    dtype: torch.dtype,
    scheduler: str | None = None,
    channels_last: bool = False,
) -> Loaded:
    """Load vae, text encoder, tokenizer, unet and scheduler with their own library classes."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.utils import logging as dlogging
    from transformers import CLIPTextModel, CLIPTokenizer
    from transformers.utils import logging as tlogging

    _refuse_pickles(folder)
    # Reading a local folder needs no progress bars (downloads showed theirs already).
    bars = tlogging.is_progress_bar_enabled()
    dlogging.disable_progress_bar()
    tlogging.disable_progress_bar()
    try:
        vae = AutoencoderKL.from_pretrained(
            folder, subfolder="vae", torch_dtype=dtype, use_safetensors=True
        )
        unet = UNet2DConditionModel.from_pretrained(
            folder, subfolder="unet", torch_dtype=dtype, use_safetensors=True
        )
        text_encoder = CLIPTextModel.from_pretrained(
            folder, subfolder="text_encoder", dtype=dtype, use_safetensors=True
        )
        tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
    except (OSError, ValueError) as exc:
        raise ModelError(f"could not load the model in {folder}: {exc}") from exc
    finally:
        dlogging.enable_progress_bar()
        if bars:
            tlogging.enable_progress_bar()
    sched = make_scheduler(scheduler, folder)
    for module in (vae, unet, text_encoder):
        module.requires_grad_(False)
        module.eval()
        module.to(device)
    if channels_last:
        unet.to(memory_format=torch.channels_last)
        vae.to(memory_format=torch.channels_last)
    return Loaded(folder, vae, text_encoder, tokenizer, unet, sched, device, dtype)
