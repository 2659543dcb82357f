"""The remote engine (``--engine URL``) against a loopback server speaking the real wire
format (tests/support/wireserver.py): same takes as the local engine, and every fault a live
instrument meets (down, slow, restarted, garbage, loading, refused) is an exception from
``render`` (which the instrument survives), never a hang."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image
from support.engines import make_request
from support.pad import IDLE, pad_script, write_capture
from support.wireserver import WireServer

from riffpad.engine.engine import RenderRequest, RequestError, Take
from riffpad.engine.remote import RemoteEngine, RemoteError
from riffpad.instrument.settings import Settings
from riffpad.instrument.status import Snapshot, StatusView
from riffpad.instrument.wiring import build
from riffpad.jam.session import JamConfig
from riffpad.jam.sim import tone_clip

pytestmark = pytest.mark.usefixtures("single_thread")
ROOT = Path(__file__).resolve().parents[2]
REQ = RenderRequest("jazz piano", "dub bass", alpha=0.4, seed_a=3, steps=3, denoising=0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(engine):
    srv = WireServer(engine)
    yield srv
    srv.stop()


def same_take(a, b):
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert np.array_equal(a.audio, b.audio) and a.sample_rate == b.sample_rate
    assert a.lineage == b.lineage


def test_remote_takes_equal_local_ones_promoted_prompts_too(engine, server):
    remote = RemoteEngine(server.url)
    assert remote.connect() is None and remote.kind == "riffpad"
    assert remote.seed_images() == engine.seed_images()
    same_take(remote.render(REQ), engine.render(REQ))
    promoted = remote.promote(REQ)
    assert promoted == engine.promote(REQ)
    nxt = RenderRequest(promoted, "church bells", alpha=0.5, steps=3, denoising=0.5)
    take = remote.render(nxt)
    same_take(take, engine.render(nxt))
    assert take.params["model"] == engine.model and "round_trip_s" in take.timings
    assert "round trip" in remote.status_line()


def test_server_down_then_back_on_the_same_port(engine):
    port = free_port()
    remote = RemoteEngine(f"http://127.0.0.1:{port}")
    t0 = time.monotonic()
    with pytest.raises(RemoteError, match="unreachable"):
        remote.render(REQ)
    assert time.monotonic() - t0 < 3
    assert remote.failures == 1 and "unreachable" in remote.status_line()
    srv = WireServer(engine, port=port)
    try:
        same_take(remote.render(REQ), engine.render(REQ))
    finally:
        srv.stop()


def test_a_restarted_server_is_reached_on_a_fresh_connection(engine):
    srv = WireServer(engine)
    remote = RemoteEngine(srv.url)
    remote.render(REQ)  # leaves a kept-alive connection in the pool
    srv.stop()
    srv = WireServer(engine, port=srv.port)
    try:
        same_take(remote.render(REQ), engine.render(REQ))
        assert remote.failures == 0
    finally:
        srv.stop()


def test_slow_garbage_loading_refused_and_bad_requests(engine, server):
    server.mode, server.slow_s = "slow", 2.0
    with pytest.raises(RemoteError, match=r"took more than [01] s"):
        RemoteEngine(server.url, timeout=0.5).render(REQ)
    server.mode = "garbage"
    with pytest.raises(RemoteError, match="garbage"):
        RemoteEngine(server.url).render(REQ)
    server.mode = "loading"
    remote = RemoteEngine(server.url)
    assert "not ready" in remote.connect()
    with pytest.raises(RemoteError, match=r"503.*loading"):
        remote.render(REQ)
    server.mode, server.token = "ok", "s3cret-token-for-tests"
    with pytest.raises(RemoteError, match="token"):
        remote.render(REQ)
    RemoteEngine(server.url, token="s3cret-token-for-tests").render(REQ)
    with pytest.raises(RequestError, match="no-such-seed"):
        RemoteEngine(server.url, token="s3cret-token-for-tests").render(
            RenderRequest("x", steps=2, seed_image="no-such-seed")
        )
    with pytest.raises(RequestError, match="not a path"):
        remote.render(RenderRequest("x", seed_image="/etc/passwd"))


def test_riffusion_server_jpeg_and_mp3(engine, server):
    server.mode = "riffusion"
    remote = RemoteEngine(server.url)
    assert remote.connect() is None and remote.kind == "riffusion"
    take = remote.render(REQ)
    local = engine.render(REQ)
    assert take.params["formats"] == ["image/jpeg", "audio/mpeg"]
    assert take.image.size == local.image.size and take.lineage == REQ.to_dict()
    other = engine.render(RenderRequest("techno", alpha=0.4, seed_a=99, steps=3, denoising=0.5))

    def diff(a, b):
        return np.abs(np.asarray(a.image, int) - np.asarray(b.image, int)).mean()

    # JPEG of the tiny model's noisy images is rough, but far nearer than another clip.
    assert diff(take, local) < diff(other, local) / 2
    assert abs(len(take.audio) - len(local.audio)) < 3000  # MP3 frames
    with pytest.raises(RequestError, match="promoted"):
        remote.render(RenderRequest(remote.promote(REQ), steps=3))


# -- the instrument through a remote engine ----------------------------------------------

CLIP = 441 * 40


class ToneServerEngine:
    """Server side: 0.4 s clips (a new pitch each), so a jam in real time stays short."""

    def __init__(self):
        self.count = 0

    def seed_images(self):
        return ["og_beat"]

    def render(self, request):
        self.count += 1
        image = Image.new("RGB", (8, 8), (self.count % 256, 0, 0))
        audio = tone_clip(CLIP, self.count)
        return Take(image, audio, 44100, request.to_dict(), {}, request.to_dict(), request)


def test_killing_the_server_mid_jam_repeats_then_recovers(tmp_path):
    tone = ToneServerEngine()
    srv = WireServer(tone)
    port = srv.port
    remote = RemoteEngine(srv.url, timeout=2.0)
    script = pad_script([(4.0, IDLE)])
    cap = write_capture(tmp_path / "in.jsonl", script)
    opts = Settings(
        replay=str(cap),
        out=str(tmp_path / "watched"),
        no_audio=True,
        live=False,
        record_audio=str(tmp_path / "session.wav"),
        jam=True,
    )
    view = StatusView(Snapshot(), live=False, stream=open(tmp_path / "log.txt", "w"))
    inst = build(
        opts, view, engine=remote, make_request=make_request, jam=JamConfig(crossfade_s=0.02)
    )
    box = {}

    def outage():
        time.sleep(1.0)
        srv.stop()
        box["before"] = tone.count
        time.sleep(1.2)
        box["server"] = WireServer(tone, port=port)

    import threading

    t = threading.Thread(target=outage)
    t.start()
    try:
        assert inst.run() == 0
    finally:
        t.join()
        box["server"].stop()
    assert inst.failures >= 1  # each failed clip flashed the pad red
    s = inst.jam.streams[0]
    assert any(sl.repeat for sl in s.slots)  # the jam repeated instead of going silent
    assert tone.count > box["before"]  # ... and picked up again once the server was back
    audio, _ = soundfile.read(tmp_path / "session.wav", dtype="float32")
    win = 441
    rms = np.sqrt(np.mean(audio[: len(audio) // win * win].reshape(-1, win) ** 2, axis=1))
    assert rms[3:-3].min() > 0.2  # never silent
    log = (tmp_path / "log.txt").read_text()
    assert "unreachable" in log or "dropped" in log
    assert "round trip" in inst.snap.device  # the status view's engine line, kept live


def test_replay_against_an_unreachable_engine_plays_to_its_end_and_exits_0(tmp_path):
    from support.pad import FIRE

    script = pad_script([(0.1, IDLE), (0.06, FIRE), (0.06, IDLE), (0.3, IDLE)])
    cap = write_capture(tmp_path / "in.jsonl", script)
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    url = f"http://127.0.0.1:{free_port()}"
    args = ["--replay", str(cap), "--engine", url, "--no-audio", "--out", str(tmp_path / "w")]
    r = subprocess.run(
        [sys.executable, "-m", "riffpad", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Traceback" not in out
    assert f"engine {url}" in out and "unreachable" in out
    assert "generation failed (fire #1)" in out
    assert not list((tmp_path / "w").glob("*.json"))


def test_engine_option_is_a_config_key_and_checks_the_url(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('engine = "ftp://nowhere"\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    r = subprocess.run(
        [sys.executable, "-m", "riffpad", "--config", str(cfg), "--replay", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    # a config-file value is refused as every bad config value is: exit 1, file and key named
    assert r.returncode == 1 and "--engine wants http://host:port" in r.stderr, r.stderr
    assert "c.toml: engine:" in r.stderr


def test_riffpad_render_engine_url_writes_the_local_take(engine, server, tmp_path):
    from click.testing import CliRunner

    from riffpad.cli import main

    args = ["render", "--engine", server.url, "-a", "jazz piano", "-b", "dub bass"]
    args += ["--alpha", "0.4", "--seed-a", "3", "--steps", "3", "--denoise", "0.5"]
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "clip")])
    assert r.exit_code == 0, r.output
    local = engine.render(REQ)
    image = Image.open(tmp_path / "clip.png")
    assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(local.image))
    meta = json.loads((tmp_path / "clip.json").read_text())
    assert meta["lineage"] == local.lineage and "round_trip_s" in meta["timings"]
    r = CliRunner().invoke(main, ["render", "--engine", "http://127.0.0.1:1", "-a", "x"])
    assert r.exit_code == 1 and "unreachable" in r.output
