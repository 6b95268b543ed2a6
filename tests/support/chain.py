"""Chain-building helpers shared by unit tests, functional tests and bench/crash.py: a
deterministic key, a controllable clock, and a block maker that mines on a ChainState."""
from __future__ import annotations

import random
from dataclasses import dataclass

from core.consensus import COIN
from core.crypto import encode_address, hash160, pubkey_from_secret
from core.params import REGTEST
from core.primitives import Tx, TxIn, TxOut
from core.signing import sign_tx
from node.mining.miner import solve_quick
from node.mining.template import create_template


@dataclass(frozen=True)
class Key:
    secret: bytes
    pubkey: bytes
    address: bytes

    @staticmethod
    def from_seed(seed: int) -> "Key":
        secret = random.Random(seed).randbytes(32)
        pub = pubkey_from_secret(secret)
        return Key(secret, pub, hash160(pub))

    def addr_text(self, params=REGTEST) -> str:
        return encode_address(params.address_version, self.address)


class Clock:
    """A controllable clock: block times advance by one spacing per mined block."""

    def __init__(self, start: int):
        self.now = start

    def __call__(self) -> float:
        return self.now


def make_block(chain, mempool, address: bytes, clock=None, extra_txs=(), time_offset=0):
    """Build and solve the next block on chain's tip (not submitted): the mempool's choice, or
    exactly `extra_txs` (fees left unclaimed) when given."""
    from core.primitives import Block
    from node.mining.template import assemble
    now = int(clock()) if clock else int(chain.tip.header.time) + 600
    if extra_txs:
        t = assemble(chain, list(extra_txs), 0, address, now + time_offset)
    else:
        t = create_template(chain, mempool, address, now + time_offset)
    return Block(solve_quick(t.block.header, t.target), t.block.txs)


def mine(chain, mempool, address: bytes, n: int = 1, clock=None):
    blocks = []
    for _ in range(n):
        if clock is not None:
            clock.now += 600
        b = make_block(chain, mempool, address, clock)
        assert chain.process_block(b) == "active"
        blocks.append(b)
    return blocks


def spend(chain_or_pool, key: Key, outpoints, outputs, fee=1000) -> Tx:
    """A signed payment spending `outpoints` (all owned by key) to [(address, value)];
    the change after `fee` goes back to key."""
    coins = [chain_or_pool.get_coin(*op) if hasattr(chain_or_pool, "get_coin") else chain_or_pool.coin(*op)
             for op in outpoints]
    assert all(coins), "spend(): a coin is missing"
    total = sum(c.value for c in coins)
    outs = [TxOut(v, a) for a, v in outputs]
    change = total - sum(v for _, v in outputs) - fee
    if change > 0:
        outs.append(TxOut(change, key.address))
    tx = Tx(1, tuple(TxIn(t, i) for t, i in outpoints), tuple(outs), 0)
    n = len(outpoints)
    return sign_tx(tx, [(c.value, c.address) for c in coins], [key.secret] * n, [key.pubkey] * n)


__all__ = ["Key", "Clock", "make_block", "mine", "spend", "COIN"]
