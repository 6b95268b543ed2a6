"""Name rules (DESIGN §3), pure: the verdict on a transaction's name operation given the coins
it spends, the height it would be mined at, the parameters, and a lookup of current records.
No I/O, no clock. A name's phase (active / expired) is derived from heights, never stored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from core.consensus import BURN
from core.crypto import hash160, sha256
from core.encoding import pack
from core.errors import ValidationError
from core.primitives import NAME_FIRSTUPDATE, NAME_NEW, NAME_UPDATE, Tx

MAX_NAME = 255
MAX_VALUE = 1023
WALLET_MAX_VALUE = 520          # what the wallet and RPC accept (Namecoin's relay limit)
RAND_LEN = 20
NAME_COVENANTS = (NAME_NEW, NAME_FIRSTUPDATE, NAME_UPDATE)


@dataclass(frozen=True, slots=True)
class NameRecord:
    """A name's current state; its canonical form is what the name tree commits to."""
    name: bytes
    value: bytes
    address: bytes
    height: int          # height of the last FIRSTUPDATE/UPDATE
    txid: bytes
    vout: int

    def to_obj(self) -> list:
        return [self.name, self.value, self.address, self.height, self.txid, self.vout]

    def to_bytes(self) -> bytes:
        return pack(self.to_obj())

    @property
    def leaf_hash(self) -> bytes:
        return record_hash(self.to_bytes())

    @staticmethod
    def from_obj(o) -> "NameRecord":
        return NameRecord(o[0], o[1], o[2], o[3], o[4], o[5])


def record_hash(canonical_record: bytes) -> bytes:
    return sha256(b"dotbit/name-record" + canonical_record)


def tree_key(name: bytes) -> bytes:
    return sha256(name)


def commitment(rand: bytes, name: bytes) -> bytes:
    return hash160(rand + name)


def expiry_height(record_height: int, params) -> int:
    """First height at which a name last updated at record_height is expired."""
    return record_height + params.expiry_depth


def is_expired(record: NameRecord, height: int, params) -> bool:
    return height >= expiry_height(record.height, params)


def expires_in(record: NameRecord, tip_height: int, params) -> int:
    return expiry_height(record.height, params) - tip_height


def registration_burn(name: bytes, height: int, params) -> int:
    """Coins a FIRSTUPDATE must burn: short names cost more. Length counts the part after the
    namespace prefix ("d/"), since that is what people compete for."""
    label = name.split(b"/", 1)[1] if b"/" in name else name
    table = params.burn_table
    return table[min(max(len(label), 1), len(table)) - 1]


@dataclass(frozen=True, slots=True)
class NameOp:
    kind: int                   # NAME_NEW, NAME_FIRSTUPDATE or NAME_UPDATE
    name: bytes | None          # None for NAME_NEW
    record: NameRecord | None   # the new record for FIRSTUPDATE/UPDATE
    commitment: bytes | None = None


def check_name_tx(tx: Tx, coins: list, height: int, params,
                  lookup: Callable[[bytes], NameRecord | None]) -> NameOp | None:
    """The name operation of a transaction that is otherwise valid, or None for a plain one.
    `coins[i]` is the coin input i spends; `lookup(name)` the name's record before this tx."""
    name_ins = [(i, c) for i, c in enumerate(coins) if c.covenant.type in NAME_COVENANTS]
    name_outs = [(i, o) for i, o in enumerate(tx.outputs) if o.covenant.type in NAME_COVENANTS]
    if len(name_ins) > 1:
        raise ValidationError("tx-multiple-name-inputs", 100)
    if len(name_outs) > 1:
        raise ValidationError("tx-multiple-name-outputs", 100)
    if not name_outs:
        if name_ins:
            raise ValidationError("tx-name-input-without-output", 100)
        return None
    vout, out = name_outs[0]
    if out.value < params.name_lock:
        raise ValidationError("tx-name-lock-too-small", 100, f"name outputs lock at least {params.name_lock}")
    cov = out.covenant
    prev = name_ins[0] if name_ins else None

    if cov.type == NAME_NEW:
        if len(cov.items) != 1 or len(cov.items[0]) != 20:
            raise ValidationError("tx-namenew-bad-commitment", 100)
        if prev is not None:
            raise ValidationError("tx-namenew-with-name-input", 100)
        return NameOp(NAME_NEW, None, None, cov.items[0])

    if cov.type == NAME_FIRSTUPDATE:
        return _check_firstupdate(tx, vout, prev, height, params, lookup)
    return _check_update(tx, vout, prev, height, params, lookup)


def _check_firstupdate(tx: Tx, vout: int, prev, height: int, params, lookup) -> NameOp:
    """`vout`: the name output; `prev`: (input index, coin) of the name input, or None."""
    out = tx.outputs[vout]
    cov = out.covenant
    if len(cov.items) != 3:
        raise ValidationError("tx-firstupdate-bad-shape", 100)
    name, rand, value = cov.items
    _check_name_value(name, value)
    if len(rand) != RAND_LEN:
        raise ValidationError("tx-firstupdate-bad-rand", 100, "rand must be 20 bytes")
    if prev is None or prev[1].covenant.type != NAME_NEW:
        raise ValidationError("tx-firstupdate-missing-namenew", 100)
    if prev[1].covenant.items[0] != commitment(rand, name):
        raise ValidationError("tx-firstupdate-commitment-mismatch", 100)
    if height - prev[1].height < params.min_firstupdate_depth:
        # Not ban-worthy: it becomes valid a few blocks later.
        raise ValidationError("tx-firstupdate-immature", 0,
                              f"name_new must be {params.min_firstupdate_depth} blocks deep")
    current = lookup(name)
    if current is not None and not is_expired(current, height, params):
        raise ValidationError("tx-firstupdate-name-exists", 0, "name is registered and not expired")
    burned = sum(o.value for o in tx.outputs if o.covenant.type == BURN)
    if burned < registration_burn(name, height, params):
        raise ValidationError("tx-firstupdate-burn-too-small", 100,
                              f"must burn {registration_burn(name, height, params)}")
    return NameOp(NAME_FIRSTUPDATE, name, NameRecord(name, value, out.address, height, tx.txid, vout))


def _check_update(tx: Tx, vout: int, prev, height: int, params, lookup) -> NameOp:
    out = tx.outputs[vout]
    cov = out.covenant
    if len(cov.items) != 2:
        raise ValidationError("tx-nameupdate-bad-shape", 100)
    name, value = cov.items
    _check_name_value(name, value)
    if prev is None or prev[1].covenant.type not in (NAME_FIRSTUPDATE, NAME_UPDATE):
        raise ValidationError("tx-nameupdate-missing-input", 100)
    if prev[1].covenant.items[0] != name:
        raise ValidationError("tx-nameupdate-name-mismatch", 100)
    current = lookup(name)
    txin = tx.inputs[prev[0]]
    if current is None or (current.txid, current.vout) != txin.outpoint:
        raise ValidationError("tx-nameupdate-not-current", 100, "input is not the name's current coin")
    if is_expired(current, height, params):
        raise ValidationError("tx-nameupdate-expired", 0)
    return NameOp(NAME_UPDATE, name, NameRecord(name, value, out.address, height, tx.txid, vout))


def _check_name_value(name: bytes, value: bytes) -> None:
    if not name:
        raise ValidationError("tx-name-empty", 100)
    if len(name) > MAX_NAME:
        raise ValidationError("tx-name-too-long", 100, f"names are at most {MAX_NAME} bytes")
    if len(value) > MAX_VALUE:
        raise ValidationError("tx-value-too-long", 100, f"values are at most {MAX_VALUE} bytes")


def name_output(tx: Tx):
    """(vout, output) of the tx's name output, or None."""
    for i, o in enumerate(tx.outputs):
        if o.covenant.type in NAME_COVENANTS:
            return i, o
    return None
