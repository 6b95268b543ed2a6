"""Secondary freshness benchmark: how soon after a block a BIND (and a Knot) secondary of the
node's `bit.` zone answers with the new serial, at N names.

Builds a chain of N registered names (tests/support/name_chain.py, every block validated;
regtest rules with main-net expiry, as bench/names.py, so all N names are alive at once), serves
it from a node process with DNS, transfers allowed with a TSIG key and NOTIFY to the
secondaries, and starts BIND `named` and Knot `knotd` as secondaries with the configuration
the tests run (tests/support/secondaries.py: TSIG, IXFR requested). Then, BLOCKS times: one
block is mined over JSON-RPC and the clock runs from just before that call until each
secondary answers an SOA query with the new serial (NOTIFY, SOA check, transfer, load). The
first, whole-zone transfer is timed too. Target (issue 20): BIND current <= 5 s after a block
at 100,000 names.

    python bench/secondary.py [--names 100000] [--blocks 3]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import math
import multiprocessing as mp
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The repository first: bench/wallet.py (on the path as this script's directory) must not
# shadow the wallet package, whose RPC client the harness uses.
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.append(os.path.join(HERE, "..", "tests"))     # the chain builder and the secondaries' harness

from core.params import REGTEST  # noqa: E402
from figures import figure  # noqa: E402
from support.harness import free_port  # noqa: E402
from support.name_chain import build_chain  # noqa: E402
from support.secondaries import KINDS, node_serial, notify_args, program, stop_all  # noqa: E402

PARAMS = dataclasses.replace(REGTEST, expiry_depth=36_000)
SECRET = base64.b64encode(bytes(range(90, 122))).decode()
TARGET_NAMES = 100_000


def serve(datadir: str, rpc_port: int, dns_port: int, notify: list[str], ready) -> None:
    """The node, in its own process, with the bench's parameters (the CLI knows only the
    networks' own)."""
    import logging
    logging.basicConfig(level=logging.WARNING)
    from node.service import Node
    from node.settings import ResolverSettings

    resolver = ResolverSettings(dns_port=dns_port, axfr_allow=("127.0.0.1",), axfr_tsig=(f"xfr-key:{SECRET}",),
                                notify=tuple(notify))

    async def run():
        node = Node(PARAMS, datadir, rpc_port=rpc_port, resolver=resolver)
        await node.start()
        ready.set()
        await node.stopping.wait()
        await node.stop()
    asyncio.run(run())


class Served:
    """The node process and what the secondaries' helpers need of it (dns_port)."""

    def __init__(self, datadir: str, notify: list[str]):
        self.datadir = datadir
        self.rpc_port, self.dns_port = free_port(), free_port()
        ready = mp.get_context("spawn").Event()
        self.proc = mp.get_context("spawn").Process(target=serve, args=(datadir, self.rpc_port, self.dns_port,
                                                                         notify, ready))
        self.proc.start()
        if not ready.wait(600):
            self.proc.kill()
            raise RuntimeError("node did not start")
        from wallet.nodeclient import OperatorClient
        self.rpc = OperatorClient(f"http://127.0.0.1:{self.rpc_port}", os.path.join(datadir, ".cookie"))

    def stop(self) -> None:
        try:
            self.rpc.call("stop")
        except Exception:
            pass
        self.proc.join(60)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(10)
        self.rpc.close()


def wait_all(secondaries, serial: int, t0: float, timeout: float) -> dict[str, float]:
    """Seconds from t0 until each secondary serves `serial` (polled side by side, so one slow
    secondary does not delay the other's clock); NaN for one that did not within `timeout`."""
    took: dict[str, float] = {}

    def one(kind, sec):
        try:
            sec.wait_serial(serial, timeout)
            took[kind] = time.monotonic() - t0
        except AssertionError as e:
            print(f"({kind}: {str(e).splitlines()[0]})", file=sys.stderr)
            took[kind] = float("nan")
    threads = [threading.Thread(target=one, args=item) for item in secondaries.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return took


def measure(datadir: str, blocks: int, timeout: float) -> dict:
    secondaries = {k: cls(SECRET) for k, cls in KINDS.items() if program(cls.binary)}
    node = Served(datadir, notify_args(secondaries)[1::2])
    try:
        t0 = time.monotonic()
        for sec in secondaries.values():
            sec.start(node.dns_port)
        first = wait_all(secondaries, node_serial(node), t0, timeout)
        address = node.rpc.call("getminingaddress")
        after: dict[str, list[float]] = {k: [] for k in secondaries}
        # Without a first version no secondary has anything to follow: no blocks are timed.
        for _ in range(blocks if any(not math.isnan(v) for v in first.values()) else 0):
            time.sleep(1)                      # the last NOTIFY's retries settle
            t0 = time.monotonic()
            node.rpc.call("generatetoaddress", 1, address)
            for kind, s in wait_all(secondaries, node_serial(node), t0, timeout).items():
                after[kind].append(s)
        how = {k: transfers(sec) for k, sec in secondaries.items()}
    finally:
        stop_all(secondaries)
        node.stop()
    # A block a secondary did not follow within the timeout makes its figure NaN (not printed).
    return {"first": first, "how": how,
            "after": {k: statistics.median(v) if v and not any(map(math.isnan, v)) else float("nan")
                      for k, v in after.items()}}


def transfers(sec) -> str:
    """How the secondary got its versions, from its own log: incremental or whole zone."""
    text = sec.log(0)
    if sec.kind == "bind":
        return (f"{text.count('got incremental response')} incremental, "
                f"{text.count('got nonincremental response')} whole-zone")
    started = re.findall(r"\[bit\.\] ([AI]XFR), incoming, remote [^\n]*?, started", text)
    return (f"{started.count('IXFR')} incremental, {started.count('AXFR')} whole-zone "
            f"({text.count('AXFR-style IXFR')} of them asked as IXFR)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", type=int, nargs="+", default=[TARGET_NAMES])
    ap.add_argument("--blocks", type=int, default=3, help="blocks timed (median reported)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds a secondary may take")
    args = ap.parse_args()
    # SIGTERM (a run_all pass cut short) still stops the node and the secondaries.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not program("named"):
        print("named (BIND 9) is not installed", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="dotbit-secondary-bench-")
    try:
        print("| names | secondary | first transfer (s) | current after a block (s, median) | transfers |")
        print("|---|---|---|---|---|")
        for n in args.names:
            datadir = os.path.join(tmp, f"n{n}")
            t0 = time.perf_counter()
            build_chain(datadir, n, PARAMS)
            print(f"(chain of {n} names built in {time.perf_counter() - t0:.0f}s)", file=sys.stderr)
            m = measure(datadir, args.blocks, args.timeout)
            for kind, after in m["after"].items():
                print(f"| {n:,} | {kind} | {m['first'][kind]:.2f} | {after:.2f} | {m['how'][kind]} |", flush=True)
                target = "<= 5 s at 100,000 names" if kind == "bind" else ""
                figure(f"{kind}_current_s_{n}", round(after, 2), "s",
                       f"{'BIND' if kind == 'bind' else 'Knot'} secondary current after a block, {n:,} names",
                       target)
                figure(f"{kind}_first_s_{n}", round(m["first"][kind], 2), "s",
                       f"{'BIND' if kind == 'bind' else 'Knot'} secondary's first (whole) transfer, {n:,} names")
            shutil.rmtree(datadir, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
