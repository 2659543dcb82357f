"""A jam in simulated time: a fake clock, an engine that takes ``rtf`` x the clip's
duration per render, the real driver, stream, tap and clock output. No sleeping: tests
and ``benchmarks/bench_jam.py`` run minutes of jamming in well under a second."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from riffpad.audio.clip import SAMPLE_RATE
from riffpad.audio.output import ClockOutput
from riffpad.audio.recorder import Tap
from riffpad.jam.driver import JamDriver


class FakeClock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


class LoopFitter:
    """A fitter that loops or trims the clip to the length asked instead of stretching it
    (simulations and tests about timing, where a Griffin-Lim per clip would only add load)."""

    def natural(self, audio, meta) -> int:
        return len(audio)

    def fit(self, audio, meta, length: int, tail: int) -> np.ndarray:
        return np.resize(np.asarray(audio, np.float32), length + tail)


def tone_clip(n: int, k: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A clip that is recognisably clip ``k``: its own pitch, ending mid-cycle (so butt
    joins would click)."""
    f = 110.0 * (1 + (k % 7) / 7)
    t = np.arange(n) / sample_rate
    return (0.5 * np.sin(2 * np.pi * f * t + 0.3 * k)).astype(np.float32)


@dataclass
class SimResult:
    clips: list  # the Clips, in render order
    stream: object
    tap: Tap
    driver: JamDriver
    played: int  # samples played (recorded)
    seconds: float  # simulated seconds
    # (pad state read at, clip heard from) for every clip that got a slot of its own
    ages: list = field(default_factory=list)


def simulate(
    *,
    seconds: float,
    rtf: float | Callable[[int], float],
    clip_len: int = 225_351,
    sample_rate: int = SAMPLE_RATE,
    lookahead: float = 1.0,
    crossfade_s: float = 0.05,
    shape: str = "equal-power",
    blocksize: int = 1024,
    recorder=None,
    fires: list[float] = (),
    moves: float | None = None,
    make_clip: Callable[[int, int], np.ndarray] | None = None,
    bpm: float | Callable[[float], float | None] | None = None,
    beats_per_bar: int = 4,
    cut_in: bool = True,
    phase: Callable[[int], float] | None = None,
) -> SimResult:
    """Jam for ``seconds`` of simulated time, then stop and play out the tail.

    ``rtf``: render time / grid period (the real time a clip adds to the jam), or a
    function of the render number. ``fires``:
    simulated times at which R2 fires (the fired job is tagged ``"fire"``). ``moves``: the
    pad state changes every ``moves`` seconds (so queued clips go stale and get refreshed);
    None: it never changes. ``bpm``: a tempo, or a function of simulated time (None:
    free-running); clips are then fitted to bars and may cut in at bar lines (``cut_in``).
    """
    clock = FakeClock()
    tap = Tap(recorder, blocksize=blocksize)
    out = ClockOutput(tap, samplerate=sample_rate, clock=clock, blocksize=blocksize)
    made = make_clip or (lambda n, k: tone_clip(n, k, sample_rate))
    period_s = (clip_len - min(round(crossfade_s * sample_rate), clip_len // 2)) / sample_rate
    count = [0]

    def render(job):
        k = count[0]
        count[0] += 1
        r = rtf(k) if callable(rtf) else rtf
        # The engine works while the speaker plays on: pump through the render.
        end = clock.t + r * period_s
        while clock.t < end:
            clock.advance(min(blocksize / sample_rate, end - clock.t))
            out.pump()
        return made(clip_len, k), {"job": job, "k": k}

    def on_stream(stream):
        tap.source = stream
        out.pump()  # the output's time starts with the first clip

    def state():
        return int(clock.t / moves) if moves else 0

    driver = JamDriver(
        render,
        lambda: f"pad@{state()}",
        sample_rate=sample_rate,
        lookahead=lookahead,
        crossfade_s=crossfade_s,
        shape=shape,
        on_stream=on_stream,
        state_key=state,
        clock=clock,
        history=1 << 30,  # every slot, for the checks and latency reports below
        tempo=None if bpm is None else (lambda: bpm(clock.t) if callable(bpm) else bpm),
        beats_per_bar=beats_per_bar,
        fitter=LoopFitter(),
        cut_in=cut_in,
        phase=phase,
    )
    clips = []
    pending_fires = sorted(fires)
    while clock.t < seconds:
        if pending_fires and clock.t >= pending_fires[0]:
            pending_fires.pop(0)
            driver.fire("fire")
        wait = driver.due_in()
        if wait:
            step = max(wait, 1 / sample_rate)
            if pending_fires:
                step = max(min(step, pending_fires[0] - clock.t), 1 / sample_rate)
            clock.advance(min(step, blocksize / sample_rate))
            out.pump()
            continue
        clip = driver.step()
        if clip is not None:
            clips.append(clip)
    driver.stop()
    stream = driver.stream
    stream.stop()
    while not stream.finished:
        clock.advance(blocksize / sample_rate)
        out.pump()
    result = SimResult(clips, stream, tap, driver, tap.frames_played, clock.t)
    t_first = driver.started_at[clips[0].id] + driver.render_s[0]  # output time zero
    for slot in stream.slots:
        if not slot.repeat:
            result.ages.append(
                (driver.started_at[slot.clip.id], t_first + slot.start / sample_rate)
            )
    return result


def move_latencies(r: SimResult, step: float = 0.05) -> np.ndarray:
    """Stick moved -> heard, for moves every ``step`` s of the jam: the wait until the
    next render reads the pad, plus that clip's wait for its slot. Moves after the last
    clip was read are left out (their clip never played)."""
    reads = np.array([read for read, _ in r.ages])
    heard = np.array([h for _, h in r.ages])
    # Refreshed clips can read the pad after the clip of a later slot did: the first slot
    # whose clip read at or after t is the first where the running maximum reaches t.
    reach = np.maximum.accumulate(reads)
    times = np.arange(reads[0], reach[-1], step)
    idx = np.searchsorted(reach, times, side="left")
    return heard[idx] - times
