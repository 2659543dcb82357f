"""Models on the Hugging Face Hub: which files riffpad fetches, and saying so in its own words.

riffpad downloads only what it loads: ``model_index.json``, the scheduler and tokenizer, and for
vae, text_encoder and unet their config plus one weight format (safetensors when the repo has
them, else pickled ``.bin``; never fp16/ema duplicates), and ``seed_images/*.png``. Not the
safety checker, not a training checkpoint at the top level, not ``unet_traced/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from riffpad import DEFAULT_MODEL
from riffpad.engine import weights

# What the default model weighs in riffpad's selection (fp32 .bin: unet 3.44 GB, text encoder
# 0.49 GB, vae 0.33 GB), for the message shown before anything could be asked of the Hub.
DEFAULT_MODEL_SIZE = 4_270_000_000
_SMALL_DIRS = ("scheduler", "tokenizer")


class HubError(RuntimeError):
    """The Hub could not be asked or could not deliver; the message says what to do."""


def is_repo_id(model: str) -> bool:
    text = str(model)
    return text.count("/") == 1 and not text.startswith((".", "/", "~")) and " " not in text


def hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def human(n: int | None) -> str:
    if n is None:
        return "unknown size"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def choose_files(names: list[str]) -> list[str]:
    """The repo files riffpad needs, from the repo's file list."""
    keep = [n for n in names if n == "model_index.json"]
    keep += [n for n in names if n.split("/")[0] in _SMALL_DIRS and n.count("/") == 1]
    keep += [n for n in names if n.startswith("seed_images/") and n.endswith(".png")]
    for part in weights.WEIGHTED:
        inside = [
            n.split("/", 1)[1] for n in names if n.startswith(part + "/") and n.count("/") == 1
        ]
        if "config.json" in inside:
            keep.append(f"{part}/config.json")
        fmt = weights.pick_format(inside)
        if fmt is not None:
            keep += [f"{part}/{n}" for n in weights.weight_files(inside, fmt)]
    return sorted(dict.fromkeys(keep))


@dataclass
class Plan:
    repo: str
    revision: str | None
    commit: str
    files: dict[str, int | None]  # repo path -> size
    missing: list[str]  # incomplete reasons (no weights for unet...)

    @property
    def size(self) -> int:
        return sum(s or 0 for s in self.files.values())


def plan(repo: str, revision: str | None = None) -> Plan:
    """Ask the Hub what riffpad would fetch (names and sizes)."""
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(repo, revision=revision, files_metadata=True)
    except Exception as exc:
        raise HubError(explain(exc, repo, revision)) from None
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    files = {n: sizes[n] for n in choose_files(list(sizes))}
    missing = []
    for part in weights.WEIGHTED:
        if not any(n.startswith(part + "/") and not n.endswith(".json") for n in files):
            missing.append(f"{part}/ has no weights")
    if "model_index.json" not in files:
        missing.append("no model_index.json (not a diffusers model)")
    return Plan(repo, revision, info.sha or revision or "main", files, missing)


def download(p: Plan, cache_dir: str | Path | None = None) -> Path:
    """Fetch the plan's files into the Hugging Face cache (progress bars; files already there
    are kept, so a pull that was stopped fetches only what is still missing)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                p.repo,
                revision=p.revision,  # a branch name, so the cache records refs/<branch>
                allow_patterns=list(p.files),
                cache_dir=cache_dir,
            )
        )
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            raise HubError(
                f"the disk filled up while downloading {p.repo} to {cache_dir or hub_cache()}. "
                "Files that finished are kept; free some space and run the pull again."
            ) from None
        raise HubError(explain(exc, p.repo, p.revision)) from None
    except Exception as exc:
        raise HubError(explain(exc, p.repo, p.revision)) from None


def cached_folder(
    repo: str, revision: str | None = None, cache_dir: str | Path | None = None
) -> Path | None:
    """The cached snapshot of ``repo`` at ``revision``, without touching the network.

    Found through its ``model_index.json``: snapshot_download(local_files_only) would refuse
    a snapshot that lacks files riffpad chose not to fetch (safety checker, training ckpt)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(
            repo, "model_index.json", cache_dir=cache_dir, revision=revision
        )
    except Exception:
        return None
    return Path(found).parent if isinstance(found, str) else None


def pull_command(repo: str, revision: str | None) -> str:
    cmd = "riffpad model pull" + ("" if repo == DEFAULT_MODEL else f" {repo}")
    return cmd + (f" --revision {revision}" if revision else "")


def explain(exc: BaseException, repo: str, revision: str | None) -> str:
    """One line in riffpad's words for what went wrong asking the Hub (no library advice)."""
    from huggingface_hub import errors

    rev = f" at revision {revision!r}" if revision else ""
    if isinstance(exc, errors.RevisionNotFoundError):
        return f"{repo} has no revision {revision!r} on the Hub"
    if isinstance(exc, errors.GatedRepoError):
        return f"{repo} is gated: accept its terms on the Hub and log in (hf auth login)"
    if isinstance(exc, errors.RepositoryNotFoundError):
        return f"no model {repo}{rev} on the Hub (or it is private)"
    if isinstance(exc, errors.OfflineModeIsEnabled) or offline():
        return "Hugging Face offline mode is on (HF_HUB_OFFLINE), so riffpad cannot download"
    return f"could not reach the Hugging Face Hub ({type(exc).__name__})"


def first_run_message(repo: str, revision: str | None, reason: str) -> str:
    size = f"about {human(DEFAULT_MODEL_SIZE)}" if repo == DEFAULT_MODEL else "size shown by pull"
    home = os.environ.get("HF_HOME") or str(hub_cache().parent)
    return (
        f"The model {repo}{f' ({revision})' if revision else ''} is not downloaded yet, "
        f"and {reason}.\n"
        f"  Size: {size}. It goes to the Hugging Face cache: {hub_cache()} (HF_HOME={home}).\n"
        f"  Fetch it once while online:  {pull_command(repo, revision)}\n"
        "  Or play a model folder you already have:  --model PATH"
    )
