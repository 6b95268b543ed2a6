"""Name workflows: register (name_new, then firstupdate 12 blocks later), update, renew,
transfer, and the pending-registration state machine that any later command advances.

Crash safety. The registration salt is not random: rand = HKDF-SHA256(name_new key, name),
so the seed alone recovers it. A restored wallet that is asked to register NAME first looks
among its own unspent NAME_NEW coins for one whose commitment is HASH160(rand | NAME) and
continues from it, instead of paying for (and waiting on) a second name_new. Each tx is
written into the pending state before it is broadcast, and re-broadcast by later commands if
the node does not know it, so a crash between the two loses nothing.
"""
from __future__ import annotations

import hashlib
import hmac

from core.errors import ValidationError
from core.names.ops import firstupdate_outputs, name_new_output, update_output
from core.names.rules import RAND_LEN, commitment, registration_burn
from core.primitives import NAME_FIRSTUPDATE, NAME_UPDATE, Tx

from wallet.errors import WalletError
from wallet.keys import NAMES
from wallet.nodeclient import WALLET_ERROR, NodeError

SALT_TAG = b"dotbit/name-salt/v1"
IMMATURE = "tx-firstupdate-immature"     # the node's reason: the NAME_NEW is not deep enough
HEX = {"nameEncoding": "hex", "valueEncoding": "hex"}     # names and values on the wire: any bytes


class RegistrationOver(WalletError):
    """The registration cannot go on (name taken, tx dropped); anything else is retried."""


def registration_salt(secret: bytes, name: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) extract-then-expand; one block is enough for 20 bytes."""
    prk = hmac.new(SALT_TAG, secret, hashlib.sha256).digest()
    return hmac.new(prk, name + b"\x01", hashlib.sha256).digest()[:RAND_LEN]


def name_bytes(name: str) -> bytes:
    b = name.encode("utf-8", "surrogateescape")
    if not b or len(b) > 255:
        raise WalletError("names are 1..255 bytes")
    return b


def name_text(b: bytes) -> str:
    """The wallet's text for any name bytes. Consensus allows any bytes in a name, so bytes
    that are not UTF-8 become lone surrogates (PEP 383): name_bytes gives the same bytes
    back, and the wallet file's JSON keeps them (as \\udcXX escapes) without a format change."""
    return b.decode("utf-8", "surrogateescape")


def display(b: bytes) -> str:
    return b.decode("utf-8", "replace")


# --- reading names ---------------------------------------------------------------------------------

def show(w, name: str) -> dict | None:
    """The name's record (expired ones too), or None if it never existed. Name and value go
    over the wire as hex, so no byte of either is refused by, or lost to, a text encoding;
    `value` is for reading (UTF-8, undecodable bytes replaced), `value_hex` is exact."""
    try:
        rec = w.call("name_show", name_bytes(name).hex(), {"allowExpired": True, **HEX})
    except NodeError as e:
        if e.code == WALLET_ERROR:
            return None
        raise WalletError(f"name_show failed: {e}") from None
    value = bytes.fromhex(rec["value"])
    rec.pop("name_encoding", None)
    rec.pop("value_encoding", None)
    return rec | {"name": name, "value": display(value), "value_hex": value.hex()}


def pending_update(w, name: str) -> dict | None:
    """The name's operation waiting in the mempool, if any: what `name show` will say next."""
    ops = [op for op in pending_ops(w, name) if op["op"] == "name_update"]
    return ops[0] if ops else None


def owned_record(w, name: str) -> tuple[dict, object]:
    """The live record of a name this wallet owns, and the coin to spend; else the error a
    user should see."""
    rec = show(w, name)
    if rec is None:
        raise WalletError(f"unknown name: {name} was never registered")
    if rec["expired"]:
        raise WalletError(f"name expired: {name} expired at height {rec['height'] + w.params.expiry_depth}"
                          " (register it again with `name register`)")
    if w.owns(w.parse_address(rec["address"])) is None:
        raise WalletError(f"not your name: {name} belongs to {rec['address']}")
    coin = w.coin_at(bytes.fromhex(rec["txid"]), rec["vout"])
    if coin is None:
        raise WalletError(f"{name} has an operation waiting in the mempool; try again after the next block")
    return rec, coin


# --- register ----------------------------------------------------------------------------------------

def register(w, name: str, value: bytes, fee_rate: int) -> dict:
    nb = name_bytes(name)
    rec = show(w, name)
    if rec is not None and not rec["expired"]:
        if w.owns(w.parse_address(rec["address"])):
            raise WalletError(f"you already own {name} (use `name update`)")
        raise WalletError(f"name taken: {name} is registered (expires in {rec['expires_in']} blocks)")
    pending = w.doc["pending"]
    if name in pending:
        pending[name]["value"] = value.hex()
        w.save()
        return {"name": name, "state": pending[name]["state"], "txid": pending[name]["new_txid"],
                "resumed": True}
    for op in pending_ops(w, name):
        if op["op"] == "name_firstupdate":
            if w.owns(w.parse_address(op["address"])):
                raise WalletError(f"{name} is already being registered by this wallet "
                                  f"(firstupdate {op['txid']} waits for a block)")
            raise WalletError(f"name taken: a registration of {name} is waiting for a block")
    found = find_own_name_new(w, nb)
    if found is not None:
        coin, _ = found
        pending[name] = {"state": "new", "value": value.hex(), "key_index": coin.key.index,
                         "new_txid": coin.txid.hex(), "new_vout": coin.vout, "tx": None}
        w.save()
        return {"name": name, "state": "new", "txid": coin.txid.hex(), "resumed": True}
    key = w.fresh_key(NAMES)
    rand = registration_salt(key.secret, nb)
    out = name_new_output(nb, rand, key.address, w.params.name_lock)
    tx, fee = w.build([out], fee_rate)
    pending[name] = {"state": "new", "value": value.hex(), "key_index": key.index,
                     "new_txid": tx.txid.hex(), "new_vout": 0, "tx": tx.to_bytes().hex()}
    w.save()
    try:
        w.broadcast(tx)
    except WalletError:
        del pending[name]          # nothing was sent: leave no registration behind
        w.save()
        raise
    return {"name": name, "state": "new", "txid": tx.txid.hex(), "fee": fee, "resumed": False}


def pending_ops(w, name: str) -> list[dict]:
    try:
        ops = w.call("name_pending", name_bytes(name).hex(), HEX)
        return [op | {"name": name, "value": display(bytes.fromhex(op["value"]))} for op in ops]
    except NodeError as e:
        raise WalletError(f"name_pending failed: {e}") from None


def find_own_name_new(w, nb: bytes):
    """An unspent NAME_NEW of ours committing to this name (after a restore, say)."""
    for c in w.coins:
        if c.kind != "name_new" or c.key.chain != NAMES:
            continue
        rand = registration_salt(c.key.secret, nb)
        if commitment(rand, nb).hex() == c.covenant.get("commitment"):
            return c, rand
    return None


class _NotYet(Exception):
    """The node refused a FIRSTUPDATE only because its NAME_NEW is not deep enough (yet)."""


def _tx_status(w, txid: str, raw_hex: str | None) -> int | None:
    """Confirmations of a tx (0 = in the mempool), re-broadcasting it if the node lost it;
    None if it is gone and cannot be sent again; _NotYet if it must wait for more blocks."""
    try:
        info = w.call("getrawtransaction", txid, True)
        return info.get("confirmations", 0)
    except NodeError:
        pass
    if raw_hex is None:
        return None
    try:
        w.call("sendrawtransaction", raw_hex)
        return 0
    except NodeError as e:
        if IMMATURE in e.message:
            raise _NotYet() from None
        return None


def advance(w, fee_rate: int) -> list[dict]:
    """Moves every pending registration as far as the chain allows; returns what happened.
    Called at the start of every command that talks to a node."""
    events = []
    pending = w.doc["pending"]
    for name in list(pending):
        st = pending[name]
        try:
            ev = _advance_one(w, name, st, fee_rate)
        except RegistrationOver as e:
            ev = {"name": name, "event": "failed", "error": str(e)}
            del pending[name]
        except WalletError as e:          # e.g. no funds for the firstupdate yet: try again later
            ev = {"name": name, "event": "stuck", "error": str(e)}
        if ev is not None:
            events.append(ev)
        w.save()
    return events


def _advance_one(w, name: str, st: dict, fee_rate: int) -> dict | None:
    nb = name_bytes(name)
    need = w.params.min_firstupdate_depth
    if st["state"] == "new":
        conf = _tx_status(w, st["new_txid"], st.get("tx"))
        if conf is None:
            raise RegistrationOver(f"the name_new of {name} was dropped by the node; register again")
        st["confirmations"] = conf
        # A firstupdate in block tip+1 sees the name_new (mined at tip+1-conf) conf blocks deep.
        if conf < need:
            return {"name": name, "event": "waiting", "confirmations": conf, "needed": need}
        rec = show(w, name)
        if rec is not None and not rec["expired"]:
            raise RegistrationOver(f"name taken: {name} was registered by {rec['address']} first")
        coin = w.coin_at(bytes.fromhex(st["new_txid"]), st["new_vout"])
        if coin is None:
            raise RegistrationOver(f"the name_new coin of {name} is spent or missing")
        key = w.fresh_key(NAMES)
        rand = registration_salt(coin.key.secret, nb)
        burn = registration_burn(nb, w.tip + 1, w.params)
        outs = firstupdate_outputs(nb, rand, bytes.fromhex(st["value"]), key.address, coin.value, burn)
        tx, fee = w.build(outs, fee_rate, fixed=[coin])
        st.update(state="firstupdate", first_txid=tx.txid.hex(), tx=tx.to_bytes().hex())
        w.doc["values"][name] = st["value"]
        w.save()
        try:
            w.broadcast(tx)
        except WalletError as e:
            if IMMATURE in str(e):          # the chain moved back under us: wait again
                return _wait_again(name, st, need)
            raise RegistrationOver(str(e)) from None
        return {"name": name, "event": "firstupdate_sent", "txid": tx.txid.hex(), "fee": fee, "burn": burn}
    if st["state"] == "firstupdate":
        try:
            conf = _tx_status(w, st["first_txid"], st.get("tx"))
        except _NotYet:
            # A reorg re-mined the NAME_NEW later (or put it back in the pool): the node
            # dropped the FIRSTUPDATE. The commitment still stands; send a new one when due.
            return _wait_again(name, st, need)
        if conf is None:
            raise RegistrationOver(f"the firstupdate of {name} was rejected (name taken meanwhile?)")
        if conf >= 1:
            del w.doc["pending"][name]
            return {"name": name, "event": "registered", "txid": st["first_txid"]}
    return None


def _wait_again(name: str, st: dict, need: int) -> dict:
    """Back to waiting on the NAME_NEW (whose raw tx the node holds, in a block or the pool)."""
    st.update(state="new", tx=None, confirmations=0)
    st.pop("first_txid", None)
    return {"name": name, "event": "waiting", "confirmations": 0, "needed": need}


# --- update / renew / transfer ---------------------------------------------------------------------

def update(w, name: str, value: bytes | None, to_address: bytes | None, fee_rate: int) -> dict:
    """A NAME_UPDATE: new value (None keeps it: renew), new owner (None: a fresh key of ours)."""
    nb = name_bytes(name)
    rec, coin = owned_record(w, name)
    if value is None:           # renew/transfer keep the exact bytes, whatever they are
        value = kept_value(w, name, coin)
    to = to_address if to_address is not None else w.fresh_key(NAMES).address
    tx, fee = w.build([update_output(nb, value, to, coin.value)], fee_rate, fixed=[coin])
    w.broadcast(tx)
    if w.owns(to) is not None:
        w.doc["values"][name] = value.hex()
    else:
        w.doc["values"].pop(name, None)
    return {"name": name, "txid": tx.txid.hex(), "fee": fee, "address": w.text(to),
            "value": display(value)}


def warn_blocks(params) -> int:
    """How close to expiry a name is "expiring": a tenth of its life (5 blocks on regtest,
    ~25 days on main), time enough to notice and renew."""
    return max(5, params.expiry_depth // 10)


def renew_hint(name: str) -> str:
    return f"renew with `dotbit-wallet name renew {name}`"


def expiring_soon(w) -> list[tuple[str, int]]:
    """(name, blocks left) of this wallet's confirmed name coins close to expiry; from the
    coins alone (a coin's height is the name's last update), so every command can afford it."""
    out = []
    for c in w.coins:
        if c.kind in ("name_firstupdate", "name_update") and c.height >= 0:
            left = c.height + w.params.expiry_depth - w.tip
            if left <= warn_blocks(w.params):
                out.append((c.covenant.get("name"), left))
    return out


def kept_value(w, name: str, coin) -> bytes:
    """The value a renew or transfer signs again. Not the node's `name_show` (a lying node
    would choose what the owner signs) but the value inside the name coin being spent, read
    from that coin's own transaction and checked against its txid, which the signature
    commits to; and it must be what this wallet last set, else another copy of the wallet
    (or something else) changed it and the user says which value to sign with --value."""
    try:
        tx = Tx.from_bytes(bytes.fromhex(w.call("getrawtransaction", coin.txid.hex())))
    except (NodeError, ValueError, TypeError, ValidationError):
        raise WalletError(f"cannot read the transaction holding {name} from the node") from None
    out = tx.outputs[coin.vout] if tx.txid == coin.txid and coin.vout < len(tx.outputs) else None
    if out is None or out.covenant.type not in (NAME_FIRSTUPDATE, NAME_UPDATE) \
            or out.covenant.items[0] != name_bytes(name):
        raise WalletError(f"the node's transaction for {name} does not match its txid: refusing to sign")
    value = out.covenant.items[-1]
    own = w.doc["values"].get(name)
    if own is not None and bytes.fromhex(own) != value:
        raise WalletError(f"{name} holds {_shown(value)} but this wallet last set {_shown(bytes.fromhex(own))}: "
                          "set the value to sign with --value (`name update`, `renew`, `transfer`)")
    return value


def _shown(value: bytes, limit: int = 80) -> str:
    text = display(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")
