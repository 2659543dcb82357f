"""Jam mode on a bar grid, end to end: a capture replayed through the instrument with a
fixed tempo (the cue sheet beside the recording), tapped tempo from the pad, and
`riffpad --replay --jam --bpm 120 --record-audio` on the tiny model."""

import itertools
import json

import numpy as np
import pytest
import soundfile
from support.engines import ToneEngine
from support.instrument import jam_replay
from support.pad import IDLE, MOVED, decode, pad_script, write_capture

from riffpad.jam.grid import render_slots
from riffpad.jam.session import BEAT, JamConfig
from riffpad.jam.sim import LoopFitter, tone_clip
from riffpad.pad.state import Button
from riffpad.tempo.bars import slot_samples

SR = 44100
JAM = dict(IDLE, buttons=Button.SQUARE)
TAP = dict(IDLE, buttons=Button.L1)


def check_cue_sheet(path, audio, bpm, beats_per_bar, crossfade):
    """Every clip whole bars at ``bpm``, back to back from sample 0, the recording's last
    sample the last clip's tail; returns the sheet."""
    sheet = json.loads(path.read_text())
    assert set(sheet) == {"bpm", "sample_rate", "beats_per_bar", "clips"}
    assert sheet["bpm"] == bpm and sheet["sample_rate"] == SR
    assert sheet["beats_per_bar"] == beats_per_bar
    clips = sheet["clips"]
    assert clips and clips[0]["start"] == 0
    for a, b in itertools.pairwise(clips):
        assert b["start"] == a["start"] + a["length"]
    for c in clips:
        assert set(c) == {"start", "length", "bars", "take"}
        assert isinstance(c["bars"], int) and c["bars"] >= 1
        assert c["length"] == round(c["bars"] * beats_per_bar * 60 / bpm * SR)
        assert c["take"] is None or isinstance(c["take"], str)
    assert len(audio) == clips[-1]["start"] + clips[-1]["length"] + crossfade
    return sheet


def test_a_jam_at_a_fixed_tempo_records_whole_bars_and_a_cue_sheet(tmp_path, single_thread):
    # 320 BPM, one beat a bar: a 0.4 s clip is 2 bars of 8268.75 samples (0.94x).
    script = pad_script([(0.3, IDLE), (0.06, JAM), (4.0, IDLE), (1.5, MOVED), (0.6, IDLE)])
    cfg = JamConfig(crossfade_s=0.02, bpm=320.0, beats_per_bar=1)
    inst, _ = jam_replay(tmp_path, script, ToneEngine(delay=0.02), jam_config=cfg)
    jam = inst.jam
    s = jam.streams[0]
    x = s.grid.crossfade
    audio, rate = soundfile.read(tmp_path / "session.wav", dtype="float32")
    assert rate == SR
    sheet = check_cue_sheet(tmp_path / "session.wav.cues.json", audio, 320.0, 1, x)
    assert jam.cue_sheet == str(tmp_path / "session.wav.cues.json")
    slots = list(s.slots)
    assert [(c["start"], c["length"], c["bars"]) for c in sheet["clips"]] == [
        (sl.start, sl.length, sl.bars) for sl in slots
    ]
    assert {sl.clip.bars for sl in slots} == {2} and slots[0].length == slot_samples(2, 320, 1)
    # The recording is the reference mix of the slots (clipped like the output), exactly.
    expected = render_slots(x, [(sl.start, sl.length, sl.clip.audio) for sl in slots])
    expected = np.clip(expected, -1.0, 1.0)
    np.testing.assert_array_equal(audio, expected)
    win = 441
    rms = np.sqrt(np.mean(audio[: len(audio) // win * win].reshape(-1, win) ** 2, axis=1))
    assert rms[3:-3].min() > 0.05  # no silent gap
    # Each take is the clip as fitted to its bars, named on the cue sheet.
    names = {p.stem for p in (tmp_path / "watched").glob("*.wav")}
    assert {c["take"] for c in sheet["clips"]} <= names
    for m in (json.loads(p.read_text()) for p in (tmp_path / "watched").glob("*.json")):
        assert m["jam"]["bpm"] == 320.0 and m["jam"]["bars"] == 2


class LongToneEngine(ToneEngine):
    """2 s clips: eight bars of 240 BPM in 1/4."""

    def render(self, request, *, audio=True):  # makes audio either way, as EngineAPI allows
        take = super().render(request)
        take.audio = tone_clip(2 * SR, len(self.requests))
        return take


def test_a_stick_move_cuts_in_at_the_next_bar_line(tmp_path):
    # The stretch is tested above; here clips are looped to length, so the timing does
    # not hang on this machine's load.
    script = pad_script([(0.3, IDLE), (0.06, JAM), (3.0, IDLE), (5.0, MOVED)])
    cfg = JamConfig(crossfade_s=0.02, bpm=240.0, beats_per_bar=1, fitter=LoopFitter())
    inst, _ = jam_replay(tmp_path, script, LongToneEngine(delay=0.02), jam_config=cfg)
    jam = inst.jam
    s = jam.streams[0]
    assert s.cuts >= 1 and jam.driver.cut_ins >= 1
    i = next(i for i, sl in enumerate(s.slots) if sl.cut)
    cut, fresh = s.slots[i], s.slots[i + 1]
    bar = slot_samples(1, 240, 1)
    assert cut.bars < 8 and cut.length == cut.bars * bar  # ended early, on a bar line
    assert fresh.start == cut.start + cut.length and fresh.clip.bars == 8
    # Each slot's take records the pad state it was made from (the clip itself lets go of
    # its take once written: a long jam keeps only audio).
    takes = [json.loads(p.read_text()) for p in (tmp_path / "watched").glob("*.json")]
    alpha = {m["jam"]["slot"]: m["alpha"] for m in takes}
    assert alpha[cut.index] == 0.0  # the stick at rest
    assert alpha[fresh.index] == 1.0  # made from the moved stick
    audio, _ = soundfile.read(tmp_path / "session.wav", dtype="float32")
    check_cue_sheet(tmp_path / "session.wav.cues.json", audio, 240.0, 1, s.grid.crossfade)


def test_tap_tempo_from_a_replayed_capture_gives_the_tapped_bpm(tmp_path, single_thread):
    # L1 tapped 6 times at 0.48 s (125 BPM) while jamming; the next clips follow it.
    taps = [(0.06, TAP), (0.42, IDLE)] * 6
    script = pad_script([(0.3, IDLE), (0.06, JAM), (3.0, IDLE), *taps, (2.5, IDLE)])
    inst, feedback = jam_replay(
        tmp_path, script, ToneEngine(delay=0.02), jam_config=JamConfig(crossfade_s=0.02)
    )
    jam = inst.jam
    assert jam.tapper.taps == 6
    assert jam.tempo.bpm() == pytest.approx(125.0, rel=0.01)
    slots = list(jam.streams[0].slots)
    assert slots[0].bars is None  # free-running until tapped
    tapped = [sl for sl in slots if sl.clip.bpm is not None]
    assert tapped and all(sl.clip.bpm == pytest.approx(125.0, rel=0.01) for sl in tapped)
    assert all(sl.length == slot_samples(sl.bars, sl.clip.bpm) for sl in tapped)
    assert "125" in (tmp_path / "log.txt").read_text()  # the status says the tempo
    lightbars = [decode(x["report"])[0] for x in feedback]
    assert lightbars.count(BEAT) >= 2  # flashed on the beat while tapping


@pytest.mark.slow
def test_riffpad_jam_bpm_120_on_the_tiny_model_records_whole_bars(tmp_path, tiny_model_dir):
    """The issue's bar: `riffpad --replay CAPTURE --jam --bpm 120 --record-audio F.wav`."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    cap = write_capture(tmp_path / "in.jsonl", pad_script([(8.0, IDLE), (6.0, MOVED)]))
    rec = tmp_path / "F.wav"
    env = dict(os.environ, PYTHONPATH=str(root), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    r = subprocess.run(
        [sys.executable, "-m", "riffpad", "--replay", str(cap), "--model", str(tiny_model_dir),
         "--torch-device", "cpu", "--out", str(tmp_path / "watched"), "--no-audio", "--no-live",
         "--jam", "--bpm", "120", "--record-audio", str(rec)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    audio, rate = soundfile.read(rec, dtype="float32")
    assert rate == SR
    sheet = check_cue_sheet(rec.with_name("F.wav.cues.json"), audio, 120.0, 4, round(0.05 * SR))
    # 5.11 s clips at 120 BPM: 3 bars (6 s, 1.17x) each, or fewer where a clip was cut.
    assert sheet["clips"][0]["bars"] == 3 and sheet["clips"][0]["length"] == 6 * SR
    win = 441
    rms = np.sqrt(np.mean(audio[: len(audio) // win * win].reshape(-1, win) ** 2, axis=1))
    assert rms[5:-5].min() > 0  # continuous: no silent gap
    assert "jam ended" in r.stdout
