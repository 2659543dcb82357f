"""The instrument's own overhead, measured in-process on replayed captures.

    PYTHONPATH=. python benchmarks/bench_instrument.py [--seconds 10] [--fires 100]

Runs the whole instrument (ReplayHid -> PadReader -> Controls -> worker -> TakeWriter, pad
feedback) with a fake engine that renders instantly, so only riffpad's code is timed:

* fire -> generation start: the R2 report crossing its threshold (reader timestamp) to the
  worker calling ``engine.render``. Goal: p99 < 2 ms.
* report -> feedback write: a report that changes what the pad should show (the right stick
  sweeping alpha) to the output report being written to the handle. Goal: p99 < 2 ms.
* idle CPU: process CPU time (all threads) over an idle replay of --seconds at 250 reports/s.
  Goal: < 2 % of one core.

Baseline, measured in the same run: "naive", the same instrument with a device that writes
an output report for every input report, as pydualsense's loop does (``sendReport`` after
each ``readInput``), instead of only when the feedback changes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))  # reportgen

import numpy as np
from PIL import Image
from reportgen import NO_TOUCH, usb_report

from riffpad.instrument.app import Options, build
from riffpad.instrument.status import Snapshot, StatusView
from riffpad.pad.capture import CaptureWriter, make_header
from riffpad.pad.device import PadDevice
from riffpad.pad.state import TouchPoint, Transport

DT = 0.004  # 250 reports/s (DualSense over USB)
TOUCH = (TouchPoint(True, 1, 480, 500), NO_TOUCH)


@dataclass
class Take:
    image: Image.Image
    audio: np.ndarray
    sample_rate: int
    params: dict
    timings: dict
    lineage: dict


class InstantEngine:
    model = "instant-fake"
    device = "cpu"

    def __init__(self, inst_holder):
        self.holder = inst_holder
        self.starts: list[float] = []
        self.image = Image.new("RGB", (64, 64))
        self.audio = np.zeros(4410, np.float32)

    def render(self, request):
        self.starts.append(time.monotonic())
        return Take(self.image, self.audio, 44100, dict(request), {}, dict(request))

    def promote(self, request):
        return request["prompt_a"]


def make_request(job):
    p = job.params
    return {"alpha": p.alpha, "seed": p.seed, "steps": p.steps, "cfg": p.cfg}


def capture(path: Path, seconds: float, fires: int, sweep: bool) -> Path:
    n = round(seconds / DT)
    fire_every = n // fires if fires else 0
    with CaptureWriter(path, make_header(Transport.USB)) as w:
        for i in range(n):
            rx = 128 + round(127 * np.sin(i / 40)) if sweep else 128
            r2 = (
                255
                if fire_every and (i % fire_every) in range(fire_every // 2, fire_every // 2 + 4)
                else 0
            )
            w.write(i * DT, usb_report(seq=i & 0xFF, rx=rx, r2=r2, touch=TOUCH))
    return path


class NaiveDevice(PadDevice):
    """The baseline: an output report for every input report (pydualsense's loop)."""

    def send_feedback(self, fb):
        self._write(fb)
        self._last_written = fb
        return True


def run_once(cap: Path, *, naive: bool, realtime: bool = True) -> dict:
    holder: dict = {}
    out = Path(tempfile.mkdtemp(prefix="riffpad-bench-"))
    engine = InstantEngine(holder)
    opts = Options(
        replay=str(cap),
        out=str(out / "takes"),
        no_audio=True,
        live=False,
        engine=engine,
        make_request=make_request,
        realtime=realtime,
    )
    view = StatusView(Snapshot(), live=False, stream=open(os.devnull, "w"))
    inst = build(opts, view)
    dev = inst.held_device
    if naive:
        dev.__class__ = NaiveDevice
    # Timestamp every output report and remember which report asked for a change.
    writes: list[float] = []
    real_write = dev.handle.write

    def timed_write(data):
        writes.append(time.monotonic())
        return real_write(data)

    dev.handle.write = timed_write
    changed: list[tuple[float, int]] = []  # (report t, writes before it)
    on_event = inst.on_pad_event

    def traced(ev):
        before = inst.wanted
        on_event(ev)
        if getattr(ev, "state", None) is not None and inst.wanted != before:
            changed.append((ev.t, len(writes)))

    inst.on_pad_event = traced
    cpu0, wall0 = time.process_time(), time.monotonic()
    inst.run()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    fire_lat = [lat for lat, queued in inst.latency_fire_to_start if not queued]
    queued = sum(1 for _, q in inst.latency_fire_to_start if q)
    fb_lat = [writes[k] - t for t, k in changed if k < len(writes)]
    return {
        "cpu": cpu,
        "wall": wall,
        "writes": len(writes),
        "fires": inst.fires,
        "takes": len(inst.takes),
        "fire_lat": fire_lat,
        "queued": queued,
        "fb_lat": fb_lat,
        "reports": inst.reader.accepted,
    }


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def ms(x: float) -> str:
    return f"{x * 1000:7.3f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="idle replay length")
    ap.add_argument("--fires", type=int, default=100, help="fires in the latency replay")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="riffpad-bench-"))
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")

    lat_seconds = max(4.0, args.fires * 0.12)
    cap = capture(tmp / "fires.jsonl", lat_seconds, args.fires, sweep=True)
    idle = capture(tmp / "idle.jsonl", args.seconds, 0, sweep=False)
    results = {}
    for name, naive in (("riffpad", False), ("naive", True)):
        lat = run_once(cap, naive=naive)
        quiet = run_once(idle, naive=naive)
        results[name] = (lat, quiet)
        print(f"\n[{name}] {lat['reports']} reports in {lat['wall']:.1f} s, {lat['fires']} fires, "
              f"{lat['takes']} takes, {lat['writes']} output reports")  # fmt: skip
        f, b = lat["fire_lat"], lat["fb_lat"]
        print(f"  fire -> generation start  p50 {ms(pct(f, 50))}  p99 {ms(pct(f, 99))}  "
              f"(n={len(f)}; {lat['queued']} fired while busy, left out)")  # fmt: skip
        print(
            f"  report -> feedback write  p50 {ms(pct(b, 50))}  p99 {ms(pct(b, 99))}  (n={len(b)})"
        )
        share = quiet["cpu"] / quiet["wall"] * 100
        print(f"  idle: {quiet['cpu']:.3f} s CPU over {quiet['wall']:.1f} s = {share:.2f} % of a "
              f"core; {quiet['writes']} output reports for {quiet['reports']} input "
              "reports")  # fmt: skip

    r, n = results["riffpad"], results["naive"]
    r_idle = r[1]["cpu"] / r[1]["wall"]
    n_idle = n[1]["cpu"] / n[1]["wall"]
    print("\nriffpad vs naive (same run):")
    ratio = n_idle / r_idle
    print(f"  idle CPU           {r_idle * 100:6.2f} % vs {n_idle * 100:6.2f} %  ({ratio:.2f}x)")
    print(f"  idle output writes {r[1]['writes']:6d}   vs {n[1]['writes']:6d}")
    print(
        f"  fire->start p99    {ms(pct(r[0]['fire_lat'], 99))} vs {ms(pct(n[0]['fire_lat'], 99))}"
    )
    goals = {
        "fire->start p99 < 2 ms": pct(r[0]["fire_lat"], 99) < 0.002,
        "report->feedback p99 < 2 ms": pct(r[0]["fb_lat"], 99) < 0.002,
        "idle CPU < 2 % of a core": r_idle < 0.02,
    }
    for goal, ok in goals.items():
        print(f"  goal {goal}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
