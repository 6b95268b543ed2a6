"""Connect a bench/make_chain.py chain from scratch (full validation, LevelDB writes) and
print transactions/s and blocks/s, next to the raw libsecp256k1 verification rate measured in
the same run.

    python bench/validate.py --datadir /tmp/bench-chain [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from node.chain.chaindb import ChainDB  # noqa: E402
from node.chain.chainstate import ChainState  # noqa: E402
from core.crypto import sighash, verify_digest  # noqa: E402
from core.primitives import Block  # noqa: E402
from node.chain.storage import LevelDB  # noqa: E402
from core.params import REGTEST  # noqa: E402
from figures import figure  # noqa: E402  (bench/ is on sys.path when run as a script)


def load_blocks(datadir: str) -> list[bytes]:
    db = LevelDB(os.path.join(datadir, "chain"))
    try:
        return list(ChainDB(db).raw_main_chain())[1:]     # genesis is built in
    finally:
        db.close()


def raw_verify_rate(blocks: list[Block], n: int = 20_000) -> float:
    """Verifications/s of the bare libsecp256k1 call on real signatures from the chain."""
    samples = []
    coins = {}
    for b in blocks:
        for tx in b.txs:
            for i, o in enumerate(tx.outputs):
                coins[(tx.txid, i)] = o
            for k, txin in enumerate(tx.inputs):
                spent = coins.get(txin.outpoint)
                if spent is not None:
                    samples.append((txin.pubkey, txin.sig, sighash(tx.txid, k, spent.value, spent.address)))
            if len(samples) >= 2000:
                break
    if not samples:
        return 0.0
    work = (samples * (n // len(samples) + 1))[:n]
    t0 = time.perf_counter()
    for pub, sig, digest in work:
        verify_digest(pub, sig, digest)
    return n / (time.perf_counter() - t0)


def connect_all(raws: list[bytes]) -> tuple[float, int, int]:
    tmp = tempfile.mkdtemp(prefix="dotbit-validate-")
    try:
        chain = ChainState(LevelDB(os.path.join(tmp, "chain")), REGTEST)
        t0 = time.perf_counter()
        ntx = 0
        for raw in raws:
            block = Block.from_bytes(raw)      # decoding is part of the work a node does
            chain.process_block(block)
            ntx += len(block.txs) - 1
        elapsed = time.perf_counter() - t0
        assert chain.height == len(raws), "chain did not connect completely"
        chain.db.close()
        return elapsed, ntx, len(raws)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datadir", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    raws = load_blocks(args.datadir)
    blocks = [Block.from_bytes(r) for r in raws]
    tx_rates, block_rates, raw_rates = [], [], []
    for _ in range(args.repeat):
        raw_rates.append(raw_verify_rate(blocks))
        elapsed, ntx, nblocks = connect_all(raws)
        tx_rates.append(ntx / elapsed)
        block_rates.append(nblocks / elapsed)
        print(f"  run: {nblocks} blocks, {ntx} txs in {elapsed:.2f}s", file=sys.stderr)
    tx_rate, raw_rate = statistics.median(tx_rates), statistics.median(raw_rates)
    print(f"connect (full validation, LevelDB): {tx_rate:,.0f} tx/s, {statistics.median(block_rates):,.1f} blocks/s")
    print(f"raw libsecp256k1 verify:            {raw_rate:,.0f} verifications/s")
    print(f"ratio tx/s / raw verify/s:          {tx_rate / raw_rate:.1%}  (target >= 25%, and >= 5,000 tx/s)")
    figure("tx_rate", tx_rate, "tx/s", f"connect {len(raws):,} blocks from scratch (full validation, LevelDB)", ">= 5,000")
    figure("block_rate", statistics.median(block_rates), "blocks/s", "same, blocks")
    figure("raw_verify", raw_rate, "verify/s", "raw libsecp256k1 verifications, same run")
    figure("verify_ratio", 100 * tx_rate / raw_rate, "%", "connect rate as a share of raw verification", ">= 25 %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
