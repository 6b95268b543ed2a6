"""`dotbit-wallet` commands for names on the chain: `name register/sync/update/renew/transfer/
list/show/history`, and `tls` and `minimalt`, which update one item of a name's value."""
from __future__ import annotations

import argparse
import json
import time

from wallet import names as N
from wallet import values as V
from wallet.cliutil import (NAME, VALUE, arg, command, lock_wallet, note, open_wallet, out,
                            read_input, report_events)
from wallet.errors import WalletError
from wallet.nodeclient import NodeError
from wallet.storage import reload

@command("name register", "register a name: name_new now, firstupdate 12 blocks later", NAME, VALUE,
          arg("--wait", action="store_true", help="wait and send the firstupdate when due"),
          arg("--poll", type=float, default=1.0, help=argparse.SUPPRESS))
def cmd_name_register(args, params):
    w = open_wallet(args, params, True)
    value = value_arg(w, args.name, args.value)
    res = N.register(w, args.name, value, args.fee_rate)
    if res.get("resumed"):
        note(f"{args.name}: continuing the registration from name_new {res['txid']}")
    report_events(args, N.advance(w, args.fee_rate))
    if args.wait:
        res = wait_registration(args, w, args.name)
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
    else:
        text = f"{args.name}: registered"
    out(args, res, text)


def wait_registration(args, w, name: str) -> dict:
    """Polls until the firstupdate is sent, printing progress when it changes."""
    last = None
    while True:
        st = w.doc["pending"].get(name)
        if st is None or st["state"] != "new":
            return {"name": name, "txid": st["new_txid"] if st else "", "state": st["state"] if st else "done"}
        conf = st.get("confirmations", 0)
        if conf != last:
            note(f"{name}: waiting for name_new to be {w.params.min_firstupdate_depth} blocks deep "
                 f"({conf}/{w.params.min_firstupdate_depth})")
            last = conf
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
        value = value_arg(w, args.name, value_text)
    res = N.update(w, args.name, value, to, args.fee_rate)
    w.save()
    return w, res


@command("name update", "set a name's value", NAME, VALUE)
def cmd_name_update(args, params):
    _, res = _update(args, params, args.value, None)
    out(args, res, f"{args.name}: updated ({res['txid']})")


KEEP_VALUE = arg("--value", help="the value to sign (default: the one the name holds, if this wallet set it)")


@command("name renew", "renew a name (same value, resets its expiry)", NAME, KEEP_VALUE)
def cmd_name_renew(args, params):
    _, res = _update(args, params, args.value, None)
    out(args, res, f"{args.name}: renewed ({res['txid']}) with value {res['value']}")


@command("name transfer", "give a name to another address", NAME, arg("address"), KEEP_VALUE)
def cmd_name_transfer(args, params):
    _, res = _update(args, params, args.value, args.address)
    out(args, res, f"{args.name}: transferred to {args.address} ({res['txid']}) with value {res['value']}")


@command("name list", "names this wallet owns, with expiry")
def cmd_name_list(args, params):
    w = open_wallet(args, params, True)
    w.save()
    rows = N.owned_names(w)
    for r in rows:
        if r.get("warning"):
            note(f"warning: {r['name']} {r['warning']}")
    out(args, rows, "\n".join(
        f"{r['name'] or r['txid']}: registration {r['pending_registration']}" if "pending_registration" in r
        else f"{r['name']} expires_in={r['expires_in']} {r['value']}" for r in rows) or "no names")


@command("name show", "show a name's current record", NAME)
def cmd_name_show(args, params):
    w = open_wallet(args, params, True)
    w.save()
    rec = N.show(w, args.name)
    if rec is None:
        raise WalletError(f"unknown name: {args.name} was never registered")
    rec["mine"] = w.owns(w.parse_address(rec["address"])) is not None
    out(args, rec, "\n".join(f"{k}: {v}" for k, v in rec.items()))


@command("name history", "show every state a name has had", NAME)
def cmd_name_history(args, params):
    w = open_wallet(args, params, True)
    w.save()
    try:
        rows = w.call("name_history", args.name)
    except NodeError:
        raise WalletError(f"unknown name: {args.name} was never registered") from None
    out(args, rows, "\n".join(f"{r['height']:>7} {r['address']} {r['value']}" for r in rows))


@command("tls", "publish a TLS certificate association (TLSA) for a name", NAME,
          arg("--cert", required=True, help="PEM certificate file"),
          arg("--usage", type=int, default=3, help="3 = DANE-EE (default)"),
          arg("--selector", type=int, default=1, help="0 full certificate, 1 public key (default)"),
          arg("--mtype", type=int, default=1, help="0 exact, 1 SHA-256 (default), 2 SHA-512"),
          arg("--port", type=int, default=443))
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
          arg("--ip", help="optional address of the server"))
def cmd_minimalt(args, params):
    item = V.minimalt_item(args.port, args.id_key, args.eph_key, args.ip)
    _, res = _update(args, params, None, None, lambda obj: obj | {"minimalT": item})
    res["minimalT"] = item
    out(args, res, f"{args.name}: minimalT {json.dumps(item)} ({res['txid']})")


def value_arg(w, name: str, text: str) -> bytes:
    obj = V.parse_value(text)
    data, warnings = V.check_value(name, obj, lambda n: _value_of(w, n))
    for msg in warnings:
        note(f"warning: {msg}")
    return data


def _value_of(w, name: str) -> str | None:
    rec = N.show(w, name)
    return None if rec is None or rec["expired"] else rec["value"]
