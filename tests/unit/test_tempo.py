"""Tempo's pure core: bar maths, the spectrogram time stretch, tap tempo, and the stream
on a bar grid (slots of whole bars, cut-ins at bar lines, tempo changes at boundaries)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riffpad.audio.stretch import fit_loop, resample_frames, stretch
from riffpad.jam.grid import Grid
from riffpad.jam.sim import simulate, tone_clip
from riffpad.jam.stream import Clip, JamStream
from riffpad.tempo.bars import bar_samples, choose_bars, natural_bpm, slot_samples
from riffpad.tempo.sources import FixedTempo, TapTempo, tapped_bpm

SR = 44100
RIFF = 441 * 511  # a 512-px clip


def test_a_riffusion_clip_is_two_bars_at_93_93_and_three_at_120():
    assert natural_bpm(RIFF) == pytest.approx(93.93, abs=0.01)
    assert choose_bars(RIFF, bar_samples(93.93)) == 2
    # 120 BPM: 2 bars would squeeze to 0.78x, 3 bars stretch to 1.17x: 3 is nearer.
    assert choose_bars(RIFF, bar_samples(120)) == 3
    assert choose_bars(RIFF, bar_samples(60)) == 1  # a 4 s bar: 1 (0.78x) beats 2 (1.57x)
    assert choose_bars(1000, 1e6) == 1  # never zero bars
    assert slot_samples(3, 120) == 264600 and slot_samples(1, 93.0, 3) == round(3 * 60 / 93 * SR)


@given(st.integers(1000, 10**6), st.floats(30, 300), st.integers(1, 7))
@settings(max_examples=200, deadline=None)
def test_the_chosen_bar_count_needs_the_least_stretch(natural, bpm, bpb):
    bar = bar_samples(bpm, bpb)
    n = choose_bars(natural, bar)
    cost = abs(math.log(n * bar / natural))
    for other in range(1, n + 4):
        assert cost <= abs(math.log(other * bar / natural)) + 1e-12


def test_resampling_frames_is_exact_on_whole_frames_and_linear_between():
    spec = np.arange(12, dtype=np.float32).reshape(2, 6) ** 2
    np.testing.assert_array_equal(resample_frames(spec, np.arange(6)), spec)
    mid = resample_frames(spec, [0.5, 4.25])
    np.testing.assert_allclose(mid[:, 0], (spec[:, 0] + spec[:, 1]) / 2)
    np.testing.assert_allclose(mid[:, 1], 0.75 * spec[:, 4] + 0.25 * spec[:, 5])
    assert stretch(spec, 2.0).shape == (2, 11) and stretch(spec, 0.4).shape == (2, 3)
    np.testing.assert_array_equal(stretch(spec, 1.0), spec)
    with pytest.raises(ValueError):
        stretch(spec, 0)


def test_fit_loop_maps_the_clip_onto_the_slot_and_wraps_round_for_the_tail():
    frames = 11  # spans 10 hops
    spec = np.tile(np.arange(frames, dtype=np.float32), (3, 1))
    hop = 100
    out = fit_loop(spec, hop, length=2000, tail=300)  # stretched 2x, 300 samples of tail
    assert out.shape == (3, -(-2300 // hop) + 1)
    # Output frame j sits at j*hop samples = source frame j/2; frame 20 is the clip's end.
    np.testing.assert_allclose(out[0, :21], np.arange(21) / 2)
    # The tail goes on from the clip's start: frames 22, 23 are source frames 1, 1.5.
    np.testing.assert_allclose(out[0, 22], 1.0)
    np.testing.assert_allclose(out[0, 23], 1.5)


def test_tap_tempo_fits_a_line_to_the_taps_and_starts_over_after_a_pause():
    taps = [0.0, 0.5, 1.0, 1.5, 2.0]
    assert tapped_bpm(taps) == pytest.approx(120.0)
    jittered = [0.0, 0.51, 0.99, 1.52, 1.98, 2.5]
    assert tapped_bpm(jittered) == pytest.approx(120.0, rel=0.01)
    t = TapTempo()
    assert t.bpm() is None and t.tap(10.0) is None
    for k in range(1, 5):
        bpm = t.tap(10.0 + 0.6 * k)
    assert bpm == pytest.approx(100.0) and t.taps == 5 and t.tapping(12.5)
    t.tap(20.0)  # a long pause: a new tapping, the tempo holds until the second tap
    assert t.taps == 1 and t.bpm() == pytest.approx(100.0)
    t.tap(20.05)  # 1200 BPM: a stray double press, not a tempo
    assert t.bpm() == pytest.approx(100.0)
    assert not t.tapping(30.0) and t.beat_phase(20.05 + 0.3) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="BPM"):
        FixedTempo(1000)


def bar_clip(bars, bpm, value, x, bpb=4):
    bar = bar_samples(bpm, bpb, SR)
    length = round(bars * bar)
    return Clip(np.full(length + x, value, np.float32), length=length, bars=bars, bar=bar, bpm=bpm)


def read_all(s, block=1000):
    buf = np.zeros(block, np.float32)
    parts = []
    while not s.finished:
        n = s.read(buf)
        parts.append(buf[:n].copy())
        if n == 0:
            raise AssertionError("stalled")
    return np.concatenate(parts)


def test_slots_are_whole_bars_back_to_back_and_a_cut_in_enters_at_a_bar_line():
    x = 100
    bpm = 120.0
    first, second = bar_clip(2, bpm, 0.1, x), bar_clip(2, bpm, 0.2, x)
    cut = bar_clip(1, bpm, 0.3, x)
    s = JamStream(Grid(len(first.audio), x))
    s.offer(first)
    s.offer(second)
    bar = round(bar_samples(bpm))
    buf = np.zeros(1000, np.float32)
    s.read(buf)  # slot 0 plays
    s.read(buf)  # slot 0 plays
    out = [np.zeros(2000, np.float32)]
    assert s.next_bar_line(2000) == bar and s.next_bar_line(bar + 1) is None  # slot's end
    s.cut_in(cut)
    while s.pos < 3 * bar + 10:  # cut at the first bar line; cut plays 1 bar; then second
        n = s.read(buf)
        out.append(buf[:n].copy())
    s.stop()
    out.append(read_all(s))
    audio = np.concatenate(out)
    slots = list(s.slots)
    assert [sl.clip for sl in slots] == [first, cut, second]
    assert [(sl.start, sl.length, sl.bars, sl.cut) for sl in slots] == [
        (0, bar, 1, True),
        (bar, bar, 1, False),
        (2 * bar, 2 * bar, 2, False),
    ]
    assert s.cuts == 1 and s.underruns == 0
    # The seam sits on the bar line: the first clip's tail fades out under the cut-in.
    assert audio[bar - 1] == pytest.approx(0.1) and audio[bar + x + 1] == pytest.approx(0.3)
    assert 0.1 < audio[bar + x // 2] < 0.45
    assert len(audio) == s.length() == 4 * bar + x


def test_a_tempo_change_lands_on_the_next_clip_boundary_never_inside_a_clip():
    """Tempo 120 BPM, then 90 from 9 s: each slot is whole bars of the tempo of its clip,
    the first slot that starts after the change (once a clip could be fitted) is at 90."""
    change = 9.0
    r = simulate(
        seconds=30,
        rtf=0.1,
        clip_len=RIFF,
        bpm=lambda t: 120.0 if t < change else 90.0,
        cut_in=False,
    )
    slots = list(r.stream.slots)
    starts = [sl.start for sl in slots]
    assert starts == [0, *np.cumsum([sl.length for sl in slots[:-1]])]
    for sl in slots:
        assert sl.length == slot_samples(sl.bars, sl.clip.bpm)
    tempos = [sl.clip.bpm for sl in slots]
    assert tempos[0] == 120.0 and tempos[-1] == 90.0
    k = tempos.index(90.0)
    assert tempos[:k] == [120.0] * k and set(tempos[k:]) == {90.0}
    # The change took the first boundary after it: the slot before began before 9 s.
    t_first = r.driver.started_at[r.clips[0].id] + r.driver.render_s[0]
    assert t_first + starts[k - 1] / SR <= change < t_first + starts[k] / SR
    assert r.driver.refitted >= 1 and r.stream.underruns == 0


def test_with_the_stick_moving_fresh_clips_cut_in_at_bar_lines_without_more_repeats():
    common = dict(seconds=120, rtf=0.1, clip_len=RIFF, moves=0.05)
    free = simulate(**common)
    bars = simulate(**common, bpm=120.0)
    s = bars.stream
    assert s.cuts > 10 and s.underruns <= free.stream.underruns
    bar = bar_samples(120.0)
    for sl in s.slots:  # every slot still starts on a bar line of the grid
        assert sl.start % round(bar) == 0 or abs(sl.start / bar - round(sl.start / bar)) < 1e-6


def test_clips_are_fitted_to_their_slot_tail_included():
    s = JamStream(Grid(RIFF, 2205))
    c = Clip(tone_clip(1000, 1), length=5000)
    s.offer(c)
    assert len(c.audio) == 5000 + 2205 and s.reshaped == 1


def test_a_newer_cut_in_replaces_one_still_waiting_for_its_bar_line():
    x, bpm = 100, 120.0
    first, queued = bar_clip(2, bpm, 0.1, x), bar_clip(2, bpm, 0.2, x)
    older, newer = bar_clip(1, bpm, 0.3, x), bar_clip(1, bpm, 0.4, x)
    s = JamStream(Grid(len(first.audio), x))
    s.offer(first)
    s.offer(queued)
    buf = np.zeros(1000, np.float32)
    s.read(buf)
    s.cut_in(older)
    s.read(buf)  # placed: it waits for the bar line
    assert s.cut_waiting is older
    s.cut_in(newer)
    bar = round(bar_samples(bpm))
    while s.pos < 2 * bar + 10:
        s.read(buf)
    assert [sl.clip for sl in s.slots] == [first, newer, queued]
    assert s.slots[0].length == bar and s.cuts == 1 and s.cut_waiting is None


def test_clips_follow_a_shared_timelines_phase_and_end_on_its_downbeats():
    """The session really plays at 121 BPM while the tempo read says 120 (a tempo source
    lagging, or a sound card drifting): each clip's length is corrected so that it ends on
    the session's downbeat, instead of drifting a bar off within minutes."""

    def phase(n):  # bars the session is past its downbeat when jam sample n plays
        bars = n / SR * 121.0 / 60 / 4
        return (bars + 0.5) % 1.0 - 0.5

    common = dict(seconds=120, rtf=0.1, clip_len=RIFF, bpm=120.0, cut_in=False)
    drifting = simulate(**common)
    following = simulate(**common, phase=phase)
    bar = bar_samples(120.0)
    late = [abs(phase(sl.start)) * bar for sl in following.stream.slots]
    assert max(late) <= 1.0  # every slot starts on the session's downbeat, to a sample
    drift = [abs(phase(sl.start)) for sl in drifting.stream.slots]
    assert max(drift) > 0.1  # a tenth of a bar off without following
    assert following.stream.underruns == 0
    assert any(sl.length != slot_samples(3, 120.0) for sl in following.stream.slots)
