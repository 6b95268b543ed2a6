"""Building signed name transactions in tests."""
from __future__ import annotations

from core.consensus import COIN
from core.primitives import Tx, TxIn, TxOut
from core.signing import sign_tx
from core.names.ops import firstupdate_outputs, name_new_output, update_output
from core.names.rules import registration_burn

LOCK = COIN // 100
FEE = 100_000


class Funds:
    """A key's spendable coins, handed out one per transaction (change comes back)."""

    def __init__(self, key, coins: list[tuple[bytes, int, int]]):
        self.key = key
        self.coins = list(coins)       # (txid, index, value)

    @staticmethod
    def coinbases(chain, key, heights) -> "Funds":
        out = []
        for h in heights:
            cb = chain.get_block(chain.entry_at(h).hash).txs[0]
            out.append((cb.txid, 0, cb.outputs[0].value))
        return Funds(key, out)

    def take(self):
        return self.coins.pop(0)


def build(funds: Funds, outputs: list[TxOut], name_in=None, name_key=None) -> Tx:
    """name_in: (txid, index, value, address) of a name coin, owned by name_key."""
    txid, idx, value = funds.take()
    key = funds.key
    ins = [TxIn(txid, idx)]
    spent = [(value, key.address)]
    keys = [key]
    total = value
    if name_in is not None:
        ins.insert(0, TxIn(name_in[0], name_in[1]))
        spent.insert(0, (name_in[2], name_in[3]))
        keys.insert(0, name_key)
        total += name_in[2]
    change = total - sum(o.value for o in outputs) - FEE
    tx = Tx(1, tuple(ins), tuple(outputs) + (TxOut(change, key.address),), 0)
    tx = sign_tx(tx, spent, [k.secret for k in keys], [k.pubkey for k in keys])
    funds.coins.append((tx.txid, len(tx.outputs) - 1, change))
    return tx


def name_new(funds, name: bytes, rand: bytes, owner=None) -> Tx:
    owner = owner or funds.key
    return build(funds, [name_new_output(name, rand, owner.address, LOCK)])


def firstupdate(funds, new_tx: Tx, name: bytes, rand: bytes, value: bytes, params, height: int,
                owner=None, burn=None) -> Tx:
    owner = owner or funds.key
    burn = registration_burn(name, height, params) if burn is None else burn
    return build(funds, firstupdate_outputs(name, rand, value, owner.address, LOCK, burn),
                 name_in=(new_tx.txid, 0, LOCK, owner.address), name_key=owner)


def update(funds, prev_tx: Tx, prev_vout: int, name: bytes, value: bytes, owner, to=None) -> Tx:
    to = to or owner
    return build(funds, [update_output(name, value, to.address, LOCK)],
                 name_in=(prev_tx.txid, prev_vout, LOCK, owner.address), name_key=owner)
