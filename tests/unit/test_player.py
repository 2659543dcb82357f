import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from riffpad.audio.output import AudioUnavailable
from riffpad.audio.player import Player

ROOT = Path(__file__).resolve().parents[2]


class FakeStream:
    """Stands in for sounddevice.OutputStream: same constructor and start/stop/close; the
    test pulls blocks by calling the callback like PortAudio's thread would."""

    def __init__(self, *, samplerate, channels, dtype, callback, device, blocksize):
        assert dtype == "float32"
        self.channels = channels
        self.callback = callback
        self.blocksize = blocksize
        self.started = self.closed = False

    def start(self):
        self.started = True

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True

    def pull(self, frames):
        out = np.full((frames, self.channels), 99.0, dtype=np.float32)
        self.callback(out, frames, None, 0)
        return out


def make_player(**kw):
    streams = []

    def factory(**args):
        streams.append(FakeStream(**args))
        return streams[-1]

    p = Player(stream_factory=factory, **kw)
    p.start()
    return p, streams[0]


def test_plays_a_clip_once_on_every_channel_then_silence():
    p, s = make_player(blocksize=256)
    clip = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    p.play(clip)
    out = np.concatenate([s.pull(256) for _ in range(5)])
    assert out.shape == (1280, 2)
    np.testing.assert_allclose(out[:1000, 0], clip, atol=1e-7)
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    assert np.all(out[1000:] == 0)
    assert not p.playing


def test_new_take_crossfades_without_a_jump():
    sr = 1000
    p, s = make_player(samplerate=sr, crossfade=0.1, blocksize=64)  # 100-frame fade
    p.play(np.full(5000, 0.6, np.float32), sr)
    before = s.pull(64)
    assert np.allclose(before[:, 0], 0.6)
    p.play(np.full(5000, -0.3, np.float32), sr)
    out = np.concatenate([s.pull(64) for _ in range(4)])[:, 0]
    # During the fade: equal-power mix of the two, moving smoothly from 0.6 to -0.3.
    assert np.max(np.abs(np.diff(np.concatenate([[0.6], out])))) < 0.02
    assert out[0] > 0.55 and np.allclose(out[110:], -0.3)
    # The jam's seam shape: equal-power gains sampled at the midpoints.
    g = np.sin(0.5 * np.pi * (np.arange(100) + 0.5) / 100)
    np.testing.assert_allclose(out[:100], 0.6 * g[::-1] - 0.3 * g, atol=1e-5)
    assert p.crossfades == 1


def test_third_take_mid_fade_stays_smooth():
    sr = 1000
    p, s = make_player(samplerate=sr, crossfade=0.1, blocksize=32)
    p.play(np.full(5000, 0.8, np.float32), sr)
    s.pull(32)
    p.play(np.full(5000, -0.8, np.float32), sr)
    s.pull(32)  # a third of the way into the fade
    prev = s.pull(1)[0, 0]
    p.play(np.full(5000, 0.2, np.float32), sr)
    out = np.concatenate([[prev], s.pull(256)[:, 0]])
    assert np.max(np.abs(np.diff(out))) < 0.05
    assert np.allclose(out[-50:], 0.2)


def test_loop_and_stop_fade_out():
    sr = 1000
    p, s = make_player(samplerate=sr, crossfade=0.05, blocksize=100, loop=True)
    clip = np.arange(30, dtype=np.float32) / 100
    p.play(clip, sr)
    out = s.pull(100)[:, 0]
    np.testing.assert_allclose(out[:90], np.tile(clip, 3), atol=1e-7)
    p.stop()
    tail = np.concatenate([s.pull(100)[:, 0] for _ in range(2)])
    assert np.all(tail[50:] == 0) and np.any(tail[:50] != 0)


def test_callback_does_not_allocate_blocks():
    p, _s = make_player(blocksize=1024)
    p.play(np.random.default_rng(0).uniform(-1, 1, 44100 * 3).astype(np.float32))
    out = np.zeros((1024, 2), np.float32)
    p._callback(out, 1024, None, 0)

    def peak_of_callbacks(n):
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(n):
                p._callback(out, 1024, None, 0)
            return tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()

    # A new array per block would be >= 4 KiB; views and scalars are a few hundred bytes.
    assert peak_of_callbacks(30) < 4096
    p.play(np.zeros(44100, np.float32))
    assert peak_of_callbacks(30) < 4096  # crossfade path


def test_resamples_takes_to_the_stream_rate():
    p, s = make_player(samplerate=22050, blocksize=512)
    p.play(np.ones(44100, np.float32), 44100)
    frames = 0
    while True:
        block = s.pull(512)[:, 0]
        nz = np.count_nonzero(block)
        frames += nz
        if nz < 512:
            break
    assert frames == 22050


def test_open_failure_is_audio_unavailable():
    def broken(**kw):
        raise RuntimeError("Error querying device -1")

    with pytest.raises(AudioUnavailable, match="Error querying device"):
        Player(stream_factory=broken).start()


PORTAUDIO_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, threading
    import numpy as np
    import sounddevice as sd
    from riffpad.audio.player import Player

    devices = [d["name"] for d in sd.query_devices() if d["max_output_channels"] > 0]
    p = Player(blocksize=512)
    p.start()
    clip = np.sin(np.linspace(0, 2000, 44100)).astype(np.float32)
    p.play(clip)
    def wait(cond):
        deadline = time.monotonic() + 10
        while not cond() and time.monotonic() < deadline:
            time.sleep(0.005)

    wait(lambda: p.clips_started == 1)
    start = p.frames_out
    wait(lambda: p.frames_out - start >= 3 * 44100)
    p.play(clip)  # picked up (and crossfaded) by the real audio thread
    wait(lambda: p.clips_started == 2)
    p.close()
    print(json.dumps({"devices": devices, "frames": p.frames_out, "clips": p.clips_started,
                      "stream": str(sd.query_hostapis(0)["name"])}))
    """
)


def test_plays_through_portaudio_on_alsa_null_device(tmp_path):
    # Real PortAudio + ALSA, with ALSA's config replaced by one whose default PCM is the
    # null device, so this runs on machines without a sound card (and no ~/.asoundrc).
    conf = tmp_path / "asound.conf"
    conf.write_text("pcm.!default { type null }\nctl.!default { type hw card 0 }\n")
    env = dict(os.environ, ALSA_CONFIG_PATH=str(conf), PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [sys.executable, "-c", PORTAUDIO_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if r.returncode != 0 and "PortAudio library not found" in r.stderr:
        pytest.skip("libportaudio2 is not installed")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert "default" in info["devices"]
    assert info["stream"] == "ALSA"
    assert info["frames"] >= 3 * 44100
    assert info["clips"] == 2
