"""The Ray Serve application: Riffusion's HTTP API in front of riffpad's engine.

One deployment, one replica per GPU (or share of one). Each replica is the FastAPI ingress
for its requests and batches them with ``@serve.batch``: requests that arrive within a few
milliseconds of each other go to ``Engine.render_batch``, which sends those sharing steps,
strength and size through the UNet together. The model loads on a thread after the replica
starts, so the HTTP entry answers at once: 503 until the engine is warm.

Imported only by ``riffpad serve`` (and Ray's workers): Ray is an optional extra.
"""

# No ``from __future__ import annotations``: FastAPI reads the route parameters' types.
import asyncio
import hashlib
import hmac
import logging
import threading
import time
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from ray import serve

from riffpad.engine import wire

log = logging.getLogger("riffpad.serve")

ROUTE = "/run_inference/"


@dataclass(frozen=True)
class ServeConfig:
    model: str
    replicas: int = 1
    gpus_per_replica: float = 0.0
    max_batch: int = 8  # 1: no batching (Riffusion's one request at a time, per replica)
    batch_wait_s: float = 0.005
    token_sha256: str | None = None  # the bearer token's hash; None: no token asked
    device: str | None = None  # torch device; None: CUDA if the replica has a GPU, else CPU


api = FastAPI(title="riffpad", docs_url=None, redoc_url=None, openapi_url=None)
# Riffusion's web app calls its server from another origin (its own port), as here.
api.add_middleware(
    CORSMiddleware,
    allow_origins=["*"],
    allow_methods=["GET", "POST"],
    allow_headers=["Authorization", "Content-Type"],
)


def _json(status: int, body: dict, **headers) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers or None)


@serve.ingress(api)
class Renderer:
    def __init__(self, config: ServeConfig):
        self.config = config
        self.engine = None
        self.load_error: str | None = None
        self.started = time.monotonic()
        # serve.batch reads these through the method's parameters at runtime.
        self._render_batch.set_max_batch_size(config.max_batch)
        self._render_batch.set_batch_wait_timeout_s(config.batch_wait_s)
        threading.Thread(target=self._load, name="riffpad-load", daemon=True).start()

    def _load(self) -> None:
        from riffpad.engine import Engine

        try:
            device = self.config.device
            if device is None:
                device = "cuda" if self.config.gpus_per_replica > 0 else "cpu"
            engine = Engine.load(self.config.model, device=device)
            engine.warmup()
            self.engine = engine
            log.info("replica ready: %s on %s", self.config.model, engine.device)
        except Exception as exc:  # told to every request (503) and to /health
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("the model failed to load: %s", self.load_error)

    # -- auth -----------------------------------------------------------------------------
    def _refused(self, request: Request) -> JSONResponse | None:
        want = self.config.token_sha256
        if want is None:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        got = hashlib.sha256(token.strip().encode()).hexdigest()
        if scheme.lower() != "bearer" or not hmac.compare_digest(got, want):
            body = wire.error_body("missing or wrong token: send Authorization: Bearer <token>")
            return _json(401, body, **{"WWW-Authenticate": "Bearer"})
        return None

    def _not_ready(self) -> JSONResponse | None:
        if self.engine is not None:
            return None
        if self.load_error is not None:
            return _json(503, wire.error_body(f"the model failed to load: {self.load_error}"))
        waited = time.monotonic() - self.started
        body = wire.error_body(f"loading the model ({waited:.0f} s so far)")
        return _json(503, body, **{"Retry-After": "2"})

    # -- routes ---------------------------------------------------------------------------
    @api.get("/health")
    async def health(self, request: Request):
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = {
            "status": "ready" if self.engine is not None else "loading",
            "model": self.config.model,
            "device": str(self.engine.device) if self.engine is not None else None,
            "replicas": self.config.replicas,
            "max_batch": self.config.max_batch,
            "seed_images": self.engine.seed_images() if self.engine is not None else [],
        }
        if self.engine is not None:
            body.update(
                scheduler=self.engine.scheduler_class,
                dtype=str(self.engine.dtype),
                default_seed=self.engine.default_seed_image(),
            )
        if self.load_error is not None:
            body.update(status="failed", error=self.load_error)
        return _json(200 if self.engine is not None else 503, body)

    @api.post(ROUTE)
    async def run_inference(self, request: Request):
        refused = self._refused(request) or self._not_ready()
        if refused is not None:
            return refused
        try:
            data = await request.json()
        except Exception as exc:
            return _json(400, wire.error_body(f"the request body is not JSON ({exc})"))
        try:
            render_request = wire.parse_inference_input(data)
            wire.check_servable(render_request)
        except ValueError as exc:  # RequestError: names the field
            return _json(400, wire.error_body(str(exc)))
        result = await self._render_batch(render_request)
        if isinstance(result, ValueError):  # RequestError, SeedError: the request's fault
            return _json(400, wire.error_body(str(result)))
        if isinstance(result, Exception):
            log.error("render failed: %s", result)
            return _json(500, wire.error_body(f"render failed: {type(result).__name__}: {result}"))
        return _json(200, result)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def _render_batch(self, requests: list) -> list:
        # The engine blocks: render on a thread so this replica keeps taking requests
        # (the next batch gathers while this one renders).
        return await asyncio.to_thread(self._render_and_encode, requests)

    def _render_and_encode(self, requests: list) -> list:
        out = []
        for take in self.engine.render_batch(requests):
            if isinstance(take, Exception):
                out.append(take)
                continue
            try:
                out.append(wire.encode_output(take))
            except Exception as exc:
                out.append(exc)
        return out


def build_app(config: ServeConfig):
    """The Serve application for ``serve.run``."""
    options = {"num_gpus": config.gpus_per_replica} if config.gpus_per_replica else {}
    deployment = serve.deployment(
        Renderer,
        name="riffpad",
        num_replicas=config.replicas,
        ray_actor_options=options,
        # Enough in flight per replica to fill two batches (one rendering, one gathering).
        max_ongoing_requests=max(2 * config.max_batch, 2),
        health_check_period_s=5,
    )
    return deployment.bind(config)
