"""Find and load a Stable Diffusion v1 checkpoint in diffusers format.

The default is ``riffusion/riffusion-model-v1`` from the Hugging Face Hub: downloaded on first
use (only the files riffpad loads, see ``hub``), read from the cache afterwards, offline
included. A local folder in diffusers format works the same way. Safetensors weights are read
as they are; pickled ``.bin`` weights go once through torch's weights-only unpickler into a
safetensors copy in riffpad's cache (see ``weights``). The safety checker is never loaded.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from riffpad import DEFAULT_MODEL  # also riffpad.engine.DEFAULT_MODEL
from riffpad.engine import hub, weights
from riffpad.engine.weights import PICKLE_SUFFIXES, WEIGHTED

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_MODEL", "PICKLE_SUFFIXES", "WEIGHTED"]

# Named schedulers (diffusers classes, built from the checkpoint's scheduler config).
SCHEDULERS = {
    "pndm": "PNDMScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "ddim": "DDIMScheduler",
}
SCHEDULER_ALIASES = {"dpmsolver++": "dpm++", "dpm": "dpm++", "dpmpp": "dpm++"}


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


def check_folder(folder: Path) -> None:
    """A diffusers folder riffpad can load: every weighted component has weights."""
    try:
        weights.components(folder)
    except weights.WeightsError as exc:
        raise ModelError(str(exc)) from None


def resolve_model(
    model: str | Path = DEFAULT_MODEL,
    cache_dir: str | Path | None = None,
    revision: str | None = None,
) -> Path:
    """A local folder, or a Hub repo id (at ``revision``) found in or fetched to the cache.

    The cache is tried first, without network, so a downloaded model works offline.
    """
    path = Path(model).expanduser()
    if path.is_file():
        hint = " (turn it into one with: riffpad model import FILE)"
        raise ModelError(f"{model} is a file; give a folder in diffusers format{hint}")
    if path.is_dir():
        check_folder(path)
        return path
    if not hub.is_repo_id(str(model)):
        raise ModelError(f"{model}: no such folder, and not a Hugging Face repo id (owner/name)")
    repo = str(model)
    folder = hub.cached_folder(repo, revision, cache_dir)
    if folder is not None:
        try:
            weights.components(folder)
            return folder
        except weights.WeightsError:
            pass  # partly downloaded: fetch the rest
    if hub.offline():
        raise ModelError(
            hub.first_run_message(repo, revision, hub.explain(OSError(), repo, revision))
        )
    try:
        plan = hub.plan(repo, revision)
        if plan.missing:
            raise ModelError(f"{repo} is not a model riffpad can play: {'; '.join(plan.missing)}")
        log.warning(
            "downloading %s (%s, first run only; cached afterwards)", repo, hub.human(plan.size)
        )
        folder = hub.download(plan, cache_dir)
    except hub.HubError as exc:
        raise ModelError(hub.first_run_message(repo, revision, str(exc))) from None
    check_folder(folder)
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
    label: str = "",
) -> Loaded:
    """Load vae, text encoder, tokenizer, unet and scheduler with their own library classes."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.utils import logging as dlogging
    from transformers import CLIPTextModel, CLIPTokenizer
    from transformers.utils import logging as tlogging

    try:
        dirs = weights.load_dirs(folder, label=label)
    except weights.WeightsError as exc:
        raise ModelError(str(exc)) from None
    # Reading a local folder needs no progress bars (downloads showed theirs already).
    bars = tlogging.is_progress_bar_enabled()
    dlogging.disable_progress_bar()
    tlogging.disable_progress_bar()
    try:
        vae = AutoencoderKL.from_pretrained(dirs["vae"], torch_dtype=dtype, use_safetensors=True)
        unet = UNet2DConditionModel.from_pretrained(
            dirs["unet"], torch_dtype=dtype, use_safetensors=True
        )
        text_encoder = CLIPTextModel.from_pretrained(
            dirs["text_encoder"], dtype=dtype, use_safetensors=True
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
