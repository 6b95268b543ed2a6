"""`make bench`: every benchmark in one run, each printing its own figures (medians).

Builds the shared synthetic chain once (bench/make_chain.py) and hands it to the benchmarks
that replay it. Sizes are the issue targets unless --quick is given.

    python bench/run_all.py [--quick] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def benches(chain_dir: str, quick: bool) -> list[tuple[str, list[str]]]:
    return [
        ("make_chain", ["--datadir", chain_dir] + (["--blocks", "400", "--txs", "10000"] if quick else [])),
        ("validate", ["--datadir", chain_dir, "--repeat", "1" if quick else "3"]),
        ("node_memory", ["--datadir", chain_dir]),
        ("mine", ["--seconds", "2" if quick else "3"]),
        ("names", ["--names", "20000" if quick else "1000000"]),
        ("sync", ["--datadir", chain_dir]),
        ("resolver", []),
        ("zone", ["--names", "1000"] if quick else []),
        ("wallet", []),
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--only", nargs="*", help="run only these benchmarks")
    args = ap.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.python_implementation()} "
          f"{platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}")
    tmp = tempfile.mkdtemp(prefix="dotbit-bench-")
    chain_dir = os.path.join(tmp, "chain")
    failed = []
    try:
        for name, extra in benches(chain_dir, args.quick):
            if args.only and name not in args.only and not (name == "make_chain" and {"validate", "node_memory", "sync"} & set(args.only)):
                continue
            script = os.path.join(HERE, f"{name}.py")
            if not os.path.exists(script):
                print(f"\n## {name}: no bench/{name}.py yet")
                continue
            print(f"\n## {name}", flush=True)
            t0 = time.monotonic()
            r = subprocess.run([sys.executable, script, *extra])
            print(f"({name}: {time.monotonic() - t0:.0f}s, exit {r.returncode})", flush=True)
            if r.returncode:
                failed.append(name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
