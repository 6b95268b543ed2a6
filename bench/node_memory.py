"""Peak RSS of a regtest node serving a bench/make_chain.py chain, and the time and peak RSS
of `dotbit-node reindex` on it (target: node peak RSS <= 150 MB after the 2,000-block chain).

    python bench/node_memory.py --datadir /tmp/bench-chain
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from support.harness import NodeProcess  # noqa: E402
from figures import figure  # noqa: E402  (bench/ is on sys.path when run as a script)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datadir", required=True)
    args = ap.parse_args()
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "node.cli", "--regtest", "--datadir", args.datadir, "reindex"],
                       capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if r.returncode:
        print(r.stderr[-2000:], file=sys.stderr)
        return 1
    reindex_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    figure("reindex_s", elapsed, "s", "`dotbit-node reindex` of the chain (signatures included)")
    figure("reindex_rss", reindex_rss, "MiB", "reindex peak RSS")
    print(f"reindex: {elapsed:.1f}s ({r.stdout.strip().splitlines()[-1][:60]}...), peak RSS {reindex_rss:.0f} MiB")
    node = NodeProcess(args.datadir).start(timeout=120)
    try:
        height = node.call("getblockcount")
        for h in range(0, height + 1, max(1, height // 200)):
            node.call("getblock", node.call("getblockhash", h), 2)
        node.call("getblockchaininfo")
        with open(f"/proc/{node.proc.pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f)
        hwm = int(fields["VmHWM"].split()[0]) / 1024
        rss = int(fields["VmRSS"].split()[0]) / 1024
    finally:
        node.stop()
    figure("node_rss", hwm, "MiB", f"regtest node serving {height:,} blocks (after getblock of 200), peak RSS",
           "<= 150 MB")
    print(f"node at height {height}: peak RSS {hwm:.0f} MiB, current {rss:.0f} MiB (target <= 150 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
