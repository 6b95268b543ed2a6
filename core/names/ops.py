"""Building the outputs of name operations (used by the wallet, tests and benchmarks)."""
from __future__ import annotations

from core.consensus import BURN_ADDRESS
from core.primitives import BURN, NAME_FIRSTUPDATE, NAME_NEW, NAME_UPDATE, Covenant, TxOut

from core.names.rules import commitment


def name_new_output(name: bytes, rand: bytes, address: bytes, lock: int) -> TxOut:
    return TxOut(lock, address, Covenant(NAME_NEW, (commitment(rand, name),)))


def firstupdate_outputs(name: bytes, rand: bytes, value: bytes, address: bytes, lock: int,
                        burn: int) -> list[TxOut]:
    outs = [TxOut(lock, address, Covenant(NAME_FIRSTUPDATE, (name, rand, value)))]
    if burn:
        outs.append(TxOut(burn, BURN_ADDRESS, Covenant(BURN)))
    return outs


def update_output(name: bytes, value: bytes, address: bytes, lock: int) -> TxOut:
    return TxOut(lock, address, Covenant(NAME_UPDATE, (name, value)))
