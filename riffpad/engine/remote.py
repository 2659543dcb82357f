"""A remote engine: the local Engine's interface over Riffusion's HTTP API.

``RemoteEngine(url)`` renders on ``riffpad serve`` (or Riffusion's own Flask server) and
answers with the same Takes a local Engine makes: the instrument, jam, replay and
``riffpad render`` use it unchanged. A failure is an exception from ``render`` (the
instrument flashes the pad and plays on; the jam repeats its last clip), never a hang:
connecting gives up after ``connect_timeout`` seconds, an answer after ``timeout``.
Connections are kept alive (urllib3's pool); a pooled connection the server closed
(restarted) is retried once on a fresh one.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import urllib3

from riffpad.engine import wire
from riffpad.engine.api import EngineInfo, engine_url
from riffpad.engine.engine import RenderRequest, RequestError, Take, describe
from riffpad.engine.pipeline import Blend
from riffpad.engine.seeds import DEFAULT_SEED_IMAGE

log = logging.getLogger(__name__)

TOKEN_ENV = "RIFFPAD_ENGINE_TOKEN"
CONNECT_TIMEOUT_S = 2.0  # a server that does not accept within this is down, for a player
READ_TIMEOUT_S = 60.0  # a first render on a cold server can take this long; then it's down
HEALTH_TIMEOUT_S = 3.0


class RemoteError(RuntimeError):
    """The remote engine could not render (down, slow, loading, refused, garbage)."""


class RemoteEngine:
    """riffpad.engine.api.EngineAPI over HTTP: the instrument plays it as a local Engine."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = READ_TIMEOUT_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ):
        self.url = engine_url(url)
        self.token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=timeout)
        self._http = urllib3.PoolManager(num_pools=2, maxsize=4, retries=False)
        self._lock = threading.Lock()
        self.kind: str | None = None  # "riffpad" or "riffusion" once known
        self.health: dict = {}
        self.load_seconds: float | None = None
        self.warmup_seconds: float | None = None
        self.round_trips: list[float] = []
        self.failures = 0
        self.last_error: str | None = None
        self._scheduler_class: str | None = None

    # -- what the instrument shows ------------------------------------------------------
    @property
    def model(self) -> str:
        return str(self.health.get("model") or self.url)

    @property
    def device(self) -> str:
        where = self.health.get("device")
        return f"{self.url}" + (f" ({where})" if where else "")

    @property
    def dtype(self) -> str | None:
        return self.health.get("dtype")

    @property
    def scheduler_class(self) -> str | None:
        return self._scheduler_class or self.health.get("scheduler")

    def seed_images(self) -> list[str]:
        names = self.health.get("seed_images")
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return names
        return [DEFAULT_SEED_IMAGE]  # Riffusion's default, on any Riffusion server

    def default_seed_image(self) -> str:
        default = self.health.get("default_seed")  # riffpad serve says; Riffusion's has og_beat
        return default if isinstance(default, str) and default else DEFAULT_SEED_IMAGE

    def info(self) -> EngineInfo:
        return EngineInfo(self.model, self.scheduler_class, self.device, self.dtype)

    @staticmethod
    def describe_prompt(prompt) -> str:
        return prompt if isinstance(prompt, str) else describe(prompt)

    def status_line(self) -> str:
        """One line for the status view: where, how fast, what went wrong last."""
        parts = [self.device]
        if self.round_trips:
            parts.append(f"round trip {self.round_trips[-1]:.2f} s")
        if self.failures:
            last = f": {self.last_error}" if self.last_error else ""
            parts.append(f"{self.failures} failed{last}")
        return ", ".join(parts)

    # -- HTTP ----------------------------------------------------------------------------
    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _request(self, method: str, path: str, body: bytes | None = None, timeout=None):
        timeout = timeout or self.timeout
        for attempt in (1, 2):
            try:
                return self._http.request(
                    method, self.url + path, body=body, headers=self._headers(), timeout=timeout
                )
            except urllib3.exceptions.ProtocolError as exc:
                # A kept-alive connection the server dropped (restarted): once more, fresh.
                if attempt == 2:
                    raise RemoteError(f"{self.url} dropped the connection ({exc})") from None
            # NewConnectionError is a ConnectTimeoutError in urllib3 2: test it first.
            except urllib3.exceptions.NewConnectionError as exc:
                reason = str(exc).rsplit(":", 1)[-1].strip() or "refused"
                raise RemoteError(f"{self.url} unreachable ({reason})") from None
            except urllib3.exceptions.ConnectTimeoutError:
                raise RemoteError(f"{self.url} does not answer (connect timeout)") from None
            except urllib3.exceptions.ReadTimeoutError:
                raise RemoteError(
                    f"{self.url} took more than {self.timeout.read_timeout:.0f} s to answer"
                ) from None
            except urllib3.exceptions.HTTPError as exc:
                raise RemoteError(f"{self.url}: {exc}") from None
        raise AssertionError("unreachable")

    def check(self) -> dict:
        """GET /health: the server's model and device (riffpad), or Riffusion's server
        (no /health). RemoteError if it cannot be reached or is not ready yet."""
        timeout = urllib3.Timeout(connect=self.timeout.connect_timeout, read=HEALTH_TIMEOUT_S)
        r = self._request("GET", "/health", timeout=timeout)
        if r.status == 404:  # Riffusion's Flask server has no /health
            self.kind = "riffusion"
            self.health = {"model": "riffusion server", "seed_images": ["og_beat"]}
            return self.health
        body = _json(r.data)
        if r.status == 401:
            raise RemoteError(f"{self.url} wants a token: set {TOKEN_ENV}")
        if r.status != 200 or not isinstance(body, dict):
            why = body.get("error") or body.get("status") if isinstance(body, dict) else None
            raise RemoteError(f"{self.url} is not ready ({why or f'HTTP {r.status}'})")
        self.kind = "riffpad"
        self.health = body
        return body

    def connect(self) -> str | None:
        """Best effort at start: learn what the server is; the error message if not."""
        t0 = time.perf_counter()
        try:
            self.check()
        except RemoteError as exc:
            self.last_error = str(exc)
            return str(exc)
        self.load_seconds = time.perf_counter() - t0
        return None

    # -- the engine interface ------------------------------------------------------------
    def warmup(self, request: RenderRequest | None = None) -> float:
        """Checks the server is there and ready (the server warms its own model)."""
        t0 = time.perf_counter()
        self.check()
        self.warmup_seconds = time.perf_counter() - t0
        return self.warmup_seconds

    def promote(self, request: RenderRequest | dict) -> Blend:
        """As Engine.promote: pure maths on the request, no round trip."""
        if isinstance(request, dict):
            request = RenderRequest.from_dict(request)
        return request.blend

    def render(self, request: RenderRequest | dict, *, audio: bool = True, on_step=None) -> Take:
        if isinstance(request, dict):
            request = RenderRequest.from_dict(request)
        if self.kind == "riffusion":
            _check_riffusion_can(request)
        body = json.dumps(wire.request_to_inference_input(request)).encode()
        t0 = time.perf_counter()
        try:
            r = self._request("POST", "/run_inference/", body)
            take = self._take(r, request)
        except RemoteError as exc:
            self._failed(str(exc))
            raise
        rtt = time.perf_counter() - t0
        with self._lock:
            self.round_trips.append(rtt)
            del self.round_trips[:-100]
            self.last_error = None
        take.timings["round_trip_s"] = rtt
        if not audio:
            take.audio = None
        return take

    def _failed(self, message: str) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = message

    def _take(self, r, request: RenderRequest) -> Take:
        body = _json(r.data)
        if r.status != 200:
            message = body.get("error") if isinstance(body, dict) else None
            message = message or r.data[:200].decode("utf-8", "replace").strip()
            if r.status == 400:
                raise RequestError(f"{self.url}: {message}")
            if r.status == 401:
                raise RemoteError(f"{self.url} refused the token (set {TOKEN_ENV})")
            raise RemoteError(f"{self.url} answered HTTP {r.status}: {message}")
        try:
            got = wire.decode_output(body)
        except wire.WireError as exc:
            raise RemoteError(f"{self.url} answered garbage: {exc}") from None
        if got.lineage is None:  # Riffusion's server: what we asked is the lineage
            self.kind = self.kind or "riffusion"
            lineage = request.to_dict()
            params = {**request.to_dict(), "model": self.model, "server": "riffusion"}
        else:
            lineage, params = got.lineage, got.params
            self._scheduler_class = params.get("scheduler_class") or self._scheduler_class
        params["formats"] = list(got.formats)
        return Take(
            image=got.image,
            audio=got.audio,
            sample_rate=got.sample_rate,
            params=params,
            timings=dict(got.timings),
            lineage=lineage,
            request=request,
        )

    def close(self) -> None:
        self._http.clear()


def _json(data: bytes):
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def _check_riffusion_can(request: RenderRequest) -> None:
    """Riffusion's server takes prompts, seeds and image ids only: say what it cannot do."""
    if isinstance(request.prompt_a, Blend):
        raise RequestError(
            f"Riffusion's server cannot render a promoted prompt ({describe(request.prompt_a)})"
        )
    if request.scheduler not in (None, "default"):
        raise RequestError("Riffusion's server has no scheduler choice")
    seed = request.seed_image
    if seed is None or ":" in seed or seed.lower() == "none":
        raise RequestError(f"Riffusion's server needs a seed image id, not {seed!r}")


def open_remote(url: str) -> RemoteEngine:
    """``--engine URL``: a RemoteEngine, told on stderr what the server is. An unreachable
    server is not fatal: each render tries again (the player sees the failures).
    ValueError for a URL that is not http(s)://host:port."""
    import sys

    engine = RemoteEngine(url)
    problem = engine.connect()
    if problem:
        say = f"{problem}; trying again at each render"
    else:
        say = f"{engine.model} on {engine.device}"
    print(f"riffpad: engine {engine.url}: {say}", file=sys.stderr, flush=True)
    return engine


def remote_render(url: str, request: RenderRequest, *, audio: bool = True) -> Take:
    """``riffpad render --engine URL``: one take, or a ClickException saying why not."""
    import click

    try:
        engine = RemoteEngine(url)
        take = engine.render(request, audio=audio)
    except (ValueError, RemoteError) as exc:  # RequestError is a ValueError
        raise click.ClickException(str(exc)) from None
    click.echo(f"rendered on {engine.url} in {take.timings['round_trip_s']:.2f} s", err=True)
    return take
