"""The wallet RPC methods, answering like Namecoin Core's wallet: same names, arguments,
result shapes and error codes. Each is a thin adapter over the function the CLI command
runs too (names, name_steps, coins), so the two front ends cannot drift apart; what is
here is argument checking, Namecoin's error codes, and result shapes.

A method gets the daemon's `svc` (wallet/daemon.py): `svc.wallet()` is the open wallet, synced
with the node and its pending registrations advanced, or RPCError -13 while it is locked.
"""
from __future__ import annotations

from decimal import Decimal

from core.names.rules import MAX_NAME, WALLET_MAX_VALUE

from wallet import coins as C
from wallet import name_steps as S
from wallet import names as N
from wallet.name_history import owned_names
from wallet.errors import WalletError
from wallet.keys import RECEIVE
from wallet.rpc_args import (INSUFFICIENT_FUNDS, INVALID_ADDRESS, INVALID_PARAMETER, TRANSACTION_ERROR,
                             VERIFY_REJECTED, WALLET_ERROR, RPCError, amount_arg, bool_arg, decode_arg, encode_out,
                             hex_arg, int_arg, options_arg, str_arg)
from wallet.txbuild import COIN
from wallet.wallet import NoFunds, Rejected

METHODS: dict = {}


def method(fn):
    """Registers fn(svc, *params) under its own name (namecoind's method names)."""
    METHODS[fn.__name__] = fn
    return fn


def _name(name, opts) -> str:
    nb = decode_arg(name, opts, "nameEncoding", "name")
    if len(nb) > MAX_NAME:
        raise RPCError(INVALID_PARAMETER, "the name is too long")
    if not nb:
        raise RPCError(INVALID_PARAMETER, "the name is empty")
    return N.name_text(nb)


def _value(value, opts) -> bytes:
    vb = decode_arg(value, opts, "valueEncoding", "value")
    if len(vb) > WALLET_MAX_VALUE:
        raise RPCError(INVALID_PARAMETER, "the value is too long")
    return vb


def _dest(w, opts) -> bytes | None:
    addr = opts.get("destAddress")
    if addr is None:
        return None
    try:
        return w.parse_address(str_arg(addr, "destAddress"))
    except WalletError:
        raise RPCError(INVALID_ADDRESS, "Invalid address") from None


def _wallet_errors(fn, *args, **kw):
    """Runs a shared wallet function, turning the user's errors into Namecoin's codes."""
    try:
        return fn(*args, **kw)
    except NoFunds as e:
        raise RPCError(INSUFFICIENT_FUNDS, f"Insufficient funds: {e}") from None
    except Rejected as e:
        raise RPCError(VERIFY_REJECTED, str(e)) from None
    except S.StepError as e:
        code = {"not_mine": INSUFFICIENT_FUNDS, "invalid": INVALID_PARAMETER}.get(e.kind, TRANSACTION_ERROR)
        raise RPCError(code, str(e)) from None
    except WalletError as e:
        raise RPCError(WALLET_ERROR, str(e)) from None


# --- names --------------------------------------------------------------------------------------

@method
def name_new(svc, name, options=None):
    """name_new "name" (options) -> [txid, rand]"""
    opts = options_arg(options)
    nm = _name(name, opts)
    allow = bool_arg(opts.get("allowExisting", False), "allowExisting")
    w = svc.wallet()
    rec = N.show(w, nm)
    if rec is not None and not rec["expired"] and not allow:
        raise RPCError(TRANSACTION_ERROR, "this name exists already")
    txid, rand = _wallet_errors(S.name_new, w, nm, svc.fee_rate, _dest(w, opts))
    return [txid, rand]


@method
def name_firstupdate(svc, name, rand, txid, value, options=None, allow_active=False):
    """name_firstupdate "name" "rand" "txid" "value" (options) -> txid"""
    opts = options_arg(options)
    nm, val = _name(name, opts), _value(value, opts)
    rand_b, txid_b = hex_arg(rand, "rand"), hex_arg(txid, "txid", 32)
    w = svc.wallet()
    return _wallet_errors(S.name_firstupdate, w, nm, rand_b, txid_b, val, svc.fee_rate, _dest(w, opts),
                          not bool_arg(allow_active, "allowActive"))


@method
def name_update(svc, name, value, options=None):
    """name_update "name" "value" (options) -> txid"""
    opts = options_arg(options)
    nm, val = _name(name, opts), _value(value, opts)
    w = svc.wallet()
    if N.pending_update(w, nm) is not None:
        raise RPCError(TRANSACTION_ERROR, "there is already a pending update for this name")
    rec = N.show(w, nm)
    if rec is None or rec["expired"]:
        raise RPCError(TRANSACTION_ERROR, "this name can not be updated")
    if w.owns(w.parse_address(rec["address"])) is None:
        raise RPCError(INSUFFICIENT_FUNDS, "Not found pre-selected input: the name is not in this wallet")
    return _wallet_errors(N.update, w, nm, val, _dest(w, opts), svc.fee_rate)["txid"]


@method
def name_register(svc, name, value, options=None):
    """name_register "name" "value" (options) -> txid of the name_new. One step: the daemon
    sends the firstupdate itself once the name_new is deep enough (and after a restart)."""
    opts = options_arg(options)
    nm, val = _name(name, opts), _value(value, opts)
    w = svc.wallet()
    rec = N.show(w, nm)
    if rec is not None and not rec["expired"]:
        raise RPCError(TRANSACTION_ERROR, "this name exists already")
    if nm not in w.doc["pending"] and any(op["op"] == "name_firstupdate" for op in N.pending_ops(w, nm)):
        raise RPCError(TRANSACTION_ERROR, "there is already a pending registration for this name")
    res = _wallet_errors(N.register, w, nm, val, svc.fee_rate)
    svc.wake()          # the registration advances in the background from now on
    return res["txid"]


@method
def name_list(svc, name=None, options=None):
    """name_list ("name") (options) -> [name info + ismine] of every name this wallet holds or
    held, as Namecoin lists them: a name it transferred away shows the output it sent
    (ismine false, transferred true), an expired one its last output (expired true)."""
    opts = options_arg(options)
    only = _name(name, opts) if name is not None else None
    w = svc.wallet()
    out = []
    for r in _wallet_errors(owned_names, w):
        if "height" not in r or (only is not None and r["name"] != only):
            continue        # registrations in progress are name_pending's
        past = r["status"] in ("expired", "transferred")
        out.append({"name": encode_out(N.name_bytes(r["name"]), opts, "nameEncoding", "name"),
                    "name_encoding": opts.get("nameEncoding", "utf8"),
                    "value": encode_out(bytes.fromhex(r["value_hex"]), opts, "valueEncoding", "value"),
                    "value_encoding": opts.get("valueEncoding", "utf8"),
                    "txid": r["txid"], "vout": r["vout"], "address": r["address"], "height": r["height"],
                    "expires_in": r["expires_in"], "expired": r["expired"] if past else False,
                    "ismine": r["status"] != "transferred", "transferred": r["status"] == "transferred"})
    return out


# --- coins --------------------------------------------------------------------------------------

@method
def getnewaddress(svc, label="", address_type=None):
    str_arg(label, "label")
    w = svc.wallet()
    return w.text(w.fresh_key(RECEIVE).address)


@method
def getbalance(svc, dummy="*", minconf=0, include_watchonly=False, avoid_reuse=False):
    int_arg(minconf, "minconf")
    b = svc.wallet().balance()
    return _coins(b["confirmed"])


@method
def listunspent(svc, minconf=1, maxconf=9999999, addresses=None, include_unsafe=True, query_options=None):
    lo, hi = int_arg(minconf, "minconf"), int_arg(maxconf, "maxconf")
    want = set(addresses) if addresses is not None else None
    out = []
    for r in C.coin_rows(svc.wallet()):
        if not lo <= r["confirmations"] <= hi or (want is not None and r["address"] not in want):
            continue
        row = {"txid": r["txid"], "vout": r["vout"], "address": r["address"], "amount": _coins(r["value_sat"]),
               "confirmations": r["confirmations"], "spendable": r["kind"] == "none", "solvable": True,
               "safe": r["confirmations"] > 0}
        if r["kind"] != "none":
            row["nameOp"] = {"op": r["kind"], **({"name": r["name"]} if r["name"] else {})}
        out.append(row)
    return out


@method
def sendtoaddress(svc, address, amount, comment="", comment_to="", subtractfeefromamount=False):
    w = svc.wallet()
    try:
        to = w.parse_address(str_arg(address, "address"))
    except WalletError:
        raise RPCError(INVALID_ADDRESS, "Invalid address") from None
    return _send(svc, w, to, amount, subtractfeefromamount)


@method
def sendtoname(svc, name, amount, comment="", comment_to="", subtractfeefromamount=False):
    nm = _name(name, {})
    w = svc.wallet()
    rec = N.show(w, nm)
    if rec is None:
        raise RPCError(INVALID_ADDRESS, f"name not found: {N.display(N.name_bytes(nm))!r}")
    if rec["expired"]:
        raise RPCError(INVALID_ADDRESS, "the name is expired")
    return _send(svc, w, w.parse_address(rec["address"]), amount, subtractfeefromamount)


def _send(svc, w, to: bytes, amount, subtract) -> str:
    units = amount_arg(amount)
    return _wallet_errors(C.send, w, to, units, svc.fee_rate, bool_arg(subtract, "subtractfeefromamount"))["txid"]


@method
def listtransactions(svc, label="*", count=10, skip=0, include_watchonly=False):
    n, s = int_arg(count, "count"), int_arg(skip, "skip")
    if n < 0 or s < 0:
        raise RPCError(INVALID_PARAMETER, "Negative count" if n < 0 else "Negative from")
    w = svc.wallet()
    rows = []
    for r in _wallet_errors(C.history_rows, w):
        conf = w.tip - r["height"] + 1 if r["height"] >= 0 else 0
        if r["coinbase"]:
            cat = "generate" if conf >= w.params.coinbase_maturity else "immature"
        else:
            cat = "receive" if r["delta_sat"] > 0 else "send"
        row = {"category": cat, "amount": _coins(r["delta_sat"]), "confirmations": conf, "txid": r["txid"]}
        if r["height"] >= 0:
            row["blockheight"] = r["height"]
        op = r["name_op"]
        if op is not None:
            row["name"] = f"{op['type'].removeprefix('name_')}: {op['name']}" if "name" in op else "new"
        rows.append(row)
    end = len(rows) - s
    return rows[max(0, end - n):max(0, end)]


def _coins(units: int):
    """An amount as bitcoind shows it: a JSON number of coins, exact to 8 decimals."""
    return Decimal(units) / COIN


# --- locking ------------------------------------------------------------------------------------

@method
def walletpassphrase(svc, passphrase, timeout):
    """walletpassphrase "passphrase" timeout: open the wallet for `timeout` seconds."""
    secs = int_arg(timeout, "timeout")
    if secs < 0:
        raise RPCError(INVALID_PARAMETER, "Timeout cannot be negative.")
    svc.unlock(str_arg(passphrase, "passphrase"), secs)
    return None


@method
def walletlock(svc):
    svc.lock()
    return None

