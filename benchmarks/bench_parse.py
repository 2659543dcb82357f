"""Input-report parse cost: riffpad.pad.reports.parse_input vs pydualsense's readInput.

Both parse the same stream of reports, in the list-of-ints form hidapi's read() returns:
sticks, triggers and motion changing every report, a finger moving on the touchpad for half
the stream, Bluetooth reports correctly signed. pydualsense 0.7.5 is the baseline: its
``readInput`` run on an instance built without a device (it needs libhidapi-hidraw0 to import).

    PYTHONPATH=. python benchmarks/bench_parse.py [--reports 2000] [--repeat 7]

Prints CPU ns per report (process time, best of --repeat interleaved passes), the speed
ratio, and the share of one CPU core needed to follow a 1000 Hz report stream.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import time
import zlib

import _paths  # noqa: F401  (the repository root on sys.path: see _paths.py)

from riffpad.pad.reports import parse_input
from riffpad.pad.state import PadState, Transport


def make_block(i: int, rng: random.Random) -> bytearray:
    """A plausible 63-byte common block for report number i."""
    b = bytearray(63)
    b[0:4] = bytes(128 + int(60 * math.sin(i / 50 + k)) for k in range(4))  # sticks
    b[4], b[5] = (i * 3) % 256, (i * 7) % 256  # triggers
    b[6] = i % 256  # counter
    b[7] = 0x08 | (0x20 if i % 100 < 30 else 0)  # hat released, Cross held now and then
    for off in range(15, 27, 2):  # gyro + accel noise
        b[off : off + 2] = rng.randint(-300, 300).to_bytes(2, "little", signed=True)
    b[27:31] = (i * 3000).to_bytes(4, "little")  # sensor timestamp
    if (i // 500) % 2:  # a finger sliding across the touchpad
        x, y = (i * 3) % 1920, (i * 2) % 1080
        b[32:36] = bytes([5, x & 0xFF, (x >> 8) | ((y & 0x0F) << 4), y >> 4])
    else:
        b[32] = 0x80
    b[36] = 0x80
    b[52] = 0x08  # 85 %, discharging
    return b


def make_stream(transport: Transport, n: int) -> list[list[int]]:
    rng = random.Random(1)
    out = []
    for i in range(n):
        block = make_block(i, rng)
        if transport is Transport.USB:
            report = b"\x01" + block
        else:
            body = b"\x31\x00" + block + bytes(9)
            report = body + zlib.crc32(body, zlib.crc32(b"\xa1")).to_bytes(4, "little")
        out.append(list(report))
    return out


def ns_per_report(fn, stream) -> float:
    """CPU time of this process (not wall time: other processes on a busy machine would
    count otherwise) per report, for one pass over the stream."""
    t0 = time.process_time_ns()
    for report in stream:
        fn(report)
    return (time.process_time_ns() - t0) / len(stream)


def best_of_interleaved(fns, stream, repeat: int) -> list[float]:
    """Best pass of each function; passes alternate so load changes hit both alike."""
    best = [math.inf] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], ns_per_report(fn, stream))
    return best


def pydualsense_reader(transport: Transport):
    from pydualsense import pydualsense as PyDualSense
    from pydualsense.pydualsense import ConnectionType, DSBattery, DSState

    ds = PyDualSense()
    ds.is_edge = False
    ds.state = DSState()
    ds.battery = DSBattery()
    ds.conType = ConnectionType.USB if transport is Transport.USB else ConnectionType.BT
    return ds.readInput


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=2000, help="reports per pass")
    ap.add_argument("--repeat", type=int, default=7, help="passes; the best one counts")
    args = ap.parse_args()

    try:
        import pydualsense  # noqa: F401
    except OSError as exc:
        print(f"pydualsense cannot load ({exc}); install libhidapi-hidraw0", file=sys.stderr)
        return 1

    print(f"python {platform.python_version()} on {platform.machine()} ({os.cpu_count()} CPUs)")
    print(
        f"{args.reports} reports per pass (hidapi's list form), process CPU time, "
        f"best of {args.repeat} interleaved passes\n"
    )
    header = (
        f"{'transport':<10} {'riffpad ns':>11} {'pydualsense ns':>15} {'speed-up':>9} "
        f"{'riffpad CPU@1kHz':>17} {'pydualsense CPU@1kHz':>21}"
    )
    print(header)
    print("-" * len(header))
    for transport in (Transport.USB, Transport.BLUETOOTH):
        stream = make_stream(transport, args.reports)
        assert all(isinstance(parse_input(r, transport), PadState) for r in stream)
        ours, theirs = best_of_interleaved(
            [lambda r, t=transport: parse_input(r, t), pydualsense_reader(transport)],
            stream,
            args.repeat,
        )
        # 1000 reports/s * ns/report = ns of CPU per second; / 1e9 * 100 = % of one core
        print(
            f"{transport.value:<10} {ours:>11.0f} {theirs:>15.0f} {theirs / ours:>8.1f}x "
            f"{ours / 1e4:>16.2f}% {theirs / 1e4:>20.2f}%"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
