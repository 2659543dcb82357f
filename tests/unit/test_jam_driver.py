"""The jam driver and outputs in simulated time (fake clock, no sleeping)."""

import itertools

import numpy as np
import pytest
import soundfile

from riffpad.audio.output import ClockOutput, SpeakerOutput
from riffpad.audio.recorder import RecordError, SessionRecorder, Tap
from riffpad.jam.driver import JamDriver
from riffpad.jam.grid import render_timeline
from riffpad.jam.sim import FakeClock, move_latencies, simulate

SR = 44100
SHORT = 441 * 63  # 0.63 s clips keep the simulations quick; the logic is length-free


@pytest.mark.parametrize("moves", [None, 0.05])
@pytest.mark.parametrize("lookahead", [0.25, 1.0])
@pytest.mark.parametrize("rtf", [0.1, 0.5, 0.9, 0.99])
def test_an_engine_faster_than_real_time_never_underruns(rtf, lookahead, moves):
    # Even with a look-ahead shorter than a render (the driver starts earlier by itself),
    # and with the stick moving all the time (refreshes only use the engine's idle time).
    r = simulate(seconds=120, rtf=rtf, clip_len=SHORT, lookahead=lookahead, moves=moves)
    assert r.stream.underruns == 0
    assert r.stream.committed >= 120 * SR // r.stream.grid.period
    assert not any(slot.repeat for slot in r.stream.slots)


def test_a_slower_engine_underruns_and_the_jam_repeats_instead_of_going_quiet():
    r = simulate(seconds=60, rtf=1.3, clip_len=SHORT, lookahead=1.0)
    s = r.stream
    assert s.underruns > 0
    # Every slot plays something: the jam is exactly as long as its slots, no gaps.
    assert r.played == s.grid.length(s.committed)
    assert r.tap.frames_silent < SR  # silence only after the tail, never in the middle
    slots = list(s.slots)
    for prev, slot in itertools.pairwise(slots):
        if slot.repeat:
            assert slot.clip is prev.clip


def test_a_burst_of_slow_renders_is_absorbed_by_the_look_ahead():
    # Renders 5..7 take 1.6 periods; with 2 clips of look-ahead the queue covers them.
    def rtf(k):
        return 1.6 if 5 <= k <= 7 else 0.3

    deep = simulate(seconds=40, rtf=rtf, clip_len=SHORT, lookahead=3.0)
    shallow = simulate(seconds=40, rtf=rtf, clip_len=SHORT, lookahead=1.0)
    assert deep.stream.underruns == 0 and shallow.stream.underruns > 0


@pytest.mark.parametrize("lookahead", [0.5, 1.0, 2.0])
def test_the_pad_state_heard_is_lookahead_to_lookahead_plus_one_periods_old(lookahead):
    r = simulate(seconds=60, rtf=0.3, clip_len=SHORT, lookahead=lookahead)
    period = r.stream.grid.period / SR
    # The first clips fill the look-ahead (the jam starts as soon as one is ready).
    ages = [heard - read for read, heard in r.ages[int(np.ceil(lookahead)) + 1 :]]
    assert r.stream.underruns == 0
    block = 1024 / SR  # the output's clock moves in blocks
    assert min(ages) >= lookahead * period - block
    assert max(ages) <= (lookahead + 1) * period + block


def test_a_fire_is_rendered_at_once_and_takes_the_next_slot():
    r = simulate(seconds=20, rtf=0.2, clip_len=SHORT, lookahead=2.0, fires=[7.0])
    fired = [c for c in r.clips if c.fired]
    assert len(fired) == 1 and fired[0].meta["job"] == "fire"
    period = r.stream.grid.period
    read_at = r.driver.started_at[fired[0].id]
    assert 7.0 <= read_at <= 7.0 + 1024 / SR  # rendered as soon as it was fired
    slot = next(s for s in r.stream.slots if s.clip is fired[0])
    # Output time zero is when the first clip was ready; the fired clip is ready R later.
    t0 = r.driver.started_at[r.clips[0].id] + r.driver.render_s[0]
    ready = (read_at + r.driver.render_s[r.clips.index(fired[0])] - t0) * SR
    # It takes the first slot that had not begun (to within one output block).
    assert period * (slot.index - 1) < ready <= period * slot.index + 1024
    assert not slot.repeat and r.stream.underruns == 0


def test_a_failed_render_is_reported_and_the_jam_plays_on():
    clock = FakeClock()
    tap = Tap()
    out = ClockOutput(tap, clock=clock)
    calls, errors = [], []

    def render(job):
        calls.append(job)
        clock.advance(0.1)
        out.pump()
        if len(calls) == 2:
            raise RuntimeError("CUDA out of memory (fake)")
        return np.full(SHORT, 0.25, np.float32), None

    def on_stream(stream):
        tap.source = stream

    d = JamDriver(
        render, lambda: "pad", on_stream=on_stream, on_error=lambda j, e: errors.append(e)
    )
    d.clock = clock
    assert d.step() is not None and d.step() is None and d.step() is not None
    assert d.failed == 1 and "out of memory" in str(errors[0])
    clock.advance(3 * SHORT / SR)
    out.pump()
    assert d.stream.underruns > 0 and tap.frames_silent < 2048


def test_the_recording_is_the_played_stream_sample_for_sample(tmp_path):
    path = tmp_path / "session.wav"
    rec = SessionRecorder(path, SR)
    r = simulate(seconds=10, rtf=1.2, clip_len=SHORT, lookahead=1.0, recorder=rec)
    assert not path.exists()  # only a temporary file until the end
    assert rec.close() == path
    audio, rate = soundfile.read(path, dtype="float32")
    s = r.stream
    assert rate == SR and len(audio) == r.played == s.grid.length(s.committed)
    expected = render_timeline(s.grid, [slot.clip.audio for slot in s.slots])
    np.testing.assert_array_equal(audio, np.clip(expected, -1, 1))
    assert [p.name for p in tmp_path.iterdir()] == ["session.wav"]


def test_a_recording_that_cannot_be_written_says_which_file(tmp_path):
    with pytest.raises(RecordError, match=r"nowhere/session\.wav"):
        SessionRecorder(tmp_path / "nowhere" / "session.wav")


def test_the_speaker_and_the_recorder_get_the_same_clipped_blocks(tmp_path):
    class FakeStream:  # sounddevice.OutputStream's contract: callback(outdata, frames, ...)
        def __init__(self, **kw):
            self.kw = kw

        def start(self):
            pass

        def stop(self):
            pass

        def close(self):
            pass

    class Source:
        def __init__(self):
            self.n = 0

        def read(self, out):
            k = min(len(out), 3000 - self.n)
            out[:k] = np.linspace(-2, 2, 3000)[self.n : self.n + k]
            self.n += k
            return k

    made = []
    rec = SessionRecorder(tmp_path / "s.wav", SR)
    tap = Tap(rec)
    tap.source = Source()
    spk = SpeakerOutput(tap, stream_factory=lambda **kw: made.append(FakeStream(**kw)) or made[-1])
    spk.start()
    cb = made[0].kw["callback"]
    sent = []
    for _ in range(4):
        outdata = np.zeros((1024, 2), np.float32)
        cb(outdata, 1024, None, None)
        sent.append(outdata.copy())
    spk.close()
    rec.close()
    sent = np.concatenate(sent)
    assert np.array_equal(sent[:, 0], sent[:, 1])
    recorded, _ = soundfile.read(tmp_path / "s.wav", dtype="float32")
    assert len(recorded) == 3000 and np.array_equal(recorded, sent[:3000, 0])
    assert recorded.max() == 1.0 and recorded.min() == -1.0  # clipped as sent
    assert not sent[3000:].any()  # after the source ended: silence, not recorded


def test_the_headless_clock_plays_exactly_as_many_samples_as_time_passed():
    clock = FakeClock(100.0)

    class Endless:
        def read(self, out):
            out[:] = 0.5
            return len(out)

    tap = Tap()
    tap.source = Endless()
    out = ClockOutput(tap, clock=clock, blocksize=512)
    out.pump()
    for dt in (0.001, 0.5, 0.0, 1.25, 3.0):
        clock.advance(dt)
        out.pump()
    assert tap.frames_played == int(4.751 * SR)


@pytest.mark.parametrize("lookahead", [0.5, 1.0, 2.0])
def test_a_stick_move_is_heard_within_one_period_after_the_look_ahead(lookahead):
    r = simulate(seconds=120, rtf=0.3, clip_len=SHORT, lookahead=lookahead)
    period = r.stream.grid.period / SR
    lat = move_latencies(r)[int(60 / 0.05) :]  # the second minute: past the start-up
    block = 1024 / SR
    assert lat.max() <= (lookahead + 1) * period + block
    assert lat.min() >= lookahead * period - block
    assert abs(lat.mean() - (lookahead + 0.5) * period) < 0.05 * period


def test_a_fast_engine_refreshes_stale_queued_clips_so_moves_are_heard_sooner():
    still = simulate(seconds=120, rtf=0.1, clip_len=SHORT, lookahead=1.0)
    moving = simulate(seconds=120, rtf=0.1, clip_len=SHORT, lookahead=1.0, moves=0.05)
    period = still.stream.grid.period / SR
    assert still.driver.refreshed == 0 and still.stream.replaced == 0
    assert moving.driver.refreshed == moving.stream.replaced > 0
    assert moving.stream.underruns == 0
    lat_still = move_latencies(still)[int(60 / 0.05) :]
    lat_moving = move_latencies(moving)[int(60 / 0.05) :]
    assert lat_still.mean() > 1.4 * period
    # About half a period plus a render, and never more than a period plus two renders.
    assert lat_moving.mean() < 0.8 * period
    assert lat_moving.max() <= period + 2 * 1.15 * 0.1 * period + 1024 / SR


def test_a_long_jam_keeps_a_minute_of_clips_not_all_of_them():
    """Each committed slot holds its clip's audio (5.12 s of Riffusion: 0.9 MB): an
    hours-long jam used to keep up to 4096 of them (RSS grew ~20 MB a minute)."""
    clock = FakeClock()
    tap = Tap()
    out = ClockOutput(tap, clock=clock)

    def render(job):
        clock.advance(0.9 * SHORT / SR)
        out.pump()
        return np.full(SHORT, 0.25, np.float32), job

    def on_stream(stream):
        tap.source = stream

    d = JamDriver(render, itertools.count().__next__, on_stream=on_stream, state_key=lambda: 0)
    for _ in range(400):
        d.step()
        clock.advance(0.1 * SHORT / SR)
        out.pump()
    s = d.stream
    assert d.history == int(np.ceil(60 * SR / s.grid.period))  # a minute of the jam
    assert s.committed > 3 * d.history and len(s.slots) == d.history
    assert [sl.index for sl in s.slots] == list(range(s.committed - d.history, s.committed))
    # What the driver keeps per clip follows the clips it still holds.
    for table in (d._keys, d._render_s_of, d.started_at):
        assert len(table) <= 2 * d.history + len(s.ready) + 1
