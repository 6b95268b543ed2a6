"""Namecoin's registration done by hand, in its two steps: name_new (commit to a name with a
salt) and name_firstupdate (reveal name, salt and value once the commitment is deep enough).
`names.register` chains the same two steps by itself; these are for callers that drive each
step, as scripts written for namecoind do through the wallet RPC.

The salt is what `names.register` uses too, HKDF of the name_new key (names.registration_salt),
so a name_new made here is also found and continued by `register` after a restore.
"""
from __future__ import annotations

from core.names.ops import firstupdate_outputs, name_new_output
from core.names.rules import RAND_LEN, commitment, registration_burn

from wallet import names as N
from wallet.errors import WalletError
from wallet.keys import NAMES


class StepError(WalletError):
    """A refusal with the reason a namecoind caller expects to tell apart (`kind`)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def name_new(w, name: str, fee_rate: int, to: bytes | None = None) -> tuple[str, str]:
    """Sends a NAME_NEW committing to `name`; returns (txid, rand hex) for name_firstupdate."""
    nb = N.name_bytes(name)
    key = w.fresh_key(NAMES)
    rand = N.registration_salt(key.secret, nb)
    tx, _ = w.build([name_new_output(nb, rand, to or key.address, w.params.name_lock)], fee_rate)
    w.save()
    return w.broadcast(tx), rand.hex()


def name_firstupdate(w, name: str, rand: bytes, new_txid: bytes, value: bytes, fee_rate: int,
                     to: bytes | None = None, check_active: bool = True) -> str:
    """Spends this wallet's NAME_NEW `new_txid` into the name's first record."""
    nb = N.name_bytes(name)
    if len(rand) != RAND_LEN:
        raise StepError("invalid", f"rand must be {RAND_LEN} bytes")
    if any(op["op"] == "name_firstupdate" for op in N.pending_ops(w, name)):
        raise StepError("registering", "this name is already being registered")
    rec = N.show(w, name)
    if check_active and rec is not None and not rec["expired"]:
        raise StepError("active", "this name is already active")
    coin = next((c for c in w.coins if c.txid == new_txid and c.kind == "name_new"), None)
    if coin is None:
        raise StepError("not_mine", "Not found pre-selected input: no name_new of this wallet in that tx")
    if commitment(rand, nb).hex() != coin.covenant.get("commitment"):
        raise StepError("rand", "rand value is wrong")
    dest = to if to is not None else w.fresh_key(NAMES).address
    burn = registration_burn(nb, w.tip + 1, w.params)
    tx, _ = w.build(firstupdate_outputs(nb, rand, value, dest, coin.value, burn), fee_rate, fixed=[coin])
    w.save()
    txid = w.broadcast(tx)
    if w.owns(dest) is not None:
        w.doc["values"][name] = value.hex()      # what `name renew` will sign again
    w.save()
    return txid
