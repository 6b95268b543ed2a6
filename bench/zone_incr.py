"""Incremental zone benchmark: the stored signed zone (node/resolver/zone/projection.py) at N
names, on LevelDB.

N name records are written into a store (in blocks of 10,000 names, the zone not kept), then, in
a child process (so the peak RSS is the build's, not the writer's): the whole zone is built
(what a first enable or a reindex does), timed, with the process's peak RSS and its worker
processes' (node/resolver/zone/lanes.py: rendering and signing beside the building process);
then REPEAT blocks each changing CHANGED names update it in their batch (median time); then the
IXFR bytes per changed name (one block's step as the transfer messages carry it). Each value has
an address and a `www` subdomain, as bench/zone.py's names.

`--workers` takes one or more counts (default: the node's, one per core but one, up to 3; 0
builds in the one process), each built from the same stored names in the same run, so the speed-up is
measured against its own reference.

    python bench/zone_incr.py [--names 10000 100000] [--changed 1000] [--repeat 3] [--workers 0 1]
    python bench/zone_incr.py --names 1000000 --repeat 1        # the issue-20 target run
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.append(HERE)                    # after the project: bench/light.py must not shadow light/
sys.path.append(os.path.join(HERE, "..", "tests"))     # the chain model: tests/support/zone_model.py

import dns.message  # noqa: E402
import dns.rrset  # noqa: E402

from node.chain.storage import LevelDB  # noqa: E402
from node.resolver.zone.projection import forget_zone  # noqa: E402
from node.resolver.zone.reader import ZoneVersion  # noqa: E402
from node.resolver.zone.transfer import _bodies  # noqa: E402
from figures import figure  # noqa: E402
from support.zone_model import ModelChain  # noqa: E402

PARAMS = SimpleNamespace(expiry_depth=1_000_000)
PER_BLOCK = 10_000


def value(i: int, salt: int = 0) -> str:
    a = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    return json.dumps({"ip": [a], "map": {"www": {"ip": [a]}}, "txt": [f"v{salt}"]})


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_names(path: str, n: int) -> None:
    """N name records into a fresh store, the zone not kept (another process builds it, so its
    peak RSS is the build's alone)."""
    chain = ModelChain(history=10, db=LevelDB(path), params=PARAMS)
    try:
        chain.projections.clear()
        for start in range(0, n, PER_BLOCK):
            chain.connect({b"d/n%07d" % i: value(i) for i in range(start, min(n, start + PER_BLOCK))})
            chain.undo.clear()
        forget_zone(chain.db)                           # the child builds it whole
    finally:
        chain.db.close()


def build_and_update(path: str, n: int, changed: int, repeat: int, workers: int | None) -> dict:
    """In the child process: the whole build (a model chain opening a store whose zone is not
    its tip's rebuilds it, as a node's resolver does), then blocks of `changed` names."""
    rss_before = peak_rss_mib()
    c0, t0 = time.process_time(), time.perf_counter()
    w0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    chain = ModelChain(history=10, db=LevelDB(path), params=PARAMS, build_workers=workers)
    build, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    w1 = resource.getrusage(resource.RUSAGE_CHILDREN)       # the workers have been waited for
    workers_cpu = (w1.ru_utime + w1.ru_stime) - (w0.ru_utime + w0.ru_stime)
    rss_build = peak_rss_mib()
    rss_worker = w1.ru_maxrss / 1024 if workers_cpu > 0 else 0.0
    try:
        blocks, blocks_cpu = [], []
        for r in range(repeat):
            serial = chain.zone.serial()
            ops = {b"d/n%07d" % ((i * 7919 + r) % n): value(i, r + 1) for i in range(changed)}
            c0, t0 = time.process_time(), time.perf_counter()
            chain.connect(ops)
            blocks.append(time.perf_counter() - t0)
            blocks_cpu.append(time.process_time() - c0)
        snap = chain.db.snapshot()
        q = dns.message.make_query("bit.", "IXFR")
        q.authority.append(dns.rrset.from_text("bit.", 0, "IN", "SOA", f". . {serial} 0 0 0 0"))
        ixfr = sum(len(b) + 4 for b in _bodies(q, ZoneVersion(snap)))
        snap.close()
    finally:
        chain.db.close()
    return {"build": build, "build_cpu": build_cpu, "workers_cpu": workers_cpu, "rss_before": rss_before,
            "rss_build": rss_build, "rss_worker": rss_worker,
            "block": statistics.median(blocks), "block_cpu": statistics.median(blocks_cpu),
            "ixfr_per_name": ixfr / changed}


def measure(path: str, n: int, changed: int, repeat: int, workers: int | None) -> dict:
    """One build in a child process on a copy of the stored names (each --workers count builds
    from the same names; the copy is what the blocks then change)."""
    work = path + ".build"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(path, work)
    try:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", work, "--names", str(n),
                              "--changed", str(changed), "--repeat", str(repeat),
                              "--workers", "-1" if workers is None else str(workers)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"zone_incr child failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(n: int, workers: int | None, m: dict, changed: int) -> None:
    from node.resolver.zone.lanes import default_workers
    w = default_workers() if workers is None else workers
    print(f"| {n:,} | {w} | {m['build']:.1f} | {m['build_cpu']:.1f} + {m['workers_cpu']:.1f} | {m['rss_build']:.0f} "
          f"(at start {m['rss_before']:.0f}) + {m['rss_worker']:.0f} | {m['block']:.2f} | {m['block_cpu']:.2f} "
          f"| {m['ixfr_per_name']:.0f} |", flush=True)
    tag = f"{n}" if workers is None else f"{n}_w{w}"
    figure(f"zone_build_s_{tag}", round(m["build"], 1), "s", f"whole signed zone built, {n:,} names, {w} workers",
           "<= 900" if n == 1_000_000 else "")
    figure(f"zone_rss_mib_{tag}", round(m["rss_build"] + w * m["rss_worker"]), "MiB",
           f"peak RSS building the zone, {n:,} names: this process + {w} workers", "<= 500" if n == 1_000_000 else "")
    figure(f"zone_block_s_{tag}", round(m["block"], 2), "s",
           f"zone update for a block of {changed:,} changed names, {n:,} names")
    figure(f"ixfr_bytes_per_name_{tag}", round(m["ixfr_per_name"]), "B", "IXFR bytes per changed name")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", type=int, nargs="+", default=[10_000])
    ap.add_argument("--changed", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[-1],
                    help="worker processes for the build, each compared in the same run (-1: the default)")
    ap.add_argument("--child", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        w = args.workers[0]
        print(json.dumps(build_and_update(args.child, args.names[0], args.changed, args.repeat,
                                          None if w < 0 else w)))
        return 0
    tmp = tempfile.mkdtemp(prefix="dotbit-zone-incr-")
    try:
        print(f"| names | workers | whole build (s) | build CPU, this process + workers (s) | peak RSS (MiB), this "
              f"process + each worker | block of {args.changed:,} changed names (s) | its CPU (s) | "
              "IXFR bytes per changed name |")
        print("|---|---|---|---|---|---|---|---|")
        for n in args.names:
            path = os.path.join(tmp, f"n{n}")
            write_names(path, n)
            for w in args.workers:
                report(n, None if w < 0 else w, measure(path, n, args.changed, args.repeat, None if w < 0 else w),
                       args.changed)
            shutil.rmtree(path, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
