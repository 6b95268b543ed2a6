"""Build a synthetic regtest chain into a node data dir, for this and later benchmarks.

Default: 2,000 blocks carrying 100,000 one-input two-output payments between 16 keys, every
block fully validated as it is connected (the same path as a running node). Afterwards
`dotbit-node --regtest --datadir DIR reindex` re-validates it, and bench/validate.py and
bench/sync.py replay it.

    python bench/make_chain.py --datadir /tmp/bench-chain [--blocks 2000] [--txs 100000] [--auxpow]

--auxpow merge-mines every block from the activation height on (an AuxPoW whose coinbase
branch is 11 deep, as under a real Bitcoin block), for the sync benchmark's AuxPoW figures.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import deque

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from core.crypto import hash160, pubkey_from_secret  # noqa: E402
from core.primitives import Block, Tx, TxIn, TxOut  # noqa: E402
from core.signing import sign_tx  # noqa: E402
from node.mining.auxbuild import aux_header, single_chain_auxpow  # noqa: E402
from node.mining.miner import solve_quick  # noqa: E402
from node.mining.template import assemble  # noqa: E402
from core.params import REGTEST  # noqa: E402
from node.service import open_chain  # noqa: E402
from figures import figure  # noqa: E402  (bench/ is on sys.path when run as a script)

FEE = 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datadir", required=True)
    ap.add_argument("--blocks", type=int, default=2000)
    ap.add_argument("--txs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--auxpow", action="store_true", help="merge-mine from the activation height on")
    args = ap.parse_args()
    if os.path.exists(os.path.join(args.datadir, "chain")):
        print(f"{args.datadir} already holds a chain; use an empty directory", file=sys.stderr)
        return 1
    rng = random.Random(args.seed)
    keys = []
    for _ in range(16):
        secret = rng.randbytes(32)
        pub = pubkey_from_secret(secret)
        keys.append((secret, pub, hash160(pub)))
    chain = open_chain(REGTEST, args.datadir)
    maturity = REGTEST.coinbase_maturity
    spendable: deque = deque()        # (txid, index, value, key_index, height_created)
    pending_cb: deque = deque()       # coinbases waiting to mature
    made = 0
    t0 = time.perf_counter()
    now = int(time.time())
    for height in range(1, args.blocks + 1):
        while pending_cb and height - pending_cb[0][4] >= maturity:
            spendable.append(pending_cb.popleft())
        txs = []
        fresh = []
        blocks_left = args.blocks - height + 1
        want = -(-(args.txs - made) // blocks_left) if height > maturity else 0
        while len(txs) < want and spendable:
            txid, idx, value, k, _ = spendable.popleft()
            secret, pub, addr = keys[k]
            dest = rng.randrange(16)
            amount = value // 2
            change = value - amount - FEE
            tx = Tx(1, (TxIn(txid, idx),), (TxOut(amount, keys[dest][2]), TxOut(change, addr)), 0)
            tx = sign_tx(tx, [(value, addr)], [secret], [pub])
            txs.append(tx)
            fresh.append((tx.txid, 0, amount, dest, height))
            fresh.append((tx.txid, 1, change, k, height))
        made += len(txs)
        miner_key = height % 16
        tmpl = assemble(chain, txs, FEE * len(txs), keys[miner_key][2], now)
        if args.auxpow and height >= REGTEST.auxpow_height:
            header = aux_header(tmpl.block.header, REGTEST.auxpow_chain_id)
            block = Block(single_chain_auxpow(header, REGTEST.auxpow_chain_id, tmpl.target, branch_depth=11),
                          tmpl.block.txs)
        else:
            block = Block(solve_quick(tmpl.block.header, tmpl.target), tmpl.block.txs)
        chain.process_block(block)
        cb = block.txs[0]
        pending_cb.append((cb.txid, 0, cb.outputs[0].value, miner_key, height))
        spendable.extend(f for f in fresh if f[2] > 10 * FEE)
        if height % 100 == 0 or height == args.blocks:
            rate = height / (time.perf_counter() - t0)
            print(f"\rheight {height}/{args.blocks}  txs {made}  ({rate:.0f} blocks/s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    figure("build_s", time.perf_counter() - t0, "s", f"build {args.blocks:,} blocks / {made:,} payments (sign + connect)")
    print(f"built {args.blocks} blocks with {made} payments in {time.perf_counter() - t0:.1f}s; "
          f"tip {chain.tip.hash.hex()}")
    chain.db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
