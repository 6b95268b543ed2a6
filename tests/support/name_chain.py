"""A regtest chain with many names, built fast and validated the normal way (NAME_NEW, the
firstupdate depth, FIRSTUPDATE, in blocks of PER_BLOCK): bench/resolver.py and bench/zone.py
serve it, and the zone tests transfer it in several messages."""
from __future__ import annotations

import json
import random
import sys
import time

from core.consensus import COIN
from core.crypto import hash160, pubkey_from_secret
from core.primitives import Block, Tx, TxIn, TxOut
from core.signing import sign_tx
from node.mining.miner import solve_quick
from node.mining.template import assemble
from core.names.ops import firstupdate_outputs, name_new_output
from core.names.rules import registration_burn
from core.params import REGTEST
from node.service import open_chain


FEE = 10_000
LOCK = COIN // 100
PER_BLOCK = 1500
FANOUT = 400
FAN_PER_BLOCK = 50        # fan-out txs (400 outputs each) per block: 100,000 names need 250, over a block's size


def ip_of(i: int) -> str:
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def build_chain(datadir: str, n: int, params=REGTEST) -> list[str]:
    """`params`: regtest by default; a bench that keeps more names alive than regtest's 30-block
    expiry allows (bench/secondary.py) passes regtest with a longer expiry, and serves the chain
    with the same parameters."""
    rng = random.Random(1)
    secret = rng.randbytes(32)
    pub = pubkey_from_secret(secret)
    addr = hash160(pub)
    chain = open_chain(params, datadir)
    now = int(time.time()) - 3600

    def mine(txs=()):
        tmpl = assemble(chain, list(txs), FEE * len(txs), addr, now)
        block = Block(solve_quick(tmpl.block.header, tmpl.target), tmpl.block.txs)
        chain.process_block(block)
        return block

    def signed(ins, outs, spent):
        tx = Tx(1, tuple(TxIn(t, i) for t, i in ins), tuple(outs), 0)
        return sign_tx(tx, spent, [secret] * len(ins), [pub] * len(ins))

    share = 12 * COIN // 100
    # Each coinbase is split into up to FANOUT coins of `share`; the subsidy halves as the chain
    # grows (every 150 blocks on regtest), so later coinbases fund fewer names.
    coinbases, capacity = [], 0
    while capacity < n:
        cb = mine().txs[0]
        k = min(FANOUT, (cb.outputs[0].value - FEE - 1) // share)
        if k < 1:
            raise RuntimeError(f"the subsidy at height {chain.height} no longer funds a name")
        coinbases.append((cb, k))
        capacity += k
    for _ in range(params.coinbase_maturity):
        mine()
    fan, coins = [], []
    for cb, k in coinbases:
        value = cb.outputs[0].value
        outs = [TxOut(share, addr)] * k
        tx = signed([(cb.txid, 0)], outs + [TxOut(value - share * k - FEE, addr)], [(value, addr)])
        fan.append(tx)
        coins += [(tx.txid, i) for i in range(k)]
    for k in range(0, len(fan), FAN_PER_BLOCK):
        mine(fan[k:k + FAN_PER_BLOCK])
    names = [f"name{i:05d}" for i in range(n)]
    news = []
    for i, label in enumerate(names):
        rand = rng.randbytes(20)
        tx = signed([coins[i]], [name_new_output(("d/" + label).encode(), rand, addr, LOCK),
                                 TxOut(share - LOCK - FEE, addr)], [(share, addr)])
        news.append((tx, rand))
    for k in range(0, n, PER_BLOCK):
        mine([t for t, _ in news[k:k + PER_BLOCK]])
    for _ in range(params.min_firstupdate_depth):
        mine()
    firsts = []
    height = chain.height + 1
    for i, (label, (new, rand)) in enumerate(zip(names, news)):
        name = ("d/" + label).encode()
        value = json.dumps({"ip": [ip_of(i)], "map": {"www": {"ip": [ip_of(i)]}}}).encode()
        burn = registration_burn(name, height + len(firsts) // PER_BLOCK, params)
        change = share - LOCK - FEE - burn - FEE
        outs = firstupdate_outputs(name, rand, value, addr, LOCK, burn) + [TxOut(change, addr)]
        firsts.append(signed([(new.txid, 0), (new.txid, 1)], outs, [(LOCK, addr), (share - LOCK - FEE, addr)]))
    for k in range(0, n, PER_BLOCK):
        mine(firsts[k:k + PER_BLOCK])
    height = chain.height
    chain.db.close()
    print(f"chain: {n} names registered, height {height}", file=sys.stderr)
    return names
