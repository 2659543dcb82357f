"""Soak: a long jam with replayed faults; RSS sampled; every take written is checked.

    PYTHONPATH=. python benchmarks/bench_soak.py [--minutes 40] [--warmup 10] [--speed 10]

The real instrument (reader, controls, jam session, driver, stream, headless output, session
recorder, takes writer) runs on a fake pad (tests/support/fakehid) and a fast fake engine that makes
real-size takes: a 512x512 RGB spectrogram image and 5.12 s of float32 audio, fresh arrays
for every clip. The jam's output clock runs ``--speed`` times real time, so 35 simulated
minutes take about 4 real ones. Every 5 simulated minutes the same faults are replayed:

* the pad unplugged for 20 s, then a new one plugged in;
* 30 s of failing generations (the engine raises);
* 40 s of a full disk (a real ENOSPC: the takes folder is a small tmpfs, filled up);
* 30 s of a read-only takes folder (the tmpfs remounted ro: a real EROFS);
* the jam switched off with Square for 20 s, then on again.

Without root (no tmpfs) the disk faults are injected at ``TakeWriter.write_file`` instead.

RSS (/proc/self/status VmRSS) is sampled every 30 simulated seconds. Baseline: the RSS at the
end of the warm-up (two cycles of faults: the jam keeps its last two ended jams, so the
second jam-off is where that memory is first all held), measured in the same run; the verdict is the
largest deviation from it afterwards, and the slope of a line fitted to the samples after
warm-up. A checker takes each finished take off the disk as it appears (the tmpfs stays
small): WAV (16-bit, 5.12 s), PNG (512x512, readable), JSON (parses, names its files); at no
scan may a WAV be visible without its JSON, and at the end no temporary may be left.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
import _paths  # noqa: E402, F401  (the repository root on sys.path: see _paths.py)
import numpy as np  # noqa: E402
import soundfile  # noqa: E402
from PIL import Image  # noqa: E402

from riffpad.instrument.settings import Settings  # noqa: E402
from riffpad.instrument.status import Snapshot, StatusView  # noqa: E402
from riffpad.instrument.takes import TakeWriter  # noqa: E402
from riffpad.instrument.wiring import build  # noqa: E402
from riffpad.jam.session import JamConfig  # noqa: E402
from riffpad.pad.state import Button, Transport  # noqa: E402
from tests.support.engines import EngineContract  # noqa: E402
from tests.support.fakehid import FakeBackend, FakePad  # noqa: E402
from tests.support.reportgen import usb_report  # noqa: E402

SR = 44100
CLIP = 512 * 441  # a 512-px Riffusion clip: 5.12 s
SIDE = 512
CYCLE = 300.0  # simulated seconds between repeats of the fault schedule
FAULTS = (  # (start within the cycle, seconds, kind), simulated
    (20.0, 20.0, "unplug"),
    (70.0, 30.0, "fail"),
    (120.0, 40.0, "disk_full"),
    (180.0, 30.0, "read_only"),
    (240.0, 20.0, "jam_off"),
)
SAMPLE_EVERY = 30.0
MAC = "a0:ab:51:00:00:42"


class SimClock:
    """Simulated seconds: real time since the start, ``speed`` times over."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return (time.monotonic() - self.t0) * self.speed


def fault(kind: str, t: float) -> bool:
    phase = t % CYCLE
    return any(k == kind and s <= phase < s + d for s, d, k in FAULTS)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class SoakTake:
    def __init__(self, image, audio, request) -> None:
        self.image, self.audio, self.sample_rate = image, audio, SR
        self.params, self.timings, self.lineage = dict(request), {"total_s": 0.0}, dict(request)


class SoakEngine(EngineContract):
    """The engine contract, fast: fresh real-size arrays per clip; fails while told to."""

    model = "soak-fake"
    device = "cpu"

    def __init__(self, clock: SimClock, render_s: float) -> None:
        self.clock = clock
        self.render_s = render_s
        self.renders = 0
        self.failed = 0
        y = np.linspace(0, 255, SIDE, dtype=np.float32)[:, None]
        self._base = np.repeat((y * np.ones((1, SIDE), np.float32))[..., None], 3, axis=2)

    def render(self, request, *, audio=True):  # makes audio either way, as EngineAPI allows
        time.sleep(self.render_s)
        self.renders += 1
        if fault("fail", self.clock()):
            self.failed += 1
            raise RuntimeError("CUDA out of memory (soak fault)")
        k = self.renders
        t = np.arange(CLIP, dtype=np.float32) / SR
        audio = (0.3 * np.sin(2 * np.pi * (110 + 10 * (k % 24)) * t)).astype(np.float32)
        pixels = self._base.astype(np.uint8)
        pixels[:, k % SIDE] = 255
        return SoakTake(Image.fromarray(pixels), audio, request)

    def promote(self, request):
        return "promoted"


def make_request(job):
    p = job.params
    return {"prompt_a": str(job.prompt_a), "alpha": p.alpha, "seed_a": p.seed, "steps": p.steps}


def make_pad(clock: SimClock) -> FakePad:
    """A pad at ~125 reports/s whose right stick sweeps (the jam refreshes queued clips),
    with R2 fired every 40 s and Square pressed at the edges of the jam-off window."""

    def source(pad):
        time.sleep(0.008)
        t = clock()
        phase = t % CYCLE
        jam_off = next(s for s, _, k in FAULTS if k == "jam_off")
        square = jam_off <= phase < jam_off + 1 or jam_off + 20 <= phase < jam_off + 21
        rx = int(127.5 + 127 * np.sin(t / 7.0))
        r2 = 255 if t % 40 < 0.5 else 0
        return usb_report(rx=rx, ly=128, r2=r2, buttons=Button.SQUARE if square else 0)

    pad = FakePad(Transport.USB, mac=MAC, source=source)
    pad.writes = deque(maxlen=64)  # the fake keeps what the pad was sent: bounded here
    return pad


class Disk:
    """The takes folder, on a small tmpfs when we may mount one: real ENOSPC and EROFS."""

    def __init__(self, base: Path, size_mb: int = 64) -> None:
        self.folder = base / "takes"
        self.folder.mkdir()
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(self.folder)],
            capture_output=True,
        )
        self.real = r.returncode == 0
        self.state = "ok"
        self.ballast = self.folder / ".soak-ballast"
        if not self.real:  # inject at the writer's one write call instead
            real_write = TakeWriter.write_file

            def write_file(fd, data):
                if self.state == "disk_full":
                    raise OSError(errno.ENOSPC, "No space left on device")
                if self.state == "read_only":
                    raise OSError(errno.EROFS, "Read-only file system")
                real_write(fd, data)

            TakeWriter.write_file = staticmethod(write_file)

    def set(self, state: str) -> None:
        if state == self.state:
            return
        if self.real:
            if self.state == "disk_full":
                self.ballast.unlink()
            if self.state == "read_only":
                subprocess.run(["mount", "-o", "remount,rw", str(self.folder)], check=True)
            if state == "disk_full":
                st = os.statvfs(self.folder)
                with open(self.ballast, "wb") as f:
                    try:
                        os.posix_fallocate(f.fileno(), 0, st.f_bavail * st.f_frsize)
                    except OSError:
                        pass
            if state == "read_only":
                subprocess.run(["mount", "-o", "remount,ro", str(self.folder)], check=True)
        self.state = state

    def close(self) -> None:
        self.set("ok")
        if self.real:
            subprocess.run(["umount", str(self.folder)], check=False)


class Checker:
    """Takes each finished take off the disk after checking it; counts what it saw."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.complete = 0
        self.problems: list[str] = []

    def scan(self, final: bool = False) -> None:
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        stems: dict[str, set[str]] = {}
        for name in names:
            if name.startswith("."):
                if final and name.startswith(".riffpad-"):
                    self.problems.append(f"temporary left: {name}")
                continue
            stem, _, ext = name.rpartition(".")
            stems.setdefault(stem, set()).add(ext)
        for stem, exts in stems.items():
            if "wav" in exts and "json" not in exts:
                self.problems.append(f"{stem}.wav visible without its JSON")
            if exts != {"wav", "png", "json"}:
                if final or "wav" in exts:
                    self.problems.append(f"{stem}: incomplete at the end: {sorted(exts)}")
                continue
            self._check(stem)

    def _check(self, stem: str) -> None:
        f = {ext: self.folder / f"{stem}.{ext}" for ext in ("wav", "png", "json")}
        try:
            meta = json.loads(f["json"].read_text())
            assert meta["take"] == stem and meta["files"]["wav"] == f["wav"].name, "json"
            info = soundfile.info(str(f["wav"]))
            assert (info.samplerate, info.frames, info.subtype) == (SR, CLIP, "PCM_16"), info
            with Image.open(f["png"]) as im:
                im.load()
                assert im.size == (SIDE, SIDE), im.size
        except Exception as e:
            self.problems.append(f"{stem}: {e!r}")
            return
        try:
            for p in f.values():
                p.unlink()
        except OSError:  # read-only for now: the next scan takes it
            return
        self.complete += 1


def soak(minutes: float, warmup: float, speed: float, render_s: float, trace=False) -> dict:
    if trace:
        import tracemalloc

        tracemalloc.start(8)
    snaps = []
    clock = SimClock(speed)
    tmp = Path(tempfile.mkdtemp(prefix="riffpad-soak-"))
    logging.basicConfig(filename=tmp / "riffpad.log", level=logging.INFO, force=True)
    disk = Disk(tmp)
    engine = SoakEngine(clock, render_s)
    pad = make_pad(clock)
    backend = FakeBackend(pad)
    opts = Settings(out=str(disk.folder), no_audio=True, live=False)
    jam = JamConfig(
        start=True,
        speaker=False,
        clock=clock,
        crossfade_s=0.05,
        record_audio=str(tmp / "session.wav"),
    )
    view = StatusView(Snapshot(), live=False, stream=open(tmp / "log.txt", "w"))
    inst = build(opts, view, engine=engine, make_request=make_request, backend=backend, jam=jam)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.setdefault("code", inst.run()))
    runner.start()
    checker = Checker(disk.folder)
    samples: list[tuple[float, float, dict]] = []
    unplugged = False
    next_sample = 0.0
    real0 = time.monotonic()
    try:
        while (t := clock()) < minutes * 60:
            want = next((k for k in ("disk_full", "read_only") if fault(k, t)), "ok")
            disk.set(want)
            if fault("unplug", t) and not unplugged:
                backend.unplug(pad)
                unplugged = True
            elif not fault("unplug", t) and unplugged:
                pad = backend.add(make_pad(clock))
                unplugged = False
            if t >= next_sample:
                jam = inst.jam
                s = jam.driver.stream if jam.driver is not None else None
                counts = {
                    "takes": len(inst.takes),
                    "latencies": len(inst.latency_fire_to_start),
                    "streams": len(jam.streams),
                    "slots": len(s.slots) if s is not None else 0,
                    "render_s": len(jam.driver.render_s) if jam.driver is not None else 0,
                    "failures": inst.failures,
                }
                if trace:
                    import tracemalloc

                    counts["traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
                    if len(samples) in (int(warmup * 60 / SAMPLE_EVERY), int(minutes * 2) - 1):
                        snaps.append(tracemalloc.take_snapshot())
                samples.append((t, rss_mb(), counts))
                next_sample += SAMPLE_EVERY
            checker.scan()
            time.sleep(0.05)
    finally:
        disk.set("ok")
        inst.request_quit()
        runner.join(60)
        checker.scan(final=True)
        disk.close()
        logging.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)  # the session recording alone is ~400 MB
    real_s = time.monotonic() - real0
    if len(snaps) == 2:
        for stat in snaps[1].compare_to(snaps[0], "traceback")[:8]:
            print(f"{stat.size_diff / 2**20:+.2f} MB in {stat.count_diff:+d} blocks:")
            print("\n".join("    " + line for line in stat.traceback.format()[-8:]))
    return {
        "samples": samples,
        "checker": checker,
        "inst": inst,
        "engine": engine,
        "code": result.get("code"),
        "real_s": real_s,
        "disk": "tmpfs (real ENOSPC/EROFS)" if disk.real else "injected at write_file",
        "warmup": warmup,
    }


def summary(r: dict) -> list[str]:
    samples = r["samples"]
    warm = r["warmup"] * 60
    after = [(t, m) for t, m, _ in samples if t >= warm]
    base = after[0][1]
    lo, hi = min(m for _, m in after), max(m for _, m in after)
    ts = np.array([t for t, _ in after]) / 60
    ms = np.array([m for _, m in after])
    slope = float(np.polyfit(ts, ms, 1)[0]) * 60 if len(after) > 2 else 0.0
    inst, checker, engine = r["inst"], r["checker"], r["engine"]
    jam = inst.jam
    lines = [
        f"simulated {samples[-1][0] / 60:.1f} min of jam in {r['real_s']:.0f} s real"
        f" ({platform.python_version()}, {os.cpu_count()} CPUs); disk faults: {r['disk']}",
        f"RSS at start {samples[0][1]:.1f} MB; baseline (end of {r['warmup']:g} min warm-up)"
        f" {base:.1f} MB",
        f"after warm-up: min {lo:.1f} MB, max {hi:.1f} MB, final {ms[-1]:.1f} MB;"
        f" largest deviation {max(hi - base, base - lo) / base * 100:+.1f}% of baseline"
        f" (max/baseline = {hi / base:.3f}); fitted slope {slope:+.1f} MB per simulated hour",
        f"renders {engine.renders} ({engine.failed} failed on purpose); jams {jam.jams};"
        f" clips played {jam.clips}; takes written {len(inst.takes)}; failures noted"
        f" {inst.failures}",
        f"takes checked complete and valid (WAV+PNG+JSON): {checker.complete};"
        f" problems: {len(checker.problems)}; instrument exit code {r['code']}",
    ]
    lines += [f"  problem: {p}" for p in checker.problems[:10]]
    lines.append("")
    lines.append(
        "| sim min | RSS MB | takes | latencies | streams | slots | render_s | failures"
        " | traced MB |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for t, m, c in samples:
        if round(t) % 150 < SAMPLE_EVERY:  # every 2.5 simulated minutes
            lines.append(
                f"| {t / 60:.1f} | {m:.1f} | {c['takes']} | {c['latencies']} | {c['streams']}"
                f" | {c['slots']} | {c['render_s']} | {c['failures']} | {c.get('traced_mb', '')} |"
            )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=40.0, help="simulated minutes in all")
    ap.add_argument("--warmup", type=float, default=10.0, help="simulated minutes of warm-up")
    ap.add_argument("--speed", type=float, default=10.0, help="simulated seconds per real one")
    ap.add_argument("--render-s", type=float, default=0.08, help="real seconds per render")
    ap.add_argument("--trace", action="store_true", help="tracemalloc: what grew after warm-up")
    ap.add_argument("--out", help="also write the summary (markdown) to this file")
    args = ap.parse_args()
    r = soak(args.minutes, args.warmup, args.speed, args.render_s, args.trace)
    lines = summary(r)
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    ok = not r["checker"].problems and r["code"] == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
