"""A fire's job, the engine request made of it, and the metadata written with its take."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from riffpad import __version__
from riffpad.controls.params import Params
from riffpad.engine.api import EngineInfo, EngineTake


@dataclass
class Job:
    """What one take is made of: the pad's params and the prompts when it was asked for."""

    params: Params  # at fire time
    prompt_a: Any  # str, or the engine's promoted prompt (lineage)
    prompt_b: str
    fired_t: float  # monotonic time the firing report was read
    fired_wall: float
    seed_image: str | None = None
    id: int = 0  # the fire's number in this session (1, 2, ...); 0 for promote's request
    started_t: float | None = None
    queued: bool = False  # the worker was busy when it was fired

    @property
    def waited_s(self) -> float:
        """Fire to render start (0 until it started)."""
        return (self.started_t or self.fired_t) - self.fired_t


def render_request(job: Job):
    """The engine's RenderRequest for a job: which request field each parameter drives."""
    from riffpad.engine.engine import RenderRequest

    p = job.params
    return RenderRequest(
        prompt_a=job.prompt_a,
        prompt_b=job.prompt_b,
        alpha=float(p.alpha),
        seed_a=int(p.seed),
        steps=int(p.steps),
        guidance=float(p.cfg),
        # None: no seed image named, so the engine's default (Riffusion's og_beat)
        **({"seed_image": job.seed_image} if job.seed_image is not None else {}),
    )


def jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return str(v)


ENGINE_KEYS = ("model", "scheduler", "device", "dtype", "denoising")


def take_meta(
    job: Job, take: EngineTake, made_s: float, *, prompt_a: str, engine: EngineInfo
) -> dict:
    """A take's JSON record: the pad's params, the prompts, the engine, timings, audio."""
    engine_params = jsonable(take.params or {})
    meta: dict[str, Any] = job.params.record()
    meta.update(prompt_a=prompt_a, prompt_b=job.prompt_b, seed_image=job.seed_image)
    # The engine's own description wins (the scheduler's class, not "default").
    info = engine.as_dict()
    for key in ENGINE_KEYS:
        if key in info:
            meta[key] = info[key]
        elif key in engine_params:
            meta[key] = engine_params[key]
    timings = dict(jsonable(take.timings or {}))
    timings["fire_to_start_s"] = job.waited_s
    timings["fire_to_done_s"] = made_s
    meta["lineage"] = jsonable(take.lineage)
    meta["timings"] = timings
    meta["engine"] = engine_params
    audio = take.audio
    frames = len(audio) if audio is not None else 0
    meta["audio"] = {
        "sample_rate": int(take.sample_rate),
        "frames": frames,
        "seconds": round(frames / take.sample_rate, 4) if frames else 0,
    }
    meta["fire"] = {
        "id": job.id,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(job.fired_wall)),
    }
    meta["riffpad"] = __version__
    return meta
