"""`dotbit-wallet` commands for names on the chain: `name register/sync/update/renew/transfer/
list/show/history`, and `tls` and `minimalt`, which update one item of a name's value."""
from __future__ import annotations

import argparse
import json
import time

from wallet import names as N
from wallet.name_history import owned_names
from wallet import values as V
from wallet.cliutil import (FORCE, NAME, NAME_ENC, VALUE, VALUE_ENC, arg, command, lock_wallet, note,
                            open_wallet, out, read_input, report_events)
from wallet.errors import WalletError
from wallet.nodeclient import NodeError
from wallet.storage import reload

@command("name register", "register a name: name_new now, firstupdate 12 blocks later", NAME, VALUE, FORCE,
          NAME_ENC, VALUE_ENC,
          arg("--wait", action="store_true", help="wait until the name resolves (its firstupdate is mined)"),
          arg("--poll", type=float, default=1.0, help=argparse.SUPPRESS))
def cmd_name_register(args, params):
    problem = V.name_problem(args.name)
    refuse_or_warn([problem] if problem else [], [], args.force)
    w = open_wallet(args, params, True)
    value = value_arg(w, args, args.value)
    res = N.register(w, args.name, value, args.fee_rate)
    if res.get("resumed"):
        note(f"{args.name}: continuing the registration from name_new {res['txid']}")
    report_events(args, N.advance(w, args.fee_rate))
    if args.wait:
        res |= wait_registration(args, w, args.name)
    st = w.doc["pending"].get(args.name)
    res["state"] = st["state"] if st else "registered"
    if st and st.get("first_txid"):
        res["firstupdate_txid"] = st["first_txid"]
    w.save()
    if res["state"] == "new":
        text = (f"{args.name}: name_new {res['txid']} sent; the firstupdate follows once it is "
                f"{params.min_firstupdate_depth} blocks deep (on any later command, `name sync`, or --wait)")
    elif res["state"] == "firstupdate":
        text = f"{args.name}: firstupdate {res.get('firstupdate_txid')} sent, waiting for a block"
    elif "height" in res:
        text = f"{args.name}: registered at height {res['height']}; it resolves now"
    else:
        text = f"{args.name}: registered"
    out(args, res, text)


def wait_registration(args, w, name: str) -> dict:
    """Polls until the name resolves — its firstupdate mined and the node's name_show giving
    it to this wallet — so that `dig` or `dotbit-resolve` right after finds it. Progress (how
    many blocks to go) goes to stderr whenever it changes."""
    last = None
    while True:
        st = w.doc["pending"].get(name)
        rec = N.show(w, name) if st is None else None
        if rec is not None and not rec["expired"] and w.owns(w.parse_address(rec["address"])):
            return {"firstupdate_txid": rec["txid"], "height": rec["height"]}
        progress = _progress(w, name, st)
        if progress != last:
            note(progress)
            last = progress
        lock = lock_wallet(w.path)  # the lock open_wallet took
        lock.release()              # let other commands use the wallet meanwhile
        time.sleep(args.poll)
        lock.acquire(timeout=600)
        w.doc = reload(w.path, w.sealer)
        w.sync()
        events = N.advance(w, args.fee_rate)
        failed = [e for e in events if e["name"] == name and e["event"] in ("failed", "stuck")]
        report_events(args, [e for e in events if e["event"] != "waiting" and e not in failed])
        if failed:
            w.save()
            raise WalletError(failed[0]["error"])


def _progress(w, name: str, st: dict | None) -> str:
    need = w.params.min_firstupdate_depth
    if st is not None and st["state"] == "new":
        conf = st.get("confirmations", 0)
        # the firstupdate goes into the block after name_new is `need` deep, and is mined in it
        return (f"{name}: {need - conf + 1} blocks to go (name_new has {conf}/{need} confirmations, "
                "then the firstupdate needs one block)")
    return f"{name}: 1 block to go (the firstupdate waits to be mined)"


@command("name sync", "advance pending registrations (send firstupdates that are due)")
def cmd_name_sync(args, params):
    w = open_wallet(args, params, True)
    w.save()
    rows = [{"name": n, **st} for n, st in w.doc["pending"].items()]
    for r in rows:
        r.pop("tx", None)
    out(args, rows, "\n".join(f"{r['name']}: {r['state']}" for r in rows) or "no pending registrations")


def _update(args, params, value_text: str | None, to_text: str | None, transform=None):
    w = open_wallet(args, params, True)
    to = w.parse_address(to_text) if to_text else None
    value = None
    if transform is not None:
        _, coin = N.owned_record(w, args.name)         # the item joins the coin's value, not name_show's
        value_text = json.dumps(transform(V.parse_value(N.kept_value(w, args.name, coin).decode("utf-8", "replace"))))
    if value_text is not None:
        value = value_arg(w, args, value_text)
    res = N.update(w, args.name, value, to, args.fee_rate)
    w.save()
    return w, res


@command("name update", "set a name's value", NAME, VALUE, FORCE, NAME_ENC, VALUE_ENC)
def cmd_name_update(args, params):
    _, res = _update(args, params, args.value, None)
    out(args, res, f"{args.name}: updated ({res['txid']})")


KEEP_VALUE = arg("--value", help="the value to sign (default: the one the name holds, if this wallet set it)")


@command("name renew", "renew a name (same value, resets its expiry)", NAME, KEEP_VALUE, FORCE,
          NAME_ENC, VALUE_ENC)
def cmd_name_renew(args, params):
    _, res = _update(args, params, args.value, None)
    out(args, res, f"{args.name}: renewed ({res['txid']}) with value {res['value']}")


@command("name transfer", "give a name to another address", NAME, arg("address"), KEEP_VALUE, FORCE,
          NAME_ENC, VALUE_ENC)
def cmd_name_transfer(args, params):
    _, res = _update(args, params, args.value, args.address)
    out(args, res, f"{args.name}: transferred to {args.address} ({res['txid']}) with value {res['value']}")


@command("name list", "names this wallet owns, with expiry (expiring and expired ones marked), and the ones it "
                      "transferred away")
def cmd_name_list(args, params):
    w = open_wallet(args, params, True)
    w.save()
    rows = owned_names(w)
    out(args, rows, "\n".join(_list_line(r) for r in rows) or "no names")


def _list_line(r: dict) -> str:
    name = r["name"]
    if "pending_registration" in r:
        return f"{name or r['txid']}: registration {r['pending_registration']}"
    if r["status"] == "transferred":
        return f"{name} transferred to {r['address']} at height {r['height']} ({r['txid']})"
    if r["status"] == "expired" and "registered_again_at" in r:
        return (f"{name} EXPIRED at height {r['expired_at']} and registered again by someone else at height "
                f"{r['registered_again_at']}")
    if r["status"] == "expired":
        return (f"{name} EXPIRED at height {r['expired_at']}: anyone may register it now; to get it "
                f"back: dotbit-wallet name register {name} --value '...'")
    if r["status"] == "expiring":
        return f"{name} EXPIRING in {r['expires_in']} blocks: {N.renew_hint(name)}  {r['value']}"
    return f"{name} expires in {r['expires_in']} blocks  {r['value']}"


@command("name show", "show a name's current record (and an update waiting for a block)", NAME, NAME_ENC)
def cmd_name_show(args, params):
    w = open_wallet(args, params, True)
    w.save()
    rec = N.show(w, args.name)
    if rec is None:
        raise WalletError(f"unknown name: {args.name} was never registered")
    rec["mine"] = w.owns(w.parse_address(rec["address"])) is not None
    lines = [f"{k}: {v}" for k, v in rec.items()]
    op = N.pending_update(w, args.name)
    if op is not None:
        # Right after `name update` the chain still shows the old value; say what is coming.
        rec["pending"] = {"op": "update", "txid": op["txid"], "value": op["value"], "address": op["address"]}
        lines.append(f"pending: update {op['txid']} waits for a block: value {op['value']}, "
                     f"address {op['address']}")
    out(args, rec, "\n".join(lines))


@command("name history", "show every state a name has had, with the operation that made it", NAME,
          NAME_ENC)
def cmd_name_history(args, params):
    w = open_wallet(args, params, True)
    w.save()
    try:
        rows = w.call("name_history", N.name_bytes(args.name).hex(), N.HEX)
    except NodeError:
        raise WalletError(f"unknown name: {N.display(N.name_bytes(args.name))} was never registered") from None
    for row in rows:
        row.update(name=args.name, value=N.display(bytes.fromhex(row["value"])))
    for prev, row in zip([None] + rows, rows):
        row["op"] = _operation(w, prev, row)
    width = max(len(r["address"]) for r in rows)
    head = f"{'HEIGHT':>7} {'OPERATION':14} {'ADDRESS':{width}} VALUE"
    out(args, rows, "\n".join([head] + [f"{r['height']:>7} {r['op']:14} {r['address']:{width}} {r['value']}"
                                        for r in rows]))


def _operation(w, prev: dict | None, row: dict) -> str:
    """What made this state. Heights tell a registration (the name was new or expired) from
    an update; an update that keeps the value and moves the name into or out of this wallet
    is a transfer (this wallet's own updates go to fresh keys of its own, so a new address
    alone says nothing)."""
    if prev is None or row["height"] >= prev["height"] + w.params.expiry_depth:
        return "register"
    mine = [w.owns(w.parse_address(r["address"])) is not None for r in (prev, row)]
    if mine[0] != mine[1]:
        return "transfer"
    if row["value"] != prev["value"]:
        return "update"
    if mine[0] or row["address"] == prev["address"]:
        return "renew"
    return "renew/transfer"


@command("tls", "publish a TLS certificate association (TLSA) for a name", NAME,
          arg("--cert", required=True, help="PEM certificate file"),
          arg("--usage", type=int, default=3, help="3 = DANE-EE (default)"),
          arg("--selector", type=int, default=1, help="0 full certificate, 1 public key (default)"),
          arg("--mtype", type=int, default=1, help="0 exact, 1 SHA-256 (default), 2 SHA-512"),
          arg("--port", type=int, default=443), FORCE)
def cmd_tls(args, params):
    pem = read_input(args.cert, "certificate")
    row = V.tls_row(pem, args.usage, args.selector, args.mtype)
    _, res = _update(args, params, None, None, lambda obj: V.add_tls(obj, row, args.port))
    res["tls"] = row
    res["owner"] = f"_{args.port}._tcp"
    out(args, res, f"{args.name}: tls {json.dumps(row)} at _{args.port}._tcp ({res['txid']})")


@command("minimalt", "publish a MinimaLT service record for a name", NAME,
          arg("--port", type=int, required=True),
          arg("--id-key", required=True, help="base64 Curve25519 identity key"),
          arg("--eph-key", required=True, help="base64 Curve25519 ephemeral key"),
          arg("--ip", help="optional address of the server"), FORCE)
def cmd_minimalt(args, params):
    item = V.minimalt_item(args.port, args.id_key, args.eph_key, args.ip)
    _, res = _update(args, params, None, None, lambda obj: obj | {"minimalT": item})
    res["minimalT"] = item
    out(args, res, f"{args.name}: minimalT {json.dumps(item)} ({res['txid']})")


def value_arg(w, args, text: str) -> bytes:
    """The value's bytes. A d/ value is a JSON object resolvers read, checked and compacted;
    any other namespace holds whatever bytes the user gives (consensus allows any)."""
    raw = V.value_bytes(text, getattr(args, "value_encoding", "utf8"))
    if not args.name.startswith("d/"):
        return V.check_length(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        refuse_or_warn(["a d/ value must be UTF-8 JSON text"], [], args.force)
        return V.check_length(raw)
    obj = V.parse_value(text)
    data, errors, warnings = V.check_value(args.name, obj, lambda n: _value_of(w, n))
    refuse_or_warn(errors, warnings, args.force, "resolvers would skip an item of this value: ")
    return data


def refuse_or_warn(errors: list[str], warnings: list[str], force: bool, what: str = "") -> None:
    """What resolvers would never serve stops the command before it spends anything, unless
    the user insists; the first problem is the one line they see."""
    if errors and not force:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise WalletError(f"{what}{errors[0]}{more} (--force to go ahead anyway)")
    for msg in errors + warnings:
        note(f"warning: {msg}")


def _value_of(w, name: str) -> str | None:
    rec = N.show(w, name)
    return None if rec is None or rec["expired"] else rec["value"]
