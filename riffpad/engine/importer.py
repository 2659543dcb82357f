"""Single-file checkpoints (one ``.safetensors`` or ``.ckpt`` holding the whole SD 1.x model)
turned into a diffusers folder, with diffusers' own single-file loader and SD 1.5's configs.

A ``.ckpt`` is a pickle: it is read only through torch's weights-only unpickler and written
to a temporary safetensors file first, so diffusers never unpickles it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from riffpad import DEFAULT_MODEL
from riffpad.engine import hub, weights

log = logging.getLogger(__name__)


class ImportFailed(RuntimeError):
    """The checkpoint could not become a diffusers folder; the message says why."""


def default_out(file: Path) -> Path:
    return weights.cache_root() / "imported" / file.stem


def config_source(config: str | None) -> str:
    """Where the SD 1.5 configs and tokenizer come from: a folder, a repo id, or the
    cached default model (which has them)."""
    if config:
        return str(Path(config).expanduser()) if Path(config).expanduser().is_dir() else config
    cached = hub.cached_folder(DEFAULT_MODEL)
    if cached is not None:
        return str(cached)
    if hub.offline():
        raise ImportFailed(
            "import needs SD 1.5's configs and tokenizer: pull the default model first "
            f"({hub.pull_command(DEFAULT_MODEL, None)}) or give --config FOLDER"
        )
    return DEFAULT_MODEL


def safetensors_of(file: Path, tmp: Path) -> Path:
    """``file`` itself when it is safetensors, else its tensors copied to one."""
    if file.suffix == ".safetensors":
        return file
    if file.suffix not in weights.PICKLE_SUFFIXES:
        raise ImportFailed(f"{file}: expected a .safetensors or .ckpt checkpoint")
    try:
        data = weights.load_pickle_weights(file)
    except weights.WeightsError as exc:
        raise ImportFailed(str(exc)) from None
    state = data.get("state_dict", data)  # Lightning-style checkpoints nest the weights
    if not isinstance(state, dict):
        raise ImportFailed(f"{file}: no state_dict of tensors inside")
    import torch
    from safetensors.torch import save_file

    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    out = tmp / (file.stem + ".safetensors")
    save_file(weights.tensors_only(tensors, file), out)
    return out


def import_single_file(file: Path, out: Path | None = None, config: str | None = None) -> Path:
    from diffusers import StableDiffusionPipeline

    out = Path(out) if out else default_out(file)
    if out.exists() and any(out.iterdir()):
        raise ImportFailed(f"{out} already exists and is not empty; give --out")
    source = config_source(config)
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        st = safetensors_of(Path(file), Path(tmp))
        try:
            pipe = StableDiffusionPipeline.from_single_file(
                str(st),
                config=source,
                safety_checker=None,
                requires_safety_checker=False,
                local_files_only=hub.offline() or Path(source).is_dir(),
            )
        except Exception as exc:  # diffusers' conversion errors vary by version
            raise ImportFailed(
                f"{file}: not an SD 1.x checkpoint diffusers can read ({exc})"
            ) from exc
        out.mkdir(parents=True, exist_ok=True)
        for part in ("vae", "text_encoder", "unet", "tokenizer", "scheduler"):
            getattr(pipe, part).save_pretrained(out / part, safe_serialization=True)
        pipe.save_config(out)  # model_index.json
    return out
