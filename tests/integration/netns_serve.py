"""The Ray Serve tests proper; run by tests/integration/test_serve_netns.py inside a loopback-only
network namespace (not collected on their own: the file name does not start with test_).
One ``riffpad serve`` (one Ray start) on the tiny model serves every test here."""

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-" + "x" * 28

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("RIFFPAD_NETNS") != "1",
        reason="Ray tests run only inside the private namespace (integration/test_serve_netns.py)",
    ),
    # The server's replica runs torch on one thread (Ray's OMP_NUM_THREADS=1); the local
    # engine here too, because CPU BLAS rounds differently with another thread count.
    pytest.mark.usefixtures("single_thread"),
]

RIFFUSION_BODY = {
    "alpha": 0,  # an int where Riffusion wants a float
    "num_inference_steps": 4,
    "seed_image_id": "og_beat",
    "mask_image_id": None,
    "start": {"prompt": "jazz piano", "seed": 10, "denoising": 0.5, "guidance": 7},
    "end": {"prompt": "dub bass", "seed": 11, "denoising": 0.5, "guidance": 7.0},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, body=None, token=TOKEN, timeout=120):
    """(status, JSON body) of a GET (no body) or POST."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def listeners(port: int) -> list[str]:
    """Local addresses of the LISTEN sockets on ``port`` (IPv4 and IPv6), from /proc."""
    found = []
    for name, size in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(name).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                raw = bytes.fromhex(addr)
                if size == 8:
                    found.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.append(socket.inet_ntop(socket.AF_INET6, words))
    return found


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    token_file = tmp / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    log = open(tmp / "serve.log", "w")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    args = ["--model", str(tiny_model_dir), "--port", str(port), "--token-file", str(token_file)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "riffpad", "serve", *args, "--batch-wait-ms", "50"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    seen = []
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp / "serve.log").read_text()[-3000:]
            try:
                status, body = call(url + "/health", timeout=5)
            except (OSError, ValueError):
                time.sleep(0.1)
                continue
            seen.append((status, body))
            if status == 200:
                break
            time.sleep(0.1)
        else:
            pytest.fail("riffpad serve not ready in 300 s:\n" + (tmp / "serve.log").read_text())
        yield {"url": url, "port": port, "seen": seen, "log": tmp / "serve.log"}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def decode_png(data_url):
    assert data_url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def test_health_is_503_while_loading_then_200(server, tiny_model_dir):
    seen = server["seen"]
    status, body = seen[-1]
    assert status == 200 and body["status"] == "ready"
    assert body["model"] == str(tiny_model_dir) and body["device"] == "cpu"
    assert body["replicas"] == 1
    early = [b for s, b in seen if s == 503]
    assert early and all(b["status"] == "loading" for b in early), seen[:5]
    # And a render asked while loading would have been a 503 too (same check, same flag).


def test_riffusion_request_gives_the_local_engine_image(server, engine):
    from riffpad.engine.wire import request_from_riffusion

    status, out = call(server["url"] + "/run_inference/", RIFFUSION_BODY)
    assert status == 200, out
    assert set(out) >= {"image", "audio", "duration_s"}
    assert out["audio"].startswith("data:audio/wav;base64,")
    local = engine.render(request_from_riffusion(RIFFUSION_BODY))
    image = decode_png(out["image"])
    assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(local.image))
    assert image.getexif() == local.image.getexif()  # Riffusion's spectrogram tags
    wav = base64.b64decode(out["audio"].split(",", 1)[1])
    audio, sr = soundfile.read(io.BytesIO(wav), dtype="float32")
    assert sr == 44100 and np.array_equal(audio, local.audio)
    assert out["duration_s"] == pytest.approx(len(local.audio) / 44100)


def test_errors_are_json_400_naming_the_field_and_401_without_token(server):
    url = server["url"] + "/run_inference/"
    status, body = call(url, {**RIFFUSION_BODY, "alpha": "half"})
    assert status == 400 and "alpha" in body["error"]
    status, body = call(url, {**RIFFUSION_BODY, "seed_image_id": "no_such_seed"})
    assert status == 400 and "no_such_seed" in body["error"]
    status, body = call(url, RIFFUSION_BODY, token=None)
    assert status == 401 and "token" in body["error"]
    status, body = call(url, RIFFUSION_BODY, token="wrong-" + "y" * 30)
    assert status == 401
    assert call(server["url"] + "/health", token=None)[0] == 401


def test_concurrent_performers_share_one_unet_batch(server, engine):
    from riffpad.engine import wire
    from riffpad.engine.engine import RenderRequest

    requests = [
        RenderRequest(p, alpha=a, seed_a=s, steps=4, denoising=0.5)
        for p, a, s in (("jazz", 0.1, 1), ("dub bass", 0.5, 2), ("techno", 0.9, 3))
    ]
    answers = [None] * len(requests)

    def send(i):
        body = wire.request_to_inference_input(requests[i])
        answers[i] = call(server["url"] + "/run_inference/", body)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batches = []
    for request, (status, out) in zip(requests, answers, strict=True):
        assert status == 200, out
        batches.append(out["timings"]["batch"])
        got = np.asarray(decode_png(out["image"]).convert("RGB"), int)
        local = engine.render(request)
        want = np.asarray(local.image, int)
        assert np.abs(got - want).max() <= 1  # batched: BLAS rounding only (test_engine_batch)
        assert out["lineage"] == local.lineage  # the seed the model defaults to, named
        assert out["lineage"]["seed_image"] in ("og_beat", "builtin:beat")
    assert max(batches) > 1, batches  # sent together, rendered together


def test_http_port_listens_on_loopback_only_by_default(server):
    addrs = listeners(server["port"])
    assert addrs, "nothing listens on the HTTP port"
    assert all(a in ("127.0.0.1", "::ffff:127.0.0.1") for a in addrs), addrs


def test_public_bind_without_token_file_is_refused_before_anything_listens(tmp_path):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "riffpad", "serve", "--host", "0.0.0.0", "--port", str(port)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2 and "--token-file" in r.stderr, r.stderr
    assert "ray" not in r.stderr.lower()  # refused before Ray started
    assert listeners(port) == []
    assert time.monotonic() - t0 < 60
    weak = tmp_path / "weak"
    weak.write_text("short\n")
    args = ["--host", "0.0.0.0", "--token-file", str(weak), "--port", str(port)]
    r = subprocess.run(
        [sys.executable, "-m", "riffpad", "serve", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2 and "at least 16 characters" in r.stderr, r.stderr


def test_replay_through_the_server_writes_the_local_engines_takes(server, tiny_model_dir, tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from support.pad import FIRE, IDLE, MOVED, MOVED_FIRE, pad_script, write_capture

    script = pad_script(
        [(0.1, IDLE), (0.06, FIRE), (0.06, IDLE), (0.06, MOVED), (0.06, MOVED_FIRE), (1.5, MOVED)]
    )
    cap = write_capture(tmp_path / "in.jsonl", script)
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        RIFFPAD_ENGINE_TOKEN=TOKEN,
        OMP_NUM_THREADS="1",
    )
    common = ["--replay", str(cap), "--no-audio", "--prompt-a", "jazz piano"]
    common += ["--prompt-b", "dub bass", "--no-live"]
    runs = {
        "remote": ["--engine", server["url"]],
        "local": ["--model", str(tiny_model_dir), "--torch-device", "cpu"],
    }
    metas = {}
    for name, extra in runs.items():
        out = tmp_path / name
        r = subprocess.run(
            [sys.executable, "-m", "riffpad", *common, *extra, "--out", str(out)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        metas[name] = [(p, json.loads(p.read_text())) for p in sorted(out.glob("*.json"))]
    assert len(metas["remote"]) == len(metas["local"]) == 2
    for (rp, remote), (lp, local) in zip(metas["remote"], metas["local"], strict=True):
        for key in ("alpha", "seed", "cfg", "steps", "prompt_a", "prompt_b", "lineage", "model"):
            assert remote[key] == local[key], key
        for key in ("params", "cfg", "unet_calls", "init_timestep", "image_size"):
            assert remote["engine"].get(key) == local["engine"].get(key), key
        r_png, l_png = (p.with_suffix(".png") for p in (rp, lp))
        assert np.array_equal(np.asarray(Image.open(r_png)), np.asarray(Image.open(l_png)))
        assert Image.open(r_png).getexif() == Image.open(l_png).getexif()
        r_wav, l_wav = (soundfile.read(p.with_suffix(".wav"))[0] for p in (rp, lp))
        assert np.array_equal(r_wav, l_wav)
        assert "round_trip_s" in remote["timings"]
