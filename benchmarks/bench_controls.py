"""Controls.update cost per report: riffpad's Controls vs the reference evaluation.

    PYTHONPATH=. python benchmarks/bench_controls.py [--seconds 60] [--repeat 5]

Both run the same stream of parsed reports (the shipped default and relative mappings,
default calibration): a performance at 250 reports/s that is mostly idle (the pad at rest,
with a one-count stick jitter now and then and the motion sensors changing every report),
with movement bursts (sticks sweeping, L2/R2 squeezed, a finger on the touchpad, buttons).

Baseline, measured in the same run: ``tests/support/controls_reference.py``'s ReferenceControls,
``Controls.update`` as first written (every binding evaluated from scratch on every report).
As a yardstick the parser's cost on the same reports is printed too. Each figure is CPU
time (process time) per report, best of --repeat interleaved passes; the instrument's share
of one core for controls at 250 and 1000 reports/s follows.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import time

import _paths  # noqa: F401  (the repository root on sys.path: see _paths.py)

from riffpad.controls import Controls, load_mapping
from riffpad.pad.reports import parse_input
from riffpad.pad.state import TouchPoint, Transport
from tests.support.controls_reference import ReferenceControls
from tests.support.reportgen import NO_TOUCH, usb_report

RATE = 250  # reports/s, DualSense over USB


def make_reports(seconds: float, seed: int = 1) -> tuple[list[bytes], float]:
    """Raw USB reports; returns them and the share of reports inside movement bursts."""
    rng = random.Random(seed)
    n = round(seconds * RATE)
    reports, moving = [], 0
    burst_until = -1
    for i in range(n):
        if i > burst_until and rng.random() < 1 / (3 * RATE):  # a burst every ~3 s
            burst_until = i + rng.randint(RATE // 4, RATE)  # lasting 0.25..1 s
        f: dict = {"seq": i & 0xFF, "gyro": tuple(rng.randint(-40, 40) for _ in range(3))}
        if i <= burst_until:
            moving += 1
            ph = i / 25
            f |= {
                "rx": 128 + round(127 * math.sin(ph)),
                "ry": 128 + round(60 * math.cos(ph)),
                "ly": 128 + round(90 * math.sin(ph / 2)),
                "l2": max(0, round(255 * math.sin(ph / 3))),
                "r2": 255 if (i // 40) % 3 == 0 else 0,
                "touch": (TouchPoint(True, 3, (i * 7) % 1920, 500), NO_TOUCH),
                "buttons": 0x20 if (i // 60) % 4 == 1 else 0,
            }
        else:
            f |= {"rx": 128 + (rng.random() < 0.05), "touch": (NO_TOUCH, NO_TOUCH)}
        reports.append(usb_report(**f))
    return reports, moving / n


def per_report(fn, items, t0: float) -> float:
    """CPU seconds per item for one pass."""
    start = time.process_time()
    fn(items, t0)
    return (time.process_time() - start) / len(items)


def run_controls(cls, mapping):
    def run(states, t0):
        c = cls(mapping)
        update = c.update
        for i, s in enumerate(states):
            update(s, t0 + i / RATE)

    return run


def run_parser(raws, t0):
    for r in raws:
        parse_input(r, Transport.USB)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="stream length at 250 Hz")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved passes (best is kept)")
    args = ap.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    raws, moving = make_reports(args.seconds)
    states = [parse_input(r, Transport.USB) for r in raws]
    print(f"{len(states)} reports ({args.seconds:.0f} s at {RATE} Hz), {moving:.0%} in bursts")
    for name in ("default", "relative"):
        mapping = load_mapping(None if name == "default" else name)
        runs = {
            "riffpad Controls.update": (run_controls(Controls, mapping), states),
            "reference (unoptimised)": (run_controls(ReferenceControls, mapping), states),
            "yardstick: parse_input": (run_parser, raws),
        }
        best = {k: math.inf for k in runs}
        for _ in range(args.repeat):
            for k, (fn, items) in runs.items():
                best[k] = min(best[k], per_report(fn, items, 1000.0))
        print(f"\nmapping {name!r}: CPU per report (best of {args.repeat})")
        for k, v in best.items():
            print(
                f"  {k:26s} {v * 1e6:7.2f} us   {v * 250 * 100:5.2f} % of a core at 250 Hz, "
                f"{v * 1000 * 100:5.2f} % at 1000 Hz"
            )
        ratio = best["reference (unoptimised)"] / best["riffpad Controls.update"]
        print(f"  riffpad vs reference: {ratio:.1f}x faster")


if __name__ == "__main__":
    main()
