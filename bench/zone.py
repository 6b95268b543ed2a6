"""Zone export benchmark: time and size of the DNSSEC-signed bit. zone for N names.

Builds a regtest chain registering N names the normal way (bench/resolver.py's builder, into
LevelDB; each value has an address and a `www` subdomain), then measures on that chain,
REPEAT times (medians; CPU time too, as the machine may be shared): building and signing the
whole stored zone (what a first enable or a reindex does; blocks then change it incrementally,
bench/zone_incr.py), rendering the master file, and rendering the AXFR messages.

    python bench/zone.py [--names 1000 10000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.append(HERE)                    # after the project: bench/light.py must not shadow light/
sys.path.append(os.path.join(HERE, "..", "tests"))     # the chain builder: tests/support/name_chain.py

import dns.message  # noqa: E402

from core.params import REGTEST  # noqa: E402
from node.resolver.identity import ResolverKey  # noqa: E402
from node.resolver.zone.projection import ZoneProjection, forget_zone  # noqa: E402
from node.resolver.zone.reader import ZoneVersion, zone_text  # noqa: E402
from node.resolver.zone.transfer import _bodies  # noqa: E402
from node.service import open_chain  # noqa: E402
from figures import figure  # noqa: E402
from support.name_chain import build_chain  # noqa: E402


def measure(datadir: str, repeat: int) -> dict:
    chain = open_chain(REGTEST, datadir)
    key = ResolverKey(bytes(range(32)))
    build, text, axfr, cpu = [], [], [], []
    try:
        for _ in range(repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            forget_zone(chain.db)
            ZoneProjection(chain.db, REGTEST, key).attach(chain)
            t1 = time.perf_counter()
            _, body = zone_text(chain.db)
            t2, c2 = time.perf_counter(), time.process_time()
            snap = chain.db.snapshot()
            msgs = list(_bodies(dns.message.make_query("bit.", "AXFR"), ZoneVersion(snap)))
            snap.close()
            t3 = time.perf_counter()
            build.append(t1 - t0)
            text.append(t2 - t1)
            axfr.append(t3 - t2)
            cpu.append(c2 - c0)
    finally:
        chain.db.close()
    rrs = sum(1 for line in body.splitlines() if line and not line.startswith("$"))
    return {"build": statistics.median(build), "text": statistics.median(text), "axfr": statistics.median(axfr),
            "cpu": statistics.median(cpu),
            "bytes": len(body.encode()), "rrs": rrs, "messages": len(msgs),
            "axfr_bytes": sum(len(m) + 4 for m in msgs)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="dotbit-zone-bench-")
    try:
        print("| names | sign zone (s) | master file (s) | export total (s) | export CPU (s) | file size | RRs | "
              "AXFR render (s) | AXFR messages / bytes |")
        print("|---|---|---|---|---|---|---|---|---|")
        for n in args.names:
            datadir = os.path.join(tmp, f"n{n}")
            t0 = time.perf_counter()
            build_chain(datadir, n)
            print(f"(chain of {n} names built in {time.perf_counter() - t0:.0f}s)", file=sys.stderr)
            m = measure(datadir, args.repeat)
            print(f"| {n:,} | {m['build']:.2f} | {m['text']:.2f} | {m['build'] + m['text']:.2f} | {m['cpu']:.2f} | "
                  f"{m['bytes'] / 2**20:.2f} MiB | {m['rrs']:,} | {m['axfr']:.2f} | "
                  f"{m['messages']} / {m['axfr_bytes'] / 2**20:.2f} MiB |", flush=True)
            figure(f"export_s_{n}", round(m["build"] + m["text"], 2), "s", f"signed zone export, {n:,} names (wall)")
            figure(f"export_cpu_s_{n}", round(m["cpu"], 2), "s", f"signed zone export, {n:,} names (CPU)")
            figure(f"file_mib_{n}", round(m["bytes"] / 2**20, 2), "MiB", f"zone file size, {n:,} names")
            figure(f"axfr_s_{n}", round(m["axfr"], 2), "s", f"AXFR messages rendered, {n:,} names")
            shutil.rmtree(datadir, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
