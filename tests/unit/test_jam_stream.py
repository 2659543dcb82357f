"""Jam mode's pure core: the clip grid, seam crossfades and the block-wise stream."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riffpad.audio.fades import fade_gains
from riffpad.jam.grid import Grid, render_timeline
from riffpad.jam.sim import tone_clip
from riffpad.jam.stream import Clip, JamStream

SR = 44100


def play(stream, blocks, stop_after=None):
    """Read the stream in the given block sizes (cycled) until it finishes, asking it to
    stop right after ``stop_after`` slots have been committed."""
    buf = np.zeros(max(blocks), np.float32)
    parts, i = [], 0
    while not stream.finished:
        n = blocks[i % len(blocks)]
        if stop_after is not None and not stream._stop:
            if stream.committed >= stop_after:
                stream.stop()
            else:  # read no further than just past the start of slot stop_after - 1
                n = min(n, stream.grid.start(stop_after - 1) + 1 - stream.pos)
        got = stream.read(buf[:n])
        i += 1
        parts.append(buf[:got].copy())
        if got == 0 and not stream.finished:
            raise AssertionError("stream stalled")
    return np.concatenate(parts)


def test_grid_starts_are_exact_multiples_of_the_period_and_never_drift():
    g = Grid(441 * 511, 2205)
    assert g.period == 441 * 511 - 2205
    # A day of jamming: still exactly k * P (integers, not an accumulated float).
    k = 86400 * SR // g.period
    assert g.start(k) == k * 223146
    assert g.end(k) - g.start(k) == g.clip_len
    assert g.end(k) - g.start(k + 1) == g.crossfade  # neighbours share exactly X samples
    for n in (0, g.period - 1, g.period, 5 * g.period + 7):
        k = g.slot_at(n)
        assert g.start(k) <= n < g.start(k + 1)
    assert g.length(0) == 0 and g.length(3) == 2 * g.period + g.clip_len


@pytest.mark.parametrize("clip_len, crossfade", [(0, 0), (100, 51), (100, -1), (10, 20)])
def test_grid_refuses_impossible_layouts(clip_len, crossfade):
    with pytest.raises(ValueError, match="must be"):
        Grid(clip_len, crossfade)


def test_fade_gains_keep_power_or_amplitude_and_ramp_monotonically():
    g_in, g_out = fade_gains(2205, "equal-power")
    np.testing.assert_allclose(g_in.astype(np.float64) ** 2 + g_out**2, 1.0, atol=1e-6)
    lin_in, lin_out = fade_gains(2205, "linear")
    np.testing.assert_allclose(lin_in + lin_out, 1.0, atol=1e-6)
    for up, down in ((g_in, g_out), (lin_in, lin_out)):
        assert np.all(np.diff(up) > 0) and np.all(np.diff(down) < 0)
        assert up[0] < 0.001 and up[-1] > 0.999 and down[0] > 0.999 and down[-1] < 0.001
    with pytest.raises(ValueError, match="crossfade shape"):
        fade_gains(10, "s-curve")


@settings(max_examples=60, deadline=None)
@given(
    blocks=st.lists(st.integers(1, 3000), min_size=1, max_size=8),
    crossfade=st.sampled_from([0, 1, 37, 441, 500]),
    shape=st.sampled_from(["equal-power", "linear"]),
    n=st.integers(1, 5),
)
def test_stream_equals_the_reference_mix_for_any_block_sizes(blocks, crossfade, shape, n):
    g = Grid(1000, crossfade)
    rng = np.random.default_rng(n)
    clips = [rng.uniform(-0.9, 0.9, 1000).astype(np.float32) for _ in range(n)]
    s = JamStream(g, shape)
    for c in clips:
        s.offer(Clip(c))
    got = play(s, blocks, stop_after=n)
    assert s.committed == n and s.underruns == 0
    assert [slot.start for slot in s.slots] == [g.start(k) for k in range(n)]
    np.testing.assert_array_equal(got, render_timeline(g, clips, shape))


def seam_jumps(audio, g, slots):
    """Largest sample-to-sample step across each seam's overlap, and inside clips."""
    d = np.abs(np.diff(audio.astype(np.float64)))
    x = g.crossfade
    seams = [d[max(0, g.start(k) - 2) : g.start(k) + x + 2].max() for k in range(1, slots)]
    inside = max(d[g.start(k) + x + 2 : g.start(k + 1) - 2].max() for k in range(slots - 1))
    return seams, inside


@pytest.mark.parametrize("shape", ["equal-power", "linear"])
def test_seams_are_no_rougher_than_the_clips_themselves(shape):
    # Tones of different pitch and phase that end mid-cycle: a butt join jumps.
    g = Grid(441 * 511, round(0.05 * SR))
    clips = [tone_clip(g.clip_len, k) for k in range(5)]
    s = JamStream(g, shape)
    for c in clips:
        s.offer(Clip(c))
    audio = play(s, [1024], stop_after=5)
    seams, inside = seam_jumps(audio, g, 5)
    # Two tones overlapping can move at most sqrt(2) x faster than the faster one alone
    # (equal-power gains sum to sqrt(2) at mid-seam); a click is many times that.
    assert max(seams) <= 1.5 * inside, (seams, inside)
    # ...where the same clips butt-joined (no crossfade) click at every seam.
    hard = Grid(g.clip_len, 0)
    butt = render_timeline(hard, clips)
    hard_seams, hard_inside = seam_jumps(butt, hard, 5)
    assert min(hard_seams) > 5 * hard_inside


def test_underrun_repeats_the_last_clip_with_no_silence_and_smooth_seams():
    g = Grid(441 * 100, 441)
    a, b = tone_clip(g.clip_len, 1), tone_clip(g.clip_len, 2)
    s = JamStream(g)
    clip_b = Clip(b)
    s.offer(Clip(a))
    s.offer(clip_b)
    buf = np.zeros(700, np.float32)
    parts = []
    while s.pos < g.start(5):  # five slots: a, b, then b repeated three times
        parts.append(buf[: s.read(buf[: min(700, g.start(5) - s.pos)])].copy())
    assert s.behind
    late = tone_clip(g.clip_len, 3)
    s.offer(Clip(late))  # the engine catches up: the next slot plays it
    audio = np.concatenate([*parts, play(s, [700], stop_after=6)])
    assert [sl.repeat for sl in s.slots] == [False, False, True, True, True, False]
    assert [sl.clip is clip_b for sl in list(s.slots)[2:5]] == [True] * 3
    assert s.underruns == 3 and not s.behind
    assert len(audio) == g.length(6)
    # No gap: every 10 ms window holds sound; the repeats' seams are as smooth as clips.
    win = 441
    rms = np.sqrt(np.mean(audio[: len(audio) // win * win].reshape(-1, win) ** 2, axis=1))
    assert rms[1:-1].min() > 0.1
    seams, inside = seam_jumps(audio, g, 6)
    assert max(seams) <= 1.5 * inside
    np.testing.assert_array_equal(audio, render_timeline(g, [sl.clip.audio for sl in s.slots]))


def test_before_the_first_clip_nothing_plays_and_the_jam_has_not_started():
    s = JamStream(Grid(100, 10))
    buf = np.ones(64, np.float32)
    assert s.read(buf) == 0 and s.pos == 0 and not s.started and not s.behind
    s.offer(Clip(np.ones(100, np.float32)))
    assert s.read(buf) == 64 and s.started
    s2 = JamStream(Grid(100, 10))
    s2.stop()
    assert s2.read(buf) == 0 and s2.finished


def test_a_fired_clip_takes_the_next_slot_ahead_of_the_look_ahead():
    g = Grid(100, 10)
    s = JamStream(g)
    first, queued, fired = (Clip(np.full(100, v, np.float32)) for v in (0.1, 0.2, 0.3))
    s.offer(first)
    s.offer(queued)
    s.read(np.zeros(50, np.float32))  # slot 0 is playing
    s.offer_first(fired)
    s.read(np.zeros(200, np.float32))
    assert [sl.clip for sl in s.slots] == [first, fired, queued]


def test_clips_of_the_wrong_length_are_fitted_to_the_grid_and_counted():
    s = JamStream(Grid(100, 10))
    short, long = Clip(np.ones(60)), Clip(np.ones(130))
    s.offer(short)
    s.offer(long)
    assert len(short.audio) == len(long.audio) == 100 and s.reshaped == 2
    assert short.audio.dtype == np.float32 and short.audio[60:].max() == 0


def test_stopping_plays_the_last_clip_to_its_end_fading_out():
    g = Grid(1000, 100)
    s = JamStream(g)
    for _ in range(3):
        s.offer(Clip(np.full(1000, 0.5, np.float32)))
    audio = play(s, [333], stop_after=2)  # asked during slot 1
    assert s.committed == 2 and len(audio) == g.length(2)
    assert abs(audio[-1]) < 0.01 and audio[-101] == pytest.approx(0.5)
    assert len(s.ready) == 1  # the clip never played is left, not half-played


def test_a_waiting_clip_can_be_replaced_but_not_one_already_playing():
    g = Grid(100, 10)
    s = JamStream(g)
    a, b, fresh, late = (Clip(np.full(100, v, np.float32)) for v in (0.1, 0.2, 0.3, 0.4))
    s.offer(a)
    s.offer(b)
    s.read(np.zeros(50, np.float32))  # a plays, b waits
    assert s.replace(b, fresh) and s.replaced == 1
    assert not s.replace(a, late)  # a is committed: it plays on untouched
    s.read(np.zeros(100, np.float32))
    assert [sl.clip for sl in s.slots] == [a, fresh]
