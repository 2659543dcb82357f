"""Fake engines held to riffpad.engine.api.EngineAPI: they stand in for the model weights
(which cannot exist here); the real engine is held to the same contract in
tests/integration/test_app.py (test_the_real_engine_keeps_the_contract_...)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from riffpad.engine.api import EngineInfo
from riffpad.jam.sim import tone_clip

SR = 44100
CLIP = 441 * 40  # 0.4 s clips keep a real-time replay short; the grid logic is length-free


@dataclass
class Take:
    """What the instrument reads of riffpad.engine.Take (the fakes' takes)."""

    image: object
    audio: np.ndarray
    sample_rate: int
    params: dict
    timings: dict
    lineage: dict


class EngineContract:
    """The rest of riffpad.engine.api.EngineAPI, for fakes that render and promote."""

    model = "fake-model"
    device = "cpu"
    scheduler: str | None = None

    def warmup(self):
        return 0.0

    def seed_images(self):
        return []

    def default_seed_image(self):
        return "builtin:beat"

    def status_line(self):
        return self.info().describe()

    def info(self):
        return EngineInfo(self.model, self.scheduler, self.device)

    def describe_prompt(self, prompt):
        return prompt if isinstance(prompt, str) else str(prompt)


@dataclass
class FakeEngine(EngineContract):
    """Engine contract: render(request) -> Take(image, audio, sample_rate, params, timings,
    lineage); promote(request). Scriptable delay and failures."""

    delay: float = 0.3
    fail_on: set = field(default_factory=set)
    requests: list = field(default_factory=list)
    model: str = "fake-model"
    device: str = "cpu"
    gate: threading.Event | None = None
    scheduler: str | None = "FakeScheduler"

    def render(self, request, *, audio=True):  # makes audio either way, as EngineAPI allows
        self.requests.append(request)
        n = len(self.requests)
        if self.gate is not None:
            assert self.gate.wait(10)
        time.sleep(self.delay)
        if n in self.fail_on:
            raise RuntimeError(f"CUDA out of memory (fake, render {n})")
        audio = (0.2 * np.sin(np.arange(22050) * 0.05)).astype(np.float32)
        return Take(
            Image.new("RGB", (64, 64), (n, 0, 0)),
            audio,
            44100,
            dict(request, scheduler="FakeScheduler", model=self.model),
            {"render_s": self.delay},
            dict(request),
        )

    def promote(self, request):
        return f"({request['prompt_a']} + {request['prompt_b']})"


class ToneEngine(EngineContract):
    """The engine contract with clips that click if butt-joined (a new pitch each)."""

    model = "tone-model"
    device = "cpu"

    def __init__(self, delay=0.0, clock=None, fail_on=()):
        self.delay = delay
        self.requests = []
        self.fail_on = set(fail_on)

    def render(self, request, *, audio=True):  # makes audio either way, as EngineAPI allows
        self.requests.append(request)
        time.sleep(self.delay)
        k = len(self.requests)
        if k in self.fail_on:
            raise RuntimeError(f"CUDA out of memory (fake, render {k})")
        return Take(
            Image.new("RGB", (8, 8)), tone_clip(CLIP, k), SR, dict(request), {}, dict(request)
        )

    def promote(self, request):
        return "promoted"


def make_request(job):
    p = job.params
    return {
        "prompt_a": str(job.prompt_a),
        "prompt_b": job.prompt_b,
        "alpha": p.alpha,
        "seed_a": p.seed,
        "steps": p.steps,
        "guidance": p.cfg,
    }
