"""Initial sync over p2p between two local node processes, beside the in-process connect rate
of the same chain measured in the same run (bench/validate.py's connect_all).

A source node serves a bench/make_chain.py chain; a fresh node is started empty, told to
connect (`addnode ... onetry`) and timed until it reaches the source's height. Prints the
medians of --repeat runs and the ratio network/local (target >= 70%). Each run syncs three
times, in rotating order: the fresh node with --par 1 (in line: the figure set beside the
local connect), with --par 1 pinned to one core, and with --par 2 (one signature worker
thread). --par 2 over --par 1 on one core (the issue's "2 cores against one") is printed
with its spread (issue 20 asks it measured; its 1.6x target is validation's, met by reindex),
and over --par 1 on two cores beside it, with a two-idle-core estimate from the syncing
node's CPU. The source node is never pinned: it shares the two cores with the syncing node in
every run.

    python bench/sync.py [--blocks 2000] [--txs N] [--datadir EXISTING_CHAIN] [--repeat 3] [--auxpow]

--auxpow builds the chain merge-mined (bench/make_chain.py --auxpow); figures get an
`auxpow_` prefix, to set beside the plain ones (target: within 2x).
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))     # first: bench/wallet.py must not shadow the wallet package

from wallet.nodeclient import NodeError, OperatorClient  # noqa: E402
from validate import proc_cpu, connect_all, load_blocks  # noqa: E402
from figures import figure  # noqa: E402  (bench/ is on sys.path when run as a script)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, datadir: str, *extra: str, cpus: set[int] | None = None):
        self.datadir = datadir
        self.rpc_port, self.p2p_port = free_port(), free_port()
        os.makedirs(datadir, exist_ok=True)
        log = open(os.path.join(datadir, "bench-node.log"), "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "--regtest", "--datadir", datadir, "--rpc-port",
             str(self.rpc_port), "--p2p-port", str(self.p2p_port), *extra],
            stdout=log, stderr=subprocess.STDOUT, cwd=os.path.join(HERE, ".."),
            # every thread the node starts inherits the CPU set (LevelDB's compaction included)
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        log.close()
        self.rpc = OperatorClient(f"http://127.0.0.1:{self.rpc_port}", os.path.join(datadir, ".cookie"))
        deadline = time.monotonic() + 60
        while True:
            try:
                self.rpc.call("getblockcount")
                return
            except NodeError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"node in {datadir} did not start")
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.rpc.close()


def network_sync(source: Node, height: int, workdir: str, par: int = 1,
                 one_core: bool = False) -> tuple[float, float, float, float]:
    """(seconds, the syncing node's main thread's CPU seconds, its process's (every thread:
    the signature worker thread, LevelDB's compaction), the source node's CPU seconds
    meanwhile) for a fresh node with --par `par` (on one CPU when `one_core`) to reach `height`."""
    cpus = {min(os.sched_getaffinity(0))} if one_core else None
    sink = Node(os.path.join(workdir, "sink"), "--no-listen", "--par", str(par), cpus=cpus)
    pid = sink.proc.pid
    try:
        m0, p0, s0 = proc_cpu(pid, pid), proc_cpu(pid), proc_cpu(source.proc.pid)
        t0 = time.perf_counter()
        sink.rpc.call("addnode", f"127.0.0.1:{source.p2p_port}", "onetry")
        deadline = time.monotonic() + 1800
        while sink.rpc.call("getblockcount") < height:
            if time.monotonic() > deadline:
                raise RuntimeError("sync did not finish")
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        return elapsed, proc_cpu(pid, pid) - m0, proc_cpu(pid) - p0, proc_cpu(source.proc.pid) - s0
    finally:
        sink.stop()
        shutil.rmtree(sink.datadir, ignore_errors=True)


def report_par(one: list, net: list, net2: list, ntx: int, pre: str) -> None:
    """Syncs with --par 1 on one core (one) and on two (net) against --par 2 (net2), run by run
    (each a network_sync tuple). The source node is not pinned: it shares the cores with the
    syncing node in every run."""
    par_ratios = [a[0] / b[0] for a, b in zip(one, net2)]
    two_ratios = [a[0] / b[0] for a, b in zip(net, net2)]
    # What two idle cores would give the syncing node alone: on one core a run lasts at least
    # its process's CPU; on two, at least its main thread's and half its process's.
    est_ratios = [a[2] / max(b[1], b[2] / 2) for a, b in zip(one, net2)]
    speedup = statistics.median(par_ratios)
    wall2 = statistics.median(r[0] for r in net2)
    print(f"p2p sync --par 2 on two cores / --par 1 on one: {ntx / wall2:,.0f} tx/s, {speedup:.2f}x "
          f"(runs {min(par_ratios):.2f}x to {max(par_ratios):.2f}x; issue 20's 1.6x is validation's: reindex)")
    print(f"p2p sync --par 2 / --par 1, both on two cores:  {statistics.median(two_ratios):.2f}x "
          f"(runs {min(two_ratios):.2f}x to {max(two_ratios):.2f}x)")
    print(f"syncing node's CPU, --par 1 on one core: {statistics.median(r[2] for r in one):.2f}s; --par 2: main "
          f"thread {statistics.median(r[1] for r in net2):.2f}s, process {statistics.median(r[2] for r in net2):.2f}s; "
          f"the source node's meanwhile {statistics.median(r[3] for r in net2):.2f}s")
    print(f"two idle cores for the syncing node, from the CPU: {statistics.median(est_ratios):.2f}x "
          f"(runs {min(est_ratios):.2f}x to {max(est_ratios):.2f}x)")
    figure(pre + "p2p_par2_tx", ntx / wall2, "tx/s",
           "initial sync, the syncing node with --par 2 (one signature worker thread)")
    figure(pre + "p2p_par1_one_core_tx", ntx / statistics.median(r[0] for r in one), "tx/s",
           "same, the syncing node with --par 1 on one core")
    figure(pre + "p2p_par2_speedup", speedup, "x",
           f"--par 2 on two cores over --par 1 on one, median of {len(par_ratios)} runs",
           "measured (the 1.6x is validation's: reindex)")
    figure(pre + "p2p_par2_speedup_min", min(par_ratios), "x", "same, lowest run (shared machine)")
    figure(pre + "p2p_par2_speedup_max", max(par_ratios), "x", "same, highest run")
    figure(pre + "p2p_par2_speedup_two_cores", statistics.median(two_ratios), "x",
           "--par 2 over --par 1 both on two cores")
    figure(pre + "p2p_par2_cpu_estimate", statistics.median(est_ratios), "x",
           "--par 2 over --par 1 on two idle cores, estimated from the syncing node's CPU seconds")
    figure(pre + "p2p_par2_source_cpu", statistics.median(r[3] for r in net2), "s",
           "the source node's CPU during a --par 2 sync (on the same two cores)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=2000)
    ap.add_argument("--txs", type=int, help="payments in the chain (default 50 per block)")
    ap.add_argument("--datadir", help="an existing make_chain.py data dir (default: build one)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--auxpow", action="store_true", help="a merge-mined chain (make_chain.py --auxpow)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dotbit-bench-sync-")
    try:
        src_dir = os.path.join(work, "source")
        if args.datadir:
            shutil.copytree(os.path.join(args.datadir, "chain"), os.path.join(src_dir, "chain"))
        else:
            txs = args.txs if args.txs is not None else 50 * args.blocks
            subprocess.run([sys.executable, os.path.join(HERE, "make_chain.py"), "--datadir", src_dir,
                            "--blocks", str(args.blocks), "--txs", str(txs)] + (["--auxpow"] if args.auxpow else []),
                           check=True)
        raws = load_blocks(src_dir)
        local, one, net, net2 = [], [], [], []
        source = Node(src_dir, "--par", "1")
        try:
            height = source.rpc.call("getblockcount")
            for i in range(args.repeat):
                elapsed, ntx, nblocks = connect_all(raws)
                local.append((elapsed, ntx, nblocks))
                order = ((one, 1, True), (net, 1, False), (net2, 2, False))
                for times, par, pinned in order[i % 3:] + order[:i % 3]:
                    times.append(network_sync(source, height, work, par, pinned))
                print(f"  run {i + 1}: local connect {elapsed:.2f}s, p2p sync {net[-1][0]:.2f}s, "
                      f"--par 1 on one core {one[-1][0]:.2f}s (cpu {one[-1][2]:.2f}s), --par 2 {net2[-1][0]:.2f}s "
                      f"(cpu: main thread {net2[-1][1]:.2f}s, process {net2[-1][2]:.2f}s, source {net2[-1][3]:.2f}s) "
                      f"({nblocks} blocks, {ntx} txs)",
                      file=sys.stderr)
        finally:
            source.stop()
        _, ntx, nblocks = local[0]
        local_t = statistics.median(e for e, _, _ in local)
        net_t = statistics.median(r[0] for r in net)
        print(f"local connect (in-process): {nblocks / local_t:,.1f} blocks/s, {ntx / local_t:,.0f} tx/s")
        print(f"p2p initial sync:           {nblocks / net_t:,.1f} blocks/s, {ntx / net_t:,.0f} tx/s")
        print(f"ratio p2p / local:          {local_t / net_t:.1%}  (target >= 70%)")
        pre = "auxpow_" if args.auxpow else ""
        figure(pre + "local_tx", ntx / local_t, "tx/s", f"in-process connect of {nblocks:,} blocks")
        figure(pre + "p2p_tx", ntx / net_t, "tx/s", "initial sync of the same chain from a node process over loopback")
        figure(pre + "p2p_blocks", nblocks / net_t, "blocks/s", "same, blocks")
        figure(pre + "ratio", 100 * local_t / net_t, "%", "p2p sync / in-process connect", ">= 70 %")
        # Each run measures both back to back, so its own ratio is the least disturbed by
        # whatever else the machine is doing at the time.
        paired = [lt / nt[0] for (lt, _, _), nt in zip(local, net)]
        print(f"per-run ratios:             {', '.join(f'{r:.0%}' for r in paired)} "
              f"(median {statistics.median(paired):.1%})")
        report_par(one, net, net2, ntx, pre)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
