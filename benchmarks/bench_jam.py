"""Jam mode: underruns per minute against the engine's speed, and what look-ahead costs.

    PYTHONPATH=. python benchmarks/bench_jam.py [--minutes 10] [--clip-ms 5110]

Runs the real driver, stream and headless output in simulated time (a fake clock; an
engine that takes ``rtf`` x the grid period per clip, the grid period being the real time
each clip adds to the jam), so minutes of jamming take about a second each. The stick
moves all the time (the pad state changes every 50 ms), the worst case for the engine's
load: queued clips go stale and the driver refreshes them when the engine has time.

* underruns (repeated clips) per minute of jamming, per real-time factor and look-ahead.
  Goal: 0 whenever the engine is faster than real time (rtf < 1) at the default look-ahead.
* latency, stick moved -> heard (for moves every 50 ms of the jam): the wait for the next
  render to read the pad plus that clip's wait for its slot.
* audio thread: CPU per second of audio of ``JamStream.read`` in 1024-sample blocks.
* respond within a bar (issue 15): stick to heard, mean/worst, and repeats per minute,
  on a bar grid (``--bpm``, fresh clips cutting in at bar lines) against today's
  free-running driver, same engine speed, same run. Goal: half a bar + one render mean,
  one bar + one render worst, no more repeats.

Baselines, measured in the same run:
* "render-then-play": no look-ahead, each clip rendered after the previous one ended (the
  instrument's one-shot fire repeated by hand): R of silence per clip, and a move waits
  for the next render (uniform over R + P) then R: mean (R + P) / 2 + R, max 2R + P.
* the instrument's ``Player`` callback on the same blocks (one clip playing, no fades).
"""

from __future__ import annotations

import argparse
import platform
import time

import _paths  # noqa: F401  (the repository root on sys.path: see _paths.py)
import numpy as np

from riffpad.audio.player import Player
from riffpad.jam.grid import Grid
from riffpad.jam.sim import move_latencies, simulate, tone_clip
from riffpad.jam.stream import Clip, JamStream

SR = 44100
RTFS = (0.1, 0.25, 0.5, 0.9, 0.99, 1.01, 1.25, 1.5)
LOOKAHEADS = (0.5, 1.0, 2.0)


def jam_row(minutes, rtf, lookahead, clip_len, crossfade_s):
    r = simulate(
        seconds=minutes * 60,
        rtf=rtf,
        clip_len=clip_len,
        lookahead=lookahead,
        crossfade_s=crossfade_s,
        moves=0.05,
    )
    s = r.stream
    jammed_min = r.played / SR / 60
    lat = move_latencies(r)
    lat = lat[len(lat) // 4 :]  # past the start-up, where the queue fills
    refreshes = r.driver.refreshed / jammed_min
    return s.underruns / jammed_min, float(np.mean(lat)), float(np.max(lat)), refreshes


def bar_row(minutes, rtf, bpm, clip_len, crossfade_s):
    """(mean, worst latency s, repeats/min, cut-ins/min) with the stick always moving."""
    r = simulate(
        seconds=minutes * 60,
        rtf=rtf,
        clip_len=clip_len,
        crossfade_s=crossfade_s,
        moves=0.05,
        bpm=bpm,
    )
    lat = move_latencies(r)
    lat = lat[len(lat) // 4 :]
    jammed_min = r.played / SR / 60
    s = r.stream
    return float(np.mean(lat)), float(np.max(lat)), s.underruns / jammed_min, s.cuts / jammed_min


def render_then_play(rtf, period_s):
    """Each clip rendered when the previous ended: silence s/min, mean and max latency."""
    r, p = rtf * period_s, period_s
    return 60 * r / (r + p), (r + p) / 2 + r, 2 * r + p


def audio_thread_cost(clip_len, seconds=60, blocksize=1024):
    g = Grid(clip_len, round(0.05 * SR))
    s = JamStream(g)
    clips = [tone_clip(clip_len, k) for k in range(4)]
    buf = np.zeros(blocksize, np.float32)
    n_blocks = seconds * SR // blocksize
    t0 = time.perf_counter()
    for i in range(n_blocks):
        if len(s.ready) < 2:
            s.offer(Clip(clips[i % 4]))
        s.read(buf)
    jam = (time.perf_counter() - t0) / seconds
    p = Player(blocksize=blocksize, loop=True, stream_factory=lambda **kw: None)
    p.play(clips[0])
    out = np.zeros((blocksize, 2), np.float32)
    t0 = time.perf_counter()
    for _ in range(n_blocks):
        p._callback(out, blocksize, None, None)
    player = (time.perf_counter() - t0) / seconds
    return jam, player


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="simulated jam per row")
    ap.add_argument("--clip-ms", type=float, default=441 * 511 / SR * 1000,
                    help="clip length (default: a 512-px image, 5110 ms)")  # fmt: skip
    ap.add_argument("--crossfade-ms", type=float, default=50.0)
    ap.add_argument("--bar-minutes", type=float, default=3.0, help="simulated jam per bar row")
    ap.add_argument("--bpm", type=float, default=120.0, help="bar grid tempo (4/4)")
    args = ap.parse_args()
    clip_len = round(args.clip_ms * SR / 1000)
    xf = args.crossfade_ms / 1000
    period_s = (clip_len - round(xf * SR)) / SR
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(
        f"clips {clip_len} samples ({clip_len / SR:.3f} s), crossfade {args.crossfade_ms:g} ms,"
        f" period {period_s:.3f} s; {args.minutes:g} simulated min per row\n"
    )
    head = "  ".join(f"L={la:<4g}" for la in LOOKAHEADS)
    print("underruns (repeated clips) per minute        | baseline render-then-play")
    print(f"{'rtf':>5}  {head}  | silence s/min")
    t_start = time.perf_counter()
    ages = {}
    for rtf in RTFS:
        cells = []
        for la in LOOKAHEADS:
            u, mean_age, max_age, refreshes = jam_row(args.minutes, rtf, la, clip_len, xf)
            ages[(rtf, la)] = (mean_age, max_age, refreshes)
            cells.append(f"{u:6.2f}")
        silence, _, _ = render_then_play(rtf, period_s)
        print(f"{rtf:5.2f}  {'  '.join(cells)}  | {silence:6.1f}")
    print(f"({time.perf_counter() - t_start:.1f} s of CPU for the table)\n")

    print("latency, stick moved -> heard, mean/max s        | baseline render-then-play")
    print(f"{'rtf':>5}  " + "  ".join(f"L={la:<9g}" for la in LOOKAHEADS) + "  | mean/max")
    for rtf in (0.1, 0.25, 0.5, 0.9):
        _, b_mean, b_max = render_then_play(rtf, period_s)
        cells = [f"{ages[(rtf, la)][0]:5.2f}/{ages[(rtf, la)][1]:5.2f}" for la in LOOKAHEADS]
        print(f"{rtf:5.2f}  {'  '.join(cells)}  | {b_mean:5.2f}/{b_max:5.2f}")
    print(
        f"(without refreshes look-ahead L costs L to L+1 periods of {period_s:.2f} s; where a"
        " render needs more than L periods the driver starts earlier: latency, not silence)"
    )
    per_min = [
        f"rtf {rtf:g} L={la:g}: {ages[(rtf, la)][2]:.1f}"
        for rtf in (0.1, 0.25, 0.5)
        for la in LOOKAHEADS
    ]
    print("refreshes per minute: " + ", ".join(per_min) + "\n")

    bar_s = 4 * 60 / args.bpm
    print(f"respond within a bar: {args.bpm:g} BPM, 4/4 (a bar is {bar_s:.2f} s), look-ahead 1")
    print(f"{'rtf':>5}  {'render s':>8}  {'today mean/worst':>16}  {'bars mean/worst':>15}"
          f"  {'goal mean/worst':>15}  repeats/min today/bars  cut-ins/min")  # fmt: skip
    for rtf in (0.04, 0.1, 0.25):
        render_s = rtf * period_s
        t_mean, t_max, t_rep, _ = bar_row(args.bar_minutes, rtf, None, clip_len, xf)
        b_mean, b_max, b_rep, cuts = bar_row(args.bar_minutes, rtf, args.bpm, clip_len, xf)
        print(
            f"{rtf:5.2f}  {render_s:8.2f}  {t_mean:7.2f}/{t_max:<8.2f}  {b_mean:6.2f}/{b_max:<8.2f}"
            f"  {bar_s / 2 + render_s:6.2f}/{bar_s + render_s:<8.2f}"
            f"  {t_rep:6.2f}/{b_rep:<6.2f}             {cuts:6.1f}"
        )
    print("(rtf: render time / free-running period; goal: half a bar + one render mean, one bar"
          " + one render worst)\n")  # fmt: skip

    jam, player = audio_thread_cost(clip_len)
    print(
        f"audio thread: JamStream.read {jam * 1000:.2f} ms CPU per s of audio,"
        f" Player callback {player * 1000:.2f} ms; ratio {jam / player:.2f}x"
    )


if __name__ == "__main__":
    main()
