"""Jam mode end to end: a capture replayed through the real reader, controls and
instrument, with the jam toggled from the pad, recorded headless (--no-audio) and checked
sample by sample: length, no gaps, no clicks at the seams, clip starts on the grid."""

import json

import numpy as np
import pytest
import soundfile
from support.engines import CLIP, SR, ToneEngine, make_request
from support.instrument import jam_replay
from support.pad import IDLE, JAM, MOVED, MOVED_FIRE, decode, pad_script, write_capture

from riffpad.instrument.settings import Settings
from riffpad.instrument.status import Snapshot, StatusView
from riffpad.instrument.wiring import StartupError, build
from riffpad.jam.grid import render_timeline
from riffpad.jam.session import BEHIND, JamConfig
from riffpad.pad.state import Button


def test_a_replayed_jam_records_a_gapless_click_free_stream_on_the_grid(tmp_path):
    script = pad_script(
        [(0.3, IDLE), (0.06, JAM), (1.2, IDLE), (1.0, MOVED), (0.06, MOVED_FIRE), (1.0, MOVED)]
    )
    engine = ToneEngine(delay=0.02)
    inst, _ = jam_replay(tmp_path, script, engine, jam_config=JamConfig(crossfade_s=0.02))
    jam = inst.jam
    assert jam.jams == 1 and len(jam.streams) == 1
    s = jam.streams[0]
    g = s.grid
    assert g.clip_len == CLIP and g.crossfade == round(0.02 * SR)

    audio, rate = soundfile.read(tmp_path / "session.wav", dtype="float32")
    # Length: exactly the slots played, the last one to its end.
    assert rate == SR and len(audio) == g.length(s.committed) == jam.tap.frames_played
    # It lasted as long as the jam did (toggled at 0.3 s, replay over at ~3.6 s).
    assert 2.6 < len(audio) / SR < 3.8
    # Clip starts exactly on the grid: the recording is the reference mix, bit for bit.
    slots = list(s.slots)
    assert [sl.start for sl in slots] == [k * g.period for k in range(len(slots))]
    np.testing.assert_array_equal(audio, render_timeline(g, [sl.clip.audio for sl in slots]))
    # No silent gap: every 10 ms holds sound but the fade-in and fade-out at the ends.
    win = 441
    rms = np.sqrt(np.mean(audio[: len(audio) // win * win].reshape(-1, win) ** 2, axis=1))
    assert rms[3:-3].min() > 0.2
    # No discontinuity at any seam: no step bigger than inside the clips.
    d = np.abs(np.diff(audio.astype(np.float64)))
    x = g.crossfade
    inside = max(d[g.start(k) + x + 2 : g.start(k + 1) - 2].max() for k in range(len(slots) - 1))
    seams = [d[g.start(k) - 2 : g.start(k) + x + 2].max() for k in range(1, len(slots))]
    assert max(seams) <= 1.5 * inside
    assert s.underruns == 0  # the engine was far faster than the music

    # Every clip that played is a take (in slot order), placed in the session recording.
    metas = [json.loads(p.read_text()) for p in sorted((tmp_path / "watched").glob("*.json"))]
    metas.sort(key=lambda m: m["jam"]["slot"])
    played = [sl for sl in slots if not sl.repeat]
    assert [m["jam"]["slot"] for m in metas] == [sl.index for sl in played]
    assert jam.clips == len(metas)
    for m, sl in zip(metas, played, strict=True):
        assert m["jam"]["jam"] == 1 and m["jam"]["recording_sample"] == sl.start
        assert m["jam"]["grid"] == {"clip": CLIP, "period": g.period, "crossfade": g.crossfade}
        take, _ = soundfile.read(tmp_path / "watched" / m["files"]["wav"], dtype="float32")
        mid = audio[sl.start + g.crossfade : sl.start + g.period]  # outside the seams
        np.testing.assert_allclose(mid, take[g.crossfade : g.period], atol=1 / 32767)
    # The music followed the pad: the first clips at rest, the last ones moved; R2 fired a
    # clip of its own while jamming.
    assert metas[0]["alpha"] == 0.0 and metas[-1]["alpha"] == 1.0
    fired = [m for m in metas if m["jam"]["fired"]]
    assert len(fired) == 1 and fired[0]["alpha"] == 1.0


def test_jam_at_once_with_a_slow_engine_repeats_and_shows_amber(tmp_path):
    script = pad_script([(2.0, IDLE)])
    period = (CLIP - round(0.02 * SR)) / SR
    engine = ToneEngine(delay=1.6 * period)  # slower than the music
    inst, feedback = jam_replay(
        tmp_path, script, engine, jam=True, jam_config=JamConfig(crossfade_s=0.02)
    )
    s = inst.jam.streams[0]
    assert s.underruns > 0
    assert any(sl.repeat for sl in s.slots)
    audio, _ = soundfile.read(tmp_path / "session.wav", dtype="float32")
    assert len(audio) == s.grid.length(s.committed)
    win = 441
    rms = np.sqrt(np.mean(audio[: len(audio) // win * win].reshape(-1, win) ** 2, axis=1))
    assert rms[3:-3].min() > 0.2  # repeating, never silent
    bars = [decode(x["report"])[0] for x in feedback]
    assert BEHIND in bars
    assert "repeat" in (tmp_path / "log.txt").read_text()


def test_a_failed_jam_clip_flashes_the_pad_red_while_the_sticks_rest(tmp_path):
    from riffpad.instrument.feedback import RED

    script = pad_script([(1.5, IDLE)])  # nothing moves: the reader reuses its last frame
    inst, feedback = jam_replay(
        tmp_path,
        script,
        ToneEngine(delay=0.02, fail_on={2}),
        jam=True,
        jam_config=JamConfig(crossfade_s=0.02),
    )
    assert inst.failures == 1
    assert "jam: generation failed" in (tmp_path / "log.txt").read_text()
    bars = [decode(x["report"])[0] for x in feedback]
    assert RED in bars


def test_the_jam_button_toggles_and_the_recording_holds_every_jam_back_to_back(tmp_path):
    script = pad_script(
        [(0.2, IDLE), (0.06, JAM), (1.0, IDLE), (0.06, JAM), (0.8, IDLE), (0.06, JAM), (1.0, IDLE)]
    )
    inst, _ = jam_replay(tmp_path, script, ToneEngine(), jam_config=JamConfig(crossfade_s=0.02))
    jam = inst.jam
    assert jam.jams == 2 and len(jam.streams) == 2
    audio, _ = soundfile.read(tmp_path / "session.wav", dtype="float32")
    parts = [render_timeline(s.grid, [sl.clip.audio for sl in s.slots]) for s in jam.streams]
    np.testing.assert_array_equal(audio, np.concatenate(parts))
    first = jam.streams[0]
    # Toggled off at 1.26 s after on at 0.2 s: it stopped at the next clip boundary.
    assert 1.06 - 0.2 <= len(parts[0]) / SR <= 1.06 + 2 * first.grid.period / SR
    assert all(s.finished for s in jam.streams)


@pytest.mark.slow
def test_riffpad_jam_replay_on_the_tiny_model_records_on_the_grid(tmp_path, tiny_model_dir):
    """`riffpad --replay --jam --record-audio` as a user runs it, real engine, tiny model."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    cap = write_capture(tmp_path / "in.jsonl", pad_script([(3.0, IDLE), (3.0, MOVED)]))
    rec = tmp_path / "session.wav"
    env = dict(os.environ, PYTHONPATH=str(root), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    r = subprocess.run(
        [sys.executable, "-m", "riffpad", "--replay", str(cap), "--model", str(tiny_model_dir),
         "--torch-device", "cpu", "--out", str(tmp_path / "watched"), "--no-audio", "--no-live",
         "--jam", "--record-audio", str(rec), "--prompt-a", "jazz piano", "--prompt-b", "dub bass"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    audio, rate = soundfile.read(rec, dtype="float32")
    clip, x = 441 * 511, round(0.05 * SR)  # a 512-px image; the default crossfade
    period = clip - x
    assert rate == SR and len(audio) >= clip and (len(audio) - clip) % period == 0
    clips = (len(audio) - clip) // period + 1
    metas = [json.loads(p.read_text()) for p in sorted((tmp_path / "watched").glob("*.json"))]
    assert 1 <= len(metas) <= clips and all("jam" in m for m in metas)
    win = 441
    rms = np.sqrt(np.mean(audio[: len(audio) // win * win].reshape(-1, win) ** 2, axis=1))
    assert rms[5:-5].min() > 0  # no silent gap
    assert "jam ended" in r.stdout


class FakeSoundCard:
    """sounddevice.OutputStream's contract: a thread calls ``callback(outdata, frames, time,
    status)`` at the sample rate's pace; everything sent is kept."""

    def __init__(self, *, samplerate, channels, dtype, callback, device, blocksize):
        import threading

        assert dtype == "float32"
        self.callback, self.channels, self.blocksize = callback, channels, blocksize
        self.rate = samplerate
        self.sent = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        cards.append(self)

    def _run(self):
        import time

        t0, n = time.monotonic(), 0
        while not self._stop.is_set():
            out = np.zeros((self.blocksize, self.channels), np.float32)
            self.callback(out, self.blocksize, None, None)
            self.sent.append(out)
            n += self.blocksize
            time.sleep(max(0.0, t0 + n / self.rate - time.monotonic()))

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def close(self):
        pass


cards: list = []


class FakePlayer:
    def __init__(self):
        self.calls = []

    def start(self):
        self.calls.append("start")

    def close(self):
        self.calls.append("close")

    def play(self, audio, rate):
        self.calls.append("play")

    def stop(self):
        pass


def test_the_jam_takes_the_speaker_and_the_recording_is_what_it_was_sent(tmp_path):
    cards.clear()
    cap = write_capture(tmp_path / "in.jsonl", pad_script([(0.1, IDLE), (0.06, JAM), (1.5, IDLE)]))
    opts = Settings(
        replay=str(cap),
        out=str(tmp_path / "watched"),
        no_audio=True,
        live=False,
        record_audio=str(tmp_path / "session.wav"),
    )
    view = StatusView(Snapshot(), live=False, stream=open(tmp_path / "log.txt", "w"))
    jam = JamConfig(crossfade_s=0.02, stream_factory=FakeSoundCard)
    inst = build(opts, view, engine=ToneEngine(), make_request=make_request, jam=jam)
    inst.player = player = FakePlayer()  # a speaker is there after all
    inst.jam.config.speaker = True
    assert inst.run() == 0
    # The one-shot player let go of the device for the jam and got it back after (the
    # instrument closes it once more at exit).
    assert player.calls[:2] == ["close", "start"]
    assert len(cards) == 1
    sent = np.concatenate(cards[0].sent)
    assert np.array_equal(sent[:, 0], sent[:, 1])
    recorded, _ = soundfile.read(tmp_path / "session.wav", dtype="float32")
    s = inst.jam.streams[0]
    assert len(recorded) == s.grid.length(s.committed) > 0
    # Sample-exact: the recording is the speaker's signal up to where the jam ended.
    np.testing.assert_array_equal(sent[: len(recorded), 0], recorded)
    assert not sent[len(recorded) :].any()


def test_a_recording_that_cannot_be_written_stops_the_start_with_the_file_named(tmp_path):
    cap = write_capture(tmp_path / "in.jsonl", pad_script([(0.1, IDLE)]))
    opts = Settings(
        replay=str(cap),
        out=str(tmp_path / "watched"),
        no_audio=True,
        live=False,
        record_audio=str(tmp_path / "no" / "such" / "dir" / "s.wav"),
    )
    view = StatusView(Snapshot(), live=False, stream=open(tmp_path / "log.txt", "w"))
    with pytest.raises(StartupError, match=r"cannot write .*s\.wav"):
        build(opts, view, engine=ToneEngine(), make_request=make_request)


def test_a_fire_waiting_when_the_jam_starts_becomes_its_first_clip(tmp_path):
    fire, moved_jam = dict(IDLE, r2=255), dict(MOVED, buttons=Button.SQUARE)
    steps = [(0.1, IDLE), (0.06, fire), (0.06, IDLE), (0.06, MOVED_FIRE), (0.06, MOVED)]
    script = pad_script([*steps, (0.06, moved_jam), (1.0, MOVED)])
    engine = ToneEngine(delay=0.4)  # the first fire is still rendering when the jam starts
    inst, _ = jam_replay(tmp_path, script, engine, jam_config=JamConfig(crossfade_s=0.02))
    metas = [json.loads(p.read_text()) for p in sorted((tmp_path / "watched").glob("*.json"))]
    assert "jam" not in metas[0]  # the one-shot take finished first
    jam_metas = [m for m in metas if "jam" in m]
    assert jam_metas[0]["jam"]["fired"] and jam_metas[0]["alpha"] == 1.0
    assert inst.jam.streams[0].slots[0].clip.fired


def test_circle_stops_the_jam_like_the_jam_button(tmp_path):
    stop = dict(IDLE, buttons=Button.CIRCLE)
    script = pad_script([(0.1, IDLE), (0.06, JAM), (0.6, IDLE), (0.06, stop), (1.2, IDLE)])
    inst, _ = jam_replay(tmp_path, script, ToneEngine(), jam_config=JamConfig(crossfade_s=0.02))
    s = inst.jam.streams[0]
    # Stopped at ~0.76 s, at the clip boundary after it: long before the replay's end.
    assert s.finished and len(s.slots) * s.grid.period / SR < 0.76 + 2 * s.grid.period / SR
    log = (tmp_path / "log.txt").read_text()
    assert "jam off" in log and "jam ended" in log


TRIANGLE_AFTER_JAM = r"""
import json, logging, sys
from pathlib import Path
from support.engines import ToneEngine, make_request
from support.pad import IDLE, JAM, pad_script, write_capture
from riffpad.instrument.settings import Settings
from riffpad.instrument.status import Snapshot, StatusView
from riffpad.instrument.wiring import build
from riffpad.jam.session import JamConfig
from riffpad.pad.state import Button

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
tmp = Path(sys.argv[1])
stop, triangle = dict(IDLE, buttons=Button.CIRCLE), dict(IDLE, buttons=Button.TRIANGLE)
script = [(0.1, IDLE), (0.06, JAM), (0.8, IDLE), (0.06, stop), (1.0, IDLE), (0.06, triangle),
          (0.5, IDLE)]
cap = write_capture(tmp / "in.jsonl", pad_script(script))
opts = Settings(replay=str(cap), out=str(tmp / "watched"), live=False)  # audio on
view = StatusView(Snapshot(), live=False, stream=sys.stdout)
inst = build(opts, view, engine=ToneEngine(), make_request=make_request,
             jam=JamConfig(crossfade_s=0.02))
assert inst.player is not None, "no PortAudio output"
played = []
real_play = inst.player.play
inst.player.play = lambda audio, rate: (played.append(len(audio)), real_play(audio, rate))
code = inst.run()
print(json.dumps({"code": code, "clips": inst.jam.clips, "played": played,
                  "takes": len(inst.takes)}))
"""


def test_triangle_after_a_jam_replays_the_last_clip_on_a_real_player(tmp_path):
    # Issue 17.1: with a player present, Triangle after a jam raised AttributeError
    # (_last_audio) in the reader thread. Real PortAudio on ALSA's null device.
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    conf = tmp_path / "asound.conf"
    conf.write_text("pcm.!default { type null }\nctl.!default { type hw card 0 }\n")
    env = dict(
        os.environ,
        ALSA_CONFIG_PATH=str(conf),
        PYTHONPATH=f"{root}{os.pathsep}{root / 'tests'}",
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
    )
    r = subprocess.run(
        [sys.executable, "-c", TRIANGLE_AFTER_JAM, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if "PortAudio library not found" in r.stderr:
        pytest.skip("libportaudio2 is not installed")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "callback failed" not in r.stderr, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["code"] == 0 and result["clips"] >= 1 and result["takes"] == result["clips"]
    # Triangle played the last jam clip (the only thing the one-shot player was asked).
    assert result["played"] == [CLIP]


def test_a_jam_clip_that_cannot_be_saved_flashes_red_with_a_double_rumble(tmp_path):
    # Issue 17.4: a full or unwritable disk during a jam only reached the log; the pad must
    # show it as it does for a fire: red lightbar, two rumble pulses.
    from riffpad.instrument.feedback import RED

    out = tmp_path / "watched"
    engine = ToneEngine(delay=0.02)
    real_render = engine.render

    def render(request, *, audio=True):
        if out.is_dir():  # the folder turns into a file: every clip's save fails
            for p in out.iterdir():
                p.unlink()
            out.rmdir()
            out.write_text("not a folder any more")
        return real_render(request, audio=audio)

    engine.render = render
    script = pad_script([(1.5, IDLE)])
    inst, feedback = jam_replay(
        tmp_path, script, engine, jam=True, jam_config=JamConfig(crossfade_s=0.02)
    )
    assert inst.jam.clips >= 1 and inst.takes == [] and inst.failures == inst.jam.clips
    assert "not saved" in (tmp_path / "log.txt").read_text()
    frames = [decode(x["report"]) for x in feedback]
    red = [i for i, (bar, _, _) in enumerate(frames) if bar == RED]
    assert red, "no red on the pad"
    rumbles = [f[1] != (0, 0) for f in frames[red[0] : red[0] + 20]]
    starts = sum(1 for a, b in zip([False, *rumbles], rumbles, strict=False) if b and not a)
    assert starts >= 2


def test_jams_after_jams_keep_neither_every_stream_nor_the_written_takes_images(tmp_path):
    """Over a long session each ended jam used to stay in ``streams`` with its clips, and
    every clip kept its take (the 512x512 image too) after it was written."""
    on_off = [(0.06, JAM), (0.8, IDLE)]
    script = pad_script([(0.2, IDLE), *on_off * 5, (0.6, IDLE)])
    inst, _ = jam_replay(tmp_path, script, ToneEngine(), jam_config=JamConfig(crossfade_s=0.02))
    jam = inst.jam
    assert jam.jams == 3 and len(jam.streams) == 2
    written = [sl for s in jam.streams for sl in s.slots]
    assert written and all(sl.clip.meta is None for sl in written)
    assert len(list((tmp_path / "watched").glob("*.json"))) == jam.clips == len(inst.takes)
