"""Model weights on disk: safetensors as shipped, or pickled ``.bin`` converted once.

Checkpoints uploaded before diffusers wrote safetensors (riffusion-model-v1, December 2022)
hold PyTorch pickles. A pickle can name any Python callable to run while it loads, so riffpad
reads one only through torch's restricted unpickler (``weights_only=True``: tensors and plain
containers, nothing callable), then writes the tensors to safetensors in riffpad's own cache,
keyed by the SHA-256 of the source files. Every later start memory-maps that safetensors file
and never unpickles again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

WEIGHTED = ("vae", "text_encoder", "unet")
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
CONVERT_VERSION = 1  # bump when the converted layout changes
_HEX64 = frozenset("0123456789abcdef")


class WeightsError(RuntimeError):
    """Weights that cannot be used; the message names the file and says why."""


def cache_root() -> Path:
    """riffpad's own cache (``$XDG_CACHE_HOME/riffpad`` on Linux)."""
    return platformdirs.user_cache_path("riffpad")


def converted_root() -> Path:
    return cache_root() / "converted"


def is_variant(name: str) -> bool:
    """``diffusion_pytorch_model.fp16.safetensors`` and the like: a duplicate riffpad skips."""
    stem = name.removesuffix(".index.json")  # x.safetensors.index.json names shards
    return "." in stem.rsplit(".", 1)[0]


def weight_files(names: list[str], fmt: str) -> list[str]:
    """The non-variant weight files (and shard index) of one format among ``names``."""
    ext = ".safetensors" if fmt == "safetensors" else ".bin"
    return sorted(
        n
        for n in names
        if (n.endswith(ext) or n.endswith(ext + ".index.json")) and not is_variant(n)
    )


def pick_format(names: list[str]) -> str | None:
    """Per component: safetensors when the repo has them, else pickled ``.bin``."""
    for fmt in ("safetensors", "bin"):
        if any(not n.endswith(".json") for n in weight_files(names, fmt)):
            return fmt
    return None


@dataclass(frozen=True)
class Component:
    name: str  # vae, text_encoder, unet
    source: Path  # the folder in the model
    fmt: str  # "safetensors" or "bin"
    files: tuple[Path, ...]  # the weight files riffpad reads (or converts)

    @property
    def size(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def component(folder: Path, name: str) -> Component:
    sub = Path(folder) / name
    if not sub.is_dir():
        raise WeightsError(f"{folder} is not a diffusers model folder: no {name}/ inside")
    names = [p.name for p in sub.iterdir() if p.is_file()]
    fmt = pick_format(names)
    if fmt is None:
        found = sorted(n for n in names if n.endswith((*PICKLE_SUFFIXES, ".safetensors")))
        extra = f" (found only {', '.join(found)})" if found else ""
        raise WeightsError(f"{sub} holds no weights riffpad can load{extra}")
    files = [sub / n for n in weight_files(names, fmt) if not n.endswith(".json")]
    return Component(name, sub, fmt, tuple(files))


def components(folder: Path) -> dict[str, Component]:
    return {name: component(folder, name) for name in WEIGHTED}


# -- hashing --------------------------------------------------------------------------------
def _hash_memo() -> Path:
    return cache_root() / "hashes.json"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes. A Hugging Face cache blob is named by it already; other
    files are hashed once and remembered by (path, size, mtime)."""
    real = Path(path).resolve()
    if len(real.name) == 64 and set(real.name) <= _HEX64 and real.parent.name == "blobs":
        return real.name
    st = real.stat()
    key = f"{real}|{st.st_size}|{st.st_mtime_ns}"
    memo_file = _hash_memo()
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    digest = hashlib.sha256()
    with open(real, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    memo[key] = digest.hexdigest()
    memo_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo_file.with_name(f"{memo_file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(memo, indent=0))
    os.replace(tmp, memo_file)
    return memo[key]


def conversion_key(comp: Component) -> str:
    h = hashlib.sha256(f"riffpad-convert-{CONVERT_VERSION}".encode())
    for f in comp.files:
        h.update(f"{f.name}:{file_sha256(f)}".encode())
    config = comp.source / "config.json"
    if config.is_file():
        h.update(config.read_bytes())
    return h.hexdigest()[:32]


# -- the restricted loader ------------------------------------------------------------------
def load_pickle_weights(path: Path) -> dict:
    """Tensors from a pickled checkpoint through torch's weights-only unpickler. Anything
    else in the pickle (a class, a function to call) is refused before it runs."""
    import torch

    try:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # mmap needs the zip format; legacy pickles load in memory
            if "mmap" not in str(exc):
                raise
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{path}: refused. This pickle holds more than tensors (torch's weights-only "
            f"loader stopped at: {first}); loading it could run code, so riffpad did not. "
            "Use a .safetensors copy of the model from a source you trust."
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({why})") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: holds a {type(data).__name__}, not a dict of tensors")
    return data


def tensors_only(data: dict, path: Path) -> dict:
    import torch

    bad = [k for k, v in data.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{path}: entries that are not tensors: {', '.join(map(str, bad[:5]))}")
    # safetensors stores each tensor on its own: copy the ones that share storage or are views.
    seen: set[int] = set()
    out = {}
    for k, v in data.items():
        ptr = v.untyped_storage().data_ptr()
        shared = ptr in seen or v.untyped_storage().nbytes() != v.nbytes
        seen.add(ptr)
        out[k] = v.contiguous().clone() if shared or not v.is_contiguous() else v
    return out


def _safetensors_name(comp: Component) -> str:
    transformers_style = any(f.name.startswith("pytorch_model") for f in comp.files)
    return "model.safetensors" if transformers_style else "diffusion_pytorch_model.safetensors"


def converted_dir(comp: Component) -> Path:
    return converted_root() / conversion_key(comp)


def convert(comp: Component, label: str = "") -> Path:
    """The component as a safetensors folder in riffpad's cache, converting on first use."""
    from safetensors.torch import save_file

    target = converted_dir(comp)
    name = _safetensors_name(comp)
    if (target / name).is_file() and (target / "config.json").is_file():
        return target
    log.warning("converting %s to safetensors (once; later starts read the copy)", comp.source)
    state: dict = {}
    for f in comp.files:
        state.update(tensors_only(load_pickle_weights(f), f))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_file(state, tmp / name, metadata={"format": "pt"})
        shutil.copyfile(comp.source / "config.json", tmp / "config.json")
        source = {
            "model": label or str(comp.source.parent),
            "component": comp.name,
            "files": {f.name: file_sha256(f) for f in comp.files},
        }
        (tmp / "source.json").write_text(json.dumps(source, indent=2) + "\n")
        if target.exists():  # another process finished first: keep its copy
            shutil.rmtree(tmp)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_dirs(folder: Path, label: str = "") -> dict[str, Path]:
    """For each weighted component, the folder ``from_pretrained`` should read: the model's own
    when it ships safetensors, else the converted copy in riffpad's cache."""
    out = {}
    for name, comp in components(folder).items():
        out[name] = comp.source if comp.fmt == "safetensors" else convert(comp, label)
    return out


def converted_entries() -> list[dict]:
    """What riffpad's conversion cache holds: one dict per converted component."""
    root = converted_root()
    entries = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if not d.is_dir() or d.name.endswith(".tmp"):
            continue
        try:
            meta = json.loads((d / "source.json").read_text())
        except (OSError, ValueError):
            meta = {}
        size = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
        entries.append({"path": d, "size": size, **meta})
    return entries
