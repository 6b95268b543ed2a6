"""Miner hash rate on all cores against a bare hashlib double-SHA-256 loop on one core,
measured in the same run (medians of --repeat rounds).

    python bench/mine.py [--seconds 3] [--repeat 3] [--processes N]

Prints hashes/s of the reference loop, of the miner, the per-core ratio (target >= 0.8) and
the CPU time each worker process spent (both cores must be used).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from core.primitives import Header  # noqa: E402
from node.mining.miner import Miner  # noqa: E402
from figures import figure  # noqa: E402  (bench/ is on sys.path when run as a script)


def header() -> Header:
    h = hashlib.sha256(b"bench").digest()
    return Header(1, h, h, bytes(32), 1_700_000_000, 0x1d00ffff, 0)


def reference_rate(data: bytes, seconds: float) -> float:
    """What a plain Python loop does: hash the whole 112-byte header twice per nonce."""
    sha256 = hashlib.sha256
    pack = struct.Struct("<I").pack
    prefix = data[:108]
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for nonce in range(n, n + 20_000):
            int.from_bytes(sha256(sha256(prefix + pack(nonce)).digest()).digest(), "big")
        n += 20_000
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def miner_rate(miner: Miner, seconds: float) -> tuple[float, list[float]]:
    """Hashes/s of the pool searching an impossible target for `seconds`; also the CPU time
    each worker spent, read from /proc, to show every core was busy."""
    import threading
    stop = threading.Event()
    cpu0 = _worker_cpu(miner)
    t = threading.Timer(seconds, stop.set)
    start = time.perf_counter()
    t.start()
    before = miner.hashes
    miner.solve(header(), 0, stop)
    elapsed = time.perf_counter() - start
    hashes = miner.hashes - before
    cpu1 = _worker_cpu(miner)
    return hashes / elapsed, [cpu1.get(p, 0) - cpu0.get(p, 0) for p in cpu1]


def _worker_cpu(miner: Miner) -> dict[int, float]:
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in miner.worker_pids():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError):
            pass
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    data = header().to_bytes()
    miner = Miner(args.processes)
    try:
        miner_rate(miner, 0.5)            # start the workers before measuring
        refs, mins, cpus = [], [], []
        for _ in range(args.repeat):
            refs.append(reference_rate(data, args.seconds))
            rate, cpu = miner_rate(miner, args.seconds)
            mins.append(rate)
            cpus.append(cpu)
    finally:
        miner.close()
    ref, rate = statistics.median(refs), statistics.median(mins)
    per_core = rate / args.processes
    print(f"reference hashlib sha256d loop, 1 core : {ref:12,.0f} H/s (median of {args.repeat})")
    print(f"miner, {args.processes} processes{'':16}: {rate:12,.0f} H/s")
    print(f"miner per core / reference        : {per_core / ref:12.2f}  (target >= 0.8)")
    figure("reference", ref, "H/s", "bare hashlib SHA-256d loop, one core")
    figure("miner", rate, "H/s", f"miner on {args.processes} processes")
    figure("per_core_ratio", per_core / ref, "x", "miner per core / reference loop", ">= 0.8")
    last = cpus[len(cpus) // 2]
    print(f"worker CPU seconds in a {args.seconds:g}s round  : "
          + ", ".join(f"{c:.1f}" for c in sorted(last, reverse=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
