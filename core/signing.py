"""Signing transactions: shared by the wallet, tests and benchmarks (consensus only verifies)."""
from __future__ import annotations

from dataclasses import replace

from core.crypto import sighash, sign_digest
from core.primitives import Tx, TxIn


def sign_tx(tx: Tx, spent: list[tuple[int, bytes]], secrets: list[bytes], pubkeys: list[bytes]) -> Tx:
    """Fills every input's witness. `spent[i]` is (value, address) of the coin input i spends;
    `secrets[i]`/`pubkeys[i]` the key that owns it. The txid does not cover witnesses, so it
    is the same before and after signing."""
    unsigned = Tx(tx.version, tuple(TxIn(i.prev_txid, i.prev_index, bytes(64), bytes(33)) for i in tx.inputs),
                  tx.outputs, tx.locktime)
    txid = unsigned.txid
    ins = []
    for n, (txin, (value, address)) in enumerate(zip(tx.inputs, spent)):
        sig = sign_digest(secrets[n], sighash(txid, n, value, address))
        ins.append(replace(txin, sig=sig, pubkey=pubkeys[n]))
    return Tx(tx.version, tuple(ins), tx.outputs, tx.locktime)
