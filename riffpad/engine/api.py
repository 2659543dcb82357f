"""The engine contract the instrument plays through.

``riffpad.engine.Engine`` implements it in-process; a remote engine (a client of a render
server) implements the same methods. The instrument sees nothing else of an engine, and
this module imports nothing heavy, so the contract can be read without torch.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from riffpad.engine.engine import RenderRequest


class EngineTake(Protocol):
    """One rendered clip, as the instrument reads it (``riffpad.engine.Take``)."""

    image: Any  # PIL image: the spectrogram
    audio: np.ndarray | None
    sample_rate: int
    params: dict  # JSON-able: everything the clip was made with
    timings: dict  # JSON-able: seconds per stage
    lineage: dict  # JSON-able: render it again from this


@dataclass(frozen=True)
class EngineInfo:
    """What the status view and every take's metadata say about the engine."""

    model: str | None = None
    scheduler: str | None = None  # the scheduler's class, not "default"
    device: str | None = None
    dtype: str | None = None

    def describe(self) -> str:
        parts = [self.model or "", self.scheduler or "", f"on {self.device}" if self.device else ""]
        return " ".join(p for p in parts if p) or "engine"

    def as_dict(self) -> dict[str, str]:
        """The known fields only (take metadata)."""
        fields = {
            "model": self.model,
            "scheduler": self.scheduler,
            "device": self.device,
            "dtype": self.dtype,
        }
        return {k: v for k, v in fields.items() if v}


def engine_url(url: str) -> str:
    """``--engine``'s value as ``scheme://host:port`` (http assumed); ValueError if it is
    not an http(s) address."""
    parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"--engine wants http://host:port, not {url!r}")
    return f"{parsed.scheme}://{parsed.netloc}"


@runtime_checkable
class EngineAPI(Protocol):
    """Render takes and promote blends; one render at a time is all the instrument asks."""

    def render(self, request: RenderRequest, *, audio: bool = True) -> EngineTake:
        """One clip; raises on failure (the instrument says so and plays on). ``audio=False``:
        the caller rebuilds the audio from the image itself, so the engine may skip it
        (``take.audio`` None); a caller copes with either."""
        ...

    def promote(self, request: RenderRequest) -> Any:
        """The request's blend as a new prompt A (an opaque value the engine accepts back
        as ``RenderRequest.prompt_a``)."""
        ...

    def warmup(self) -> float:
        """One throw-away render so the first take is not slow; seconds it took."""
        ...

    def seed_images(self) -> list[str]:
        """Names of the seed images this engine can start from."""
        ...

    def default_seed_image(self) -> str:
        """The seed a request that names none starts from (og_beat, else a built-in loop)."""
        ...

    def info(self) -> EngineInfo:
        """Model, scheduler class, device and dtype."""
        ...

    def describe_prompt(self, prompt: Any) -> str:
        """Readable label of a prompt: text, or a promoted blend."""
        ...

    def status_line(self) -> str:
        """The status view's engine line (a remote engine adds its round trip)."""
        ...
