"""``riffpad serve``: Riffusion's HTTP API on Ray Serve, for players on other machines.

Ray is imported only once the options are checked: a refused start opens no port.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import click

from riffpad import DEFAULT_MODEL
from riffpad.commands.options import torch_device_option

MIN_TOKEN_CHARS = 16


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        msg = f"{path}: {exc.strerror or exc}"
        raise click.BadParameter(msg, param_hint="--token-file") from None
    except UnicodeDecodeError:
        raise click.BadParameter(f"{path}: not UTF-8 text", param_hint="--token-file") from None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise click.BadParameter(
            f"{path}: the token must be one word of at least {MIN_TOKEN_CHARS} characters"
            " (e.g. python -c 'import secrets; print(secrets.token_urlsafe())')",
            param_hint="--token-file",
        )
    return token


def check_bind(host: str, token_file: Path | None) -> str | None:
    """The token, if any; refuses a non-loopback bind without one (before anything opens)."""
    if token_file is not None:
        return read_token(token_file)
    if not is_loopback(host):
        raise click.UsageError(
            f"--host {host} would let other machines use this server: give --token-file FILE "
            "too (every request must then carry Authorization: Bearer <token>), or serve on "
            "127.0.0.1"
        )
    return None


def wait_ready(url: str, token: str | None, stop: threading.Event, timeout: float) -> dict | None:
    """Poll /health until 200 (the body), a failed load (raises), or stop/timeout (None)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            body = _json_or_none(exc)
            if body and body.get("status") == "failed":
                msg = f"the model failed to load: {body.get('error')}"
                raise click.ClickException(msg) from None
        except (OSError, ValueError):
            pass
        stop.wait(0.5)
    return None


def _json_or_none(exc):
    try:
        return json.loads(exc.read())
    except (OSError, ValueError):
        return None


@click.command()
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Hub id or folder.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="HTTP address; anything but loopback needs --token-file.")  # fmt: skip
@click.option("--port", type=click.IntRange(1, 65535), default=3013, show_default=True,
              help="HTTP port (3013: where Riffusion's web app looks).")  # fmt: skip
@click.option("--replicas", type=click.IntRange(1), default=1, show_default=True,
              help="Model replicas (one per GPU).")  # fmt: skip
@click.option("--gpus-per-replica", type=click.FloatRange(0), default=None,
              help="GPUs per replica, fractions allowed (default: 1 with CUDA).")  # fmt: skip
@torch_device_option("torch device in each replica (default: the fastest there is).")
@click.option("--max-batch", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Requests one UNet batch may hold (1: no batching).")  # fmt: skip
@click.option("--batch-wait-ms", type=click.FloatRange(0, 1000), default=5.0, show_default=True,
              help="How long a request waits for company.")  # fmt: skip
@click.option("--address", metavar="RAY", help="Join this Ray cluster instead of starting one.")
@click.option("--token-file", type=click.Path(path_type=Path, dir_okay=False),
              help="File holding the bearer token every request must carry.")  # fmt: skip
def serve(
    model,
    host,
    port,
    replicas,
    gpus_per_replica,
    torch_device,
    max_batch,
    batch_wait_ms,
    address,
    token_file,
):
    """Serve the model over Riffusion's HTTP API (POST /run_inference/, GET /health)."""
    token = check_bind(host, token_file)  # before Ray: a refused start opens nothing
    try:
        import ray
        from ray import serve as ray_serve
    except ImportError:
        raise click.ClickException(
            "riffpad serve needs Ray Serve: pip install 'riffpad[serve]'"
        ) from None
    import hashlib

    from riffpad.serve.app import ServeConfig, build_app

    if gpus_per_replica is None:
        gpus_per_replica = 1.0 if _cuda_here() else 0.0
    model_arg = str(Path(model).resolve()) if Path(model).exists() else model
    config = ServeConfig(
        model=model_arg,
        replicas=replicas,
        gpus_per_replica=gpus_per_replica,
        max_batch=max_batch,
        batch_wait_s=batch_wait_ms / 1000.0,
        token_sha256=hashlib.sha256(token.encode()).hexdigest() if token else None,
        device=torch_device,
    )
    init = dict(include_dashboard=False, logging_level="warning", log_to_driver=False)
    if address:
        init["address"] = address
    elif is_loopback(host):
        init["_node_ip_address"] = "127.0.0.1"  # Ray's own addresses on loopback as well
    stop = threading.Event()
    ray.init(**init)
    # After ray.init, which installs its own handlers: Ctrl-C and SIGTERM stop cleanly.
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        ray_serve.start(http_options={"host": host, "port": port})
        ray_serve.run(build_app(config), name="riffpad", route_prefix="/", blocking=False)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        base = f"http://{shown}:{port}"
        click.echo(f"riffpad serve: {base}/run_inference/ (loading {model_arg})", err=True)
        health = wait_ready(f"{base}/health", token, stop, timeout=3600)
        if health is not None:
            click.echo(
                f"riffpad serve: ready on {health.get('device')}, {replicas} replica(s); "
                "Ctrl-C stops",
                err=True,
            )
        stop.wait()
    finally:
        click.echo("riffpad serve: stopping", err=True)
        try:
            ray_serve.shutdown()
        finally:
            ray.shutdown()
            for s, handler in previous.items():
                signal.signal(s, handler)


def _cuda_here() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False
