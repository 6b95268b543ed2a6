"""Name benchmark: build a chain with --names registered names (default 1,000,000) in-process,
every block fully validated, then measure with that state:

  - name operations connected per second (NAME_NEW + FIRSTUPDATE while building; then blocks
    of NAME_UPDATEs spread over the whole tree), tree updates included;
  - name_show latency in-process (the RPC handler called directly) and over JSON-RPC on one
    keep-alive connection to a node serving the data dir;
  - proof size and proof verification time at that many names;
  - DB size on disk and peak RSS.

    python bench/names.py [--names 1000000] [--datadir DIR] [--keep]

The chain uses regtest parameters with Namecoin's main-net expiry (36,000 blocks) and no
subsidy halving, passed explicitly, so names stay alive while a million are registered.
"""
from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import base64
import multiprocessing as mp
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from core.consensus import BURN_ADDRESS, COIN  # noqa: E402
from core.crypto import hash160, pubkey_from_secret  # noqa: E402
from core.primitives import (BURN, NAME_FIRSTUPDATE, NAME_NEW, NAME_UPDATE, Block,  # noqa: E402
                                   Covenant, Tx, TxIn, TxOut)
from core.signing import sign_tx  # noqa: E402
from node.mining.miner import solve_quick  # noqa: E402
from node.mining.template import assemble  # noqa: E402
from core.names.proof import verify_proof  # noqa: E402
from core.names.rules import commitment, registration_burn, tree_key  # noqa: E402
from core.params import REGTEST  # noqa: E402
from node.service import open_chain  # noqa: E402
from figures import figure  # noqa: E402  (bench/ is on sys.path when run as a script)

PARAMS = dataclasses.replace(REGTEST, expiry_depth=36_000, halving_interval=10**9)
FEE = 2_000
UPDATE_RESERVE = 50 * FEE          # kept in each name coin to pay for later updates
FANOUT = 1_500                     # registrations in flight per block (funding chains)


class Builder:
    def __init__(self, datadir: str, seed: int = 5):
        rng = random.Random(seed)
        self.secret = rng.randbytes(32)
        self.pub = pubkey_from_secret(self.secret)
        self.addr = hash160(self.pub)
        self.chain = open_chain(PARAMS, datadir)
        self.now = int(time.time())
        self.connect_time = 0.0
        self.name_ops = 0

    def sign(self, tx: Tx, spent: list[tuple[int, bytes]]) -> Tx:
        return sign_tx(tx, spent, [self.secret] * len(spent), [self.pub] * len(spent))

    def block(self, txs: list[Tx], fees: int) -> Block:
        self.now += 1
        t = assemble(self.chain, txs, fees, self.addr, self.now)
        block = Block(solve_quick(t.block.header, t.target), t.block.txs)
        t0 = time.perf_counter()
        assert self.chain.process_block(block) == "active"
        self.connect_time += time.perf_counter() - t0
        return block


def name_of(i: int) -> bytes:
    return b"d/name%07d" % i


def build(b: Builder, n_names: int) -> list[tuple[bytes, bytes, int, int]]:
    """Registers n_names names; returns [(name, txid, vout, value)] of their coins."""
    per_name = PARAMS.name_lock + UPDATE_RESERVE + registration_burn(name_of(0), 0, PARAMS) + 3 * FEE
    per_chain = -(-n_names // FANOUT) * per_name + FEE
    per = (50 * COIN - 10 * FEE) // per_chain        # funding chains one coinbase can start
    assert per >= 1, "a funding chain needs more than one coinbase: raise FANOUT"
    n_cb = -(-FANOUT // per)
    coinbases = []
    for _ in range(PARAMS.coinbase_maturity + n_cb):
        blk = b.block([], 0)
        coinbases.append((blk.txs[0].txid, blk.txs[0].outputs[0].value))
    # fan mature coinbases out into FANOUT funding chains
    fan_txs, funding = [], []
    for cb_txid, cb_value in coinbases[:n_cb]:
        each = (cb_value - FEE) // per
        tx = b.sign(Tx(1, (TxIn(cb_txid, 0),), tuple(TxOut(each, b.addr) for _ in range(per)), 0),
                    [(cb_value, b.addr)])
        fan_txs.append(tx)
        funding += [(tx.txid, i, each) for i in range(per)]
    b.block(fan_txs, FEE * len(fan_txs))
    funding = funding[:FANOUT]
    assert min(v for _, _, v in funding) > per_chain, "funding chains too small"
    waiting: list[list] = []          # per block: [(name, rand, new_txid, value)]
    coins_out = []
    next_name = 0
    t0 = time.perf_counter()
    last_print = 0.0
    while len(coins_out) < n_names:
        txs, fees = [], 0
        # firstupdates for the name_news mined min_firstupdate_depth blocks ago
        if len(waiting) >= PARAMS.min_firstupdate_depth:
            for name, rand, new_txid, value in waiting.pop(0):
                burn = registration_burn(name, b.chain.height + 1, PARAMS)
                lock = value - burn - FEE
                outs = [TxOut(lock, b.addr, Covenant(NAME_FIRSTUPDATE, (name, rand, b'{"ip":"10.1.2.3"}')))]
                if burn:
                    outs.append(TxOut(burn, BURN_ADDRESS, Covenant(BURN)))
                tx = b.sign(Tx(1, (TxIn(new_txid, 0),), tuple(outs), 0), [(value, b.addr)])
                txs.append(tx)
                fees += FEE
                coins_out.append((name, tx.txid, 0, lock))
        # new name_news, each funded by one funding chain whose change continues it
        batch, new_funding = [], []
        for txid, idx, value in funding:
            if next_name >= n_names:
                break
            name = name_of(next_name)
            next_name += 1
            rand = random.Random(next_name).randbytes(20)
            locked = PARAMS.name_lock + UPDATE_RESERVE + registration_burn(name, 0, PARAMS) + FEE
            change = value - locked - FEE
            tx = b.sign(Tx(1, (TxIn(txid, idx),),
                           (TxOut(locked, b.addr, Covenant(NAME_NEW, (commitment(rand, name),))),
                            TxOut(change, b.addr)), 0), [(value, b.addr)])
            txs.append(tx)
            fees += FEE
            batch.append((name, rand, tx.txid, locked))
            new_funding.append((tx.txid, 1, change))
        funding = new_funding + funding[len(new_funding):]
        waiting.append(batch)
        b.block(txs, fees)
        b.name_ops += len(txs)
        now = time.perf_counter()
        if now - last_print > 5:
            last_print = now
            print(f"\r  height {b.chain.height}  names {len(coins_out):,}/{n_names:,}  "
                  f"{b.name_ops / b.connect_time:,.0f} name ops/s connected  "
                  f"({now - t0:.0f}s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return coins_out


def update_blocks(b: Builder, n_names: int, n_blocks: int, per_block: int, rng) -> tuple[int, float]:
    """Blocks of NAME_UPDATEs on random registered names (their current coins read from the
    chain); returns (ops, seconds spent connecting)."""
    before_t, ops = b.connect_time, 0
    chain = b.chain
    for _ in range(n_blocks):
        txs = []
        for i in rng.sample(range(n_names), per_block):
            rec = chain.names.get(name_of(i))
            coin = chain.get_coin(rec.txid, rec.vout)
            tx = b.sign(Tx(1, (TxIn(rec.txid, rec.vout),),
                           (TxOut(coin.value - FEE, b.addr, Covenant(NAME_UPDATE, (rec.name, b'{"ip":"10.9.9.9"}'))),), 0),
                        [(coin.value, b.addr)])
            txs.append(tx)
        b.block(txs, FEE * len(txs))
        ops += len(txs)
    return ops, b.connect_time - before_t


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def inprocess_name_show(chain, names: list[bytes]) -> list[float]:
    from node.rpc.name_methods import name_show

    class N:
        params = PARAMS
        p2p = None
        name_encoding = value_encoding = "ascii"       # the node's defaults
        allow_expired = False
    node = N()
    node.chain = chain
    lat = []
    for name in names:
        t0 = time.perf_counter()
        name_show(node, name.decode())
        lat.append(time.perf_counter() - t0)
    return lat


def serve(datadir: str, port: int, ready) -> None:
    import asyncio
    import logging
    logging.basicConfig(level=logging.WARNING)
    from node.service import Node

    async def run():
        node = Node(PARAMS, datadir, rpc_port=port)
        await node.start()
        ready.set()
        await node.stopping.wait()
    asyncio.run(run())


def rpc_name_show(datadir: str, names: list[bytes]) -> tuple[list[float], float, int]:
    """One keep-alive HTTP connection, calls one after another; returns latencies, calls/s
    and the serving process's peak RSS (KB)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=serve, args=(datadir, port, ready))
    proc.start()
    try:
        assert ready.wait(120), "node did not start"
        with open(os.path.join(datadir, ".cookie")) as f:
            auth = "Basic " + base64.b64encode(f.read().encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        def one_pass() -> tuple[list[float], float]:
            lat = []
            t_all = time.perf_counter()
            for i, name in enumerate(names):
                body = json.dumps({"method": "name_show", "params": [name.decode()], "id": i})
                t0 = time.perf_counter()
                conn.request("POST", "/", body, headers)
                r = conn.getresponse()
                data = r.read()
                lat.append(time.perf_counter() - t0)
                assert r.status == 200 and b'"error":null' in data.replace(b" ", b""), data[:200]
            return lat, len(names) / (time.perf_counter() - t_all)
        # The first pass reads the names' LevelDB blocks from disk (cold); the second is the
        # steady state of a node whose working set is cached. Both are reported.
        _, cold = one_pass()
        lat, rate = one_pass()
        conn.close()
        with open(f"/proc/{proc.pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
        return lat, rate, rss, cold
    finally:
        proc.terminate()
        proc.join(30)


def du(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=1_000_000)
    ap.add_argument("--datadir", help="where to build (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the data dir afterwards")
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--reuse", action="store_true",
                    help="measure on a chain this script built before in --datadir (kept with --keep)")
    args = ap.parse_args()
    datadir = args.datadir or tempfile.mkdtemp(prefix="dotbit-names-")
    rng = random.Random(11)
    try:
        b = Builder(datadir)
        t0 = time.perf_counter()
        if args.reuse:
            b.now = max(b.now, b.chain.tip.header.time)
            reg_rate = float("nan")
        else:
            build(b, args.names)
            reg_rate = b.name_ops / b.connect_time
        build_s = time.perf_counter() - t0
        upd_ops, upd_s = update_blocks(b, args.names, 5, 3000, rng)
        chain = b.chain
        sample = [name_of(rng.randrange(args.names)) for _ in range(args.samples)]
        lat_in = inprocess_name_show(chain, sample)
        root = chain.tip.header.name_root
        proofs = [(tree_key(n), chain.names.prove(root, n).to_bytes()) for n in sample[:5000]]
        absent = [chain.names.prove(root, b"d/absent%d" % i).to_bytes() for i in range(2000)]
        vt = []
        for key, raw in proofs:
            t1 = time.perf_counter()
            assert verify_proof(root, key, raw) is not None
            vt.append(time.perf_counter() - t1)
        build_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        height = chain.height
        chain.db.close()
        lat_rpc, rpc_rate, node_rss, rpc_cold = rpc_name_show(datadir, sample[:5000])
        size = du(os.path.join(datadir, "chain"))
        sizes = [len(r) for _, r in proofs]
        print(f"names registered:            {args.names:,} in {height} blocks"
              + (" (built earlier)" if args.reuse else f" ({build_s:.0f}s to build)"))
        if not args.reuse:
            print(f"registration ops connected:  {reg_rate:,.0f} name ops/s (NAME_NEW+FIRSTUPDATE, full validation + tree)")
        print(f"update ops connected:        {upd_ops / upd_s:,.0f} name ops/s at {args.names:,} names (target >= 2,000)")
        print(f"name_show in-process:        p50 {pct(lat_in, .5) * 1e6:.0f} us, p99 {pct(lat_in, .99) * 1e6:.0f} us (target p99 <= 1 ms)")
        print(f"name_show over JSON-RPC:     {rpc_rate:,.0f} calls/s on one connection, p50 {pct(lat_rpc, .5) * 1e3:.2f} ms, "
              f"p99 {pct(lat_rpc, .99) * 1e3:.2f} ms, warm (target >= 2,000/s); "
              f"first pass over cold pages {rpc_cold:,.0f} calls/s")
        print(f"proof size:                  presence median {statistics.median(sizes)} B, max {max(sizes)} B; "
              f"absence median {statistics.median(len(a) for a in absent)} B (target <= 1.2 KB)")
        print(f"proof verification:          median {statistics.median(vt) * 1e6:.0f} us, p99 {pct(vt, .99) * 1e6:.0f} us (target <= 0.2 ms)")
        print(f"DB size on disk:             {size / 2**20:,.0f} MiB")
        n = f"{args.names:,} names"
        figure("registration_ops", reg_rate, "ops/s", f"NAME_NEW + FIRSTUPDATE connected, incl. tree ({n})", ">= 2,000")
        figure("update_ops", upd_ops / upd_s, "ops/s", f"NAME_UPDATE connected ({n})", ">= 2,000")
        figure("show_p99", pct(lat_in, .99) * 1e6, "us", f"name_show in-process, p99 ({n})", "<= 1 ms")
        figure("rpc_rate", rpc_rate, "calls/s", f"name_show over JSON-RPC, one keep-alive connection, warm ({n})",
               ">= 2,000")
        figure("rpc_p99", pct(lat_rpc, .99) * 1e3, "ms", "same, p99")
        figure("proof_size", statistics.median(sizes), "B", f"presence proof, median ({n})", "<= 1.2 KB")
        figure("proof_max", max(sizes), "B", "presence proof, max")
        figure("proof_verify_p99", pct(vt, .99) * 1e6, "us", "proof verification, p99", "<= 0.2 ms")
        figure("db_size", size / 2**20, "MiB", "DB size on disk")
        figure("node_rss", node_rss / 1024, "MiB", "serving node peak RSS", "<= 1 GB")
        print(f"peak RSS:                    builder {build_rss / 1024:,.0f} MiB, serving node {node_rss / 1024:,.0f} MiB (target <= 1 GB)")
    finally:
        if not args.keep and not args.datadir:
            shutil.rmtree(datadir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
