"""riffpad serve under load: Ray Serve with batching on and off against Riffusion's
one-at-a-time server design, on the tiny model (CPU), measured in one run.

Closed loop: each performer sends its next request when its last one is answered. For 1, 4
and 16 performers: requests/s and p50/p99 latency for
- ``riffusion``: one request at a time (Riffusion's Flask server runs ``threaded=False``):
  the performers' requests go one after another through ``Engine.render``, in process (no
  HTTP cost: the baseline is, if anything, flattered);
- ``serve-batch-off``: riffpad serve, ``--max-batch 1``;
- ``serve-batch-on``: riffpad serve, ``--max-batch 16``, 5 ms wait.
Then jam performers one server keeps fed at 15 and 50 steps: a jam performer needs a clip
every period (5.06 s: 5.11 s clips, 50 ms crossfade), rendered within that period.

Runs itself inside a loopback-only network namespace (Ray binds on every interface).

    PYTHONPATH=. python benchmarks/bench_serve.py [--requests 3] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
import _paths  # noqa: E402, F401  (the repository root on sys.path: see _paths.py)

PERIOD_S = (225351 - round(0.05 * 44100)) / 44100
PORT = 3013


def percentiles(lat):
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


def closed_loop(send, performers: int, per_performer: int):
    """Run ``performers`` threads each sending ``per_performer`` requests back to back."""
    lat: list[float] = []
    lock = threading.Lock()

    def performer(k):
        for i in range(per_performer):
            t0 = time.perf_counter()
            send(k, i)
            with lock:
                lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=performer, args=(k,)) for k in range(performers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    p50, p99 = percentiles(lat)
    return {"rps": len(lat) / wall, "p50_s": p50, "p99_s": p99, "n": len(lat)}


def request_for(k, i, steps):
    from riffpad.engine.engine import RenderRequest

    # Performers play different prompts and seeds; Riffusion's default strength for all.
    prompt = ("jazz piano", "dub bass", "techno", "church bells")[k % 4]
    return RenderRequest(prompt, "lofi beat", alpha=(k % 5) / 5, seed_a=100 * k + i, steps=steps)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2, help="per performer and level")
    ap.add_argument("--steps", type=int, default=15, help="for the throughput table")
    ap.add_argument("--levels", default="1,4,16")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if os.environ.get("RIFFPAD_NETNS") != "1":
        script = 'ip link set lo up && exec "$0" "$@"'
        cmd = ["unshare", "-n", "sh", "-c", script, sys.executable, *sys.argv]
        env = dict(os.environ, RIFFPAD_NETNS="1", PYTHONPATH=str(ROOT))
        sys.exit(subprocess.call(cmd, env=env))

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import signal

    import ray
    import torch
    import urllib3
    from ray import serve

    from riffpad.engine import Engine
    from tests.support.tinymodel import save_tiny_model

    torch.set_num_threads(1)  # as a Ray replica: one thread each
    model = str(save_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    levels = [int(x) for x in args.levels.split(",")]
    results: dict = {"machine": os.uname().nodename, "cpus": os.cpu_count(), "rows": []}

    engine = Engine.load(model, device="cpu")
    engine.warmup()
    lock = threading.Lock()

    def riffusion_send(k, i, steps=args.steps):
        with lock:  # one at a time, as threaded=False
            engine.render(request_for(k, i, steps))

    ray.init(include_dashboard=False, logging_level="warning", log_to_driver=False)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C still shuts Ray down
    try:
        run(args, results, levels, riffusion_send, model, serve, http_factory=urllib3)
    finally:
        serve.shutdown()
        ray.shutdown()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


def run(args, results, levels, riffusion_send, model, serve, http_factory) -> None:
    from riffpad.engine import wire
    from riffpad.serve.app import ServeConfig, build_app

    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    apps = {"serve-batch-off": 1, "serve-batch-on": 16}
    for name, batch in apps.items():
        cfg = ServeConfig(model=model, max_batch=batch, batch_wait_s=0.005)
        serve.run(build_app(cfg), name=name, route_prefix=f"/{name}", blocking=False)
    http = http_factory.PoolManager(maxsize=32)
    server_s: dict[str, list] = {}  # the engine's own seconds and batch size per answer
    for name in apps:
        while http.request("GET", f"http://127.0.0.1:{PORT}/{name}/health").status != 200:
            time.sleep(0.5)

    def sender(name, steps):
        def send(k, i):
            body = json.dumps(wire.request_to_inference_input(request_for(k, i, steps)))
            r = http.request("POST", f"http://127.0.0.1:{PORT}/{name}/run_inference/", body=body)
            assert r.status == 200, r.data[:200]
            timings = json.loads(r.data)["timings"]
            server_s.setdefault(name, []).append((timings["total_s"], timings.get("batch", 1)))

        return send

    print(f"tiny model, CPU, {args.steps} steps, {args.requests} requests per performer")
    print(f"{'design':>16} {'performers':>10} {'req/s':>8} {'p50 s':>8} {'p99 s':>8}")
    for n in levels:
        base = None
        for name in ("riffusion", *apps):
            send = riffusion_send if name == "riffusion" else sender(name, args.steps)
            server_s.pop(name, None)
            row = closed_loop(send, n, args.requests)
            if name in server_s:  # how much of the latency the engine itself took
                row["engine_p50_s"] = float(np.median([t for t, _ in server_s[name]]))
                row["mean_batch"] = float(np.mean([b for _, b in server_s[name]]))
            row.update(design=name, performers=n, steps=args.steps)
            base = base or row["rps"]
            row["x_riffusion"] = row["rps"] / base
            results["rows"].append(row)
            print(
                f"{name:>16} {n:>10} {row['rps']:8.2f} {row['p50_s']:8.3f} {row['p99_s']:8.3f}"
                f"  x{row['x_riffusion']:.2f} vs riffusion"
                + (
                    f"  (engine p50 {row['engine_p50_s']:.2f} s, batch {row['mean_batch']:.1f})"
                    if "engine_p50_s" in row
                    else ""
                )
            )

    # Jam performers kept fed: the most performers whose every clip arrives within a period.
    fed = {}
    for steps in (15, 50):
        best, n = 0, 1
        while n <= 32:
            row = closed_loop(sender("serve-batch-on", steps), n, 2)
            if row["p99_s"] > PERIOD_S:
                break
            best, n = n, n * 2
        fed[steps] = {"performers": best, "last_p99_s": row["p99_s"]}
        print(f"jam performers fed at {steps} steps (batching on): {best}")
    results["jam_fed"] = fed


if __name__ == "__main__":
    main()
