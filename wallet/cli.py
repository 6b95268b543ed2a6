"""`dotbit-wallet`: an HD wallet for dotbit names, talking to a node over JSON-RPC.

Every command that reaches the node first rescans (gap limit) and advances pending name
registrations, so a registration started by `name register` completes on whatever command
runs once its name_new is deep enough. Errors a user can cause are one line on stderr and
exit status 1; nothing prints a traceback (set DOTBIT_WALLET_DEBUG=1 to see one).
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time

from core.config import ConfigError
from core.config import load as load_config
from core.params import NETWORKS, get_params

from wallet import names as N
from wallet import storage
from wallet import values as V
from wallet.errors import WalletError
from wallet.keys import SeedError
from wallet.nodeclient import NodeClient, NodeError
from wallet.storage import FileLock, StorageError, reload
from wallet.txbuild import DEFAULT_FEE_RATE, fmt, parse_amount
from wallet.wallet import Wallet

PROG = "dotbit-wallet"
COMMANDS = {}


def arg(*flags, **kw):
    return flags, kw


def command(name: str, help: str, *arguments):
    """Declares a command once — name, help and arguments — next to its code (Electrum's
    decorator habit); the parser is built from these declarations."""
    def register(fn):
        COMMANDS[name] = (fn, help, arguments)
        return fn
    return register


NAME = arg("name", help="e.g. d/example")
VALUE = arg("--value", required=True, help="JSON object, at most 520 bytes")


# --- plumbing ------------------------------------------------------------------------------------

def out(args, obj, text: str) -> None:
    print(json.dumps(obj, indent=1, sort_keys=True) if args.json else text)


def note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def read_passphrase(args, confirm: bool = False) -> str:
    # A flag beats the environment, which beats the config file (node/config.py's order).
    if args.passphrase_file:
        return _read_passphrase_file(args.passphrase_file)
    env = os.environ.get("DOTBIT_WALLET_PASSPHRASE")
    if env is not None:
        return env
    configured = args.cfg.get("wallet", "passphrase_file")
    if configured:
        return _read_passphrase_file(configured)
    if not sys.stdin.isatty():
        raise WalletError("no passphrase: use --passphrase-file, DOTBIT_WALLET_PASSPHRASE or a terminal")
    p = getpass.getpass("wallet passphrase: ")
    if confirm and getpass.getpass("again: ") != p:
        raise WalletError("passphrases differ")
    return p


def read_input(path: str, what: str) -> bytes:
    """A file the user named, or one clear error line saying which and why."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise WalletError(f"cannot read {what} {path}: {e.strerror}") from None


def _read_passphrase_file(path: str) -> str:
    try:
        return read_input(path, "passphrase file").decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise WalletError(f"passphrase file {path} is not UTF-8 text") from None


def node_client(args, params) -> NodeClient:
    cfg = args.cfg
    port = cfg.get("rpc", "port", None, params.rpc_port)
    url = cfg.get("rpc", "url", args.rpc_url, f"http://127.0.0.1:{port}")
    cookie = cfg.get("rpc", "cookie", args.rpc_cookie, os.path.join(args.datadir, ".cookie"))
    return NodeClient(url, cookie)


def wallet_path(args, params) -> str:
    return args.cfg.get("wallet", "file", args.wallet, os.path.join(args.datadir, "wallet.json"))


_LOCK: FileLock | None = None


def lock_wallet(path: str) -> FileLock:
    """Held until the process exits (the OS drops it even on SIGKILL)."""
    global _LOCK
    if _LOCK is None:
        _LOCK = FileLock(path)
        _LOCK.acquire()
    return _LOCK


def open_wallet(args, params, with_node: bool) -> Wallet:
    path = wallet_path(args, params)
    storage.read_envelope(path)          # "no wallet file" before a lock file or a passphrase
    lock_wallet(path)
    w = Wallet.open(path, read_passphrase(args), params, node_client(args, params) if with_node else None)
    if with_node:
        w.sync()
        # Progress ("3/12 confirmations") is shown by the name commands; here only news.
        report_events(args, [e for e in N.advance(w, args.fee_rate) if e["event"] != "waiting"])
    return w


def report_events(args, events) -> None:
    for ev in events:
        e = ev["event"]
        if e == "waiting":
            note(f"{ev['name']}: name_new has {ev['confirmations']}/{ev['needed']} confirmations")
        elif e == "firstupdate_sent":
            note(f"{ev['name']}: name_new is deep enough, sent name_firstupdate {ev['txid']}")
        elif e == "registered":
            note(f"{ev['name']}: registered ({ev['txid']})")
        elif e == "failed":
            note(f"{ev['name']}: registration stopped: {ev['error']}")
        elif e == "stuck":
            note(f"{ev['name']}: cannot send the firstupdate yet: {ev['error']}")


def value_arg(w, name: str, text: str) -> bytes:
    obj = V.parse_value(text)
    data, warnings = V.check_value(name, obj, lambda n: _value_of(w, n))
    for msg in warnings:
        note(f"warning: {msg}")
    return data


def _value_of(w, name: str) -> str | None:
    rec = N.show(w, name)
    return None if rec is None or rec["expired"] else rec["value"]


# --- wallet commands -----------------------------------------------------------------------------

@command("create", "create a new wallet and show its seed words (once)")
def cmd_create(args, params):
    path = wallet_path(args, params)
    lock_wallet(path)
    if os.path.exists(path):
        raise WalletError(f"a wallet already exists at {path}")
    w, words = Wallet.create(path, read_passphrase(args, confirm=True), params)
    w.save()
    addr = w.text(w.receive_key().address)
    out(args, {"words": words, "address": addr, "wallet": path},
        f"Your seed words (write them down; they are shown only now):\n\n  {words}\n\n"
        f"wallet: {path}\nfirst address: {addr}")


@command("restore", "recreate a wallet from its seed words and rescan the chain",
          arg("--words-file", help="file with the seed words (default: stdin)"))
def cmd_restore(args, params):
    path = wallet_path(args, params)
    lock_wallet(path)
    if os.path.exists(path):
        raise WalletError(f"a wallet already exists at {path} (move it away first)")
    if args.words_file:
        words = read_input(args.words_file, "words file").decode("utf-8", "replace")
    else:
        if sys.stdin.isatty():
            note("type the seed words, then Enter:")
            words = sys.stdin.readline()
        else:
            words = sys.stdin.read()
    passphrase = read_passphrase(args, confirm=True)
    w, _ = Wallet.create(path, passphrase, params, words)
    w.node = node_client(args, params)
    w.sync()                     # scan before writing: a failed scan leaves no half wallet
    w.save()
    b = w.balance()
    out(args, {"wallet": path, "used": w.doc["used"], "balance": b, "coins": len(w.coins)},
        f"restored {path}: {len(w.coins)} coins, {fmt(b['confirmed'])} confirmed")


@command("address", "show a receive address")
def cmd_address(args, params):
    w = open_wallet(args, params, True)
    a = w.text(w.receive_key().address)
    w.save()
    out(args, {"address": a}, a)


@command("balance", "show the balance")
def cmd_balance(args, params):
    w = open_wallet(args, params, True)
    w.save()
    b = w.balance()
    out(args, {k: fmt(v) for k, v in b.items()} | {k + "_sat": v for k, v in b.items()},
        "\n".join(f"{k:16} {fmt(v)}" for k, v in b.items()))


@command("coins", "list unspent coins (name coins are marked and never spent as payments)")
def cmd_coins(args, params):
    w = open_wallet(args, params, True)
    w.save()
    rows = [{"txid": c.txid.hex(), "vout": c.vout, "value": fmt(c.value), "value_sat": c.value,
             "address": w.text(c.key.address), "kind": c.kind, "name": c.covenant.get("name"),
             "confirmations": c.confirmations(w.tip), "coinbase": c.coinbase} for c in w.coins]
    out(args, rows, "\n".join(f"{r['txid']}:{r['vout']} {r['value']:>16} {r['kind']:16} "
                              f"{r['confirmations']:5} conf {r['name'] or ''}" for r in rows) or "no coins")


@command("history", "list transactions touching this wallet")
def cmd_history(args, params):
    w = open_wallet(args, params, True)
    w.save()
    rows = []
    mine = {k.address for k in w.derived()}
    pending = sorted({c.txid.hex() for c in w.coins if c.height < 0})
    for r in w.history + [{"txid": t, "height": -1} for t in pending]:
        tx = w.call("getrawtransaction", r["txid"], True)
        delta = sum(o["value_sat"] for o in tx["vout"] if w.parse_address(o["address"]) in mine)
        for i in tx["vin"]:
            if i.get("coinbase"):
                continue
            prev = w.call("getrawtransaction", i["txid"], True)["vout"][i["vout"]]
            if w.parse_address(prev["address"]) in mine:
                delta -= prev["value_sat"]
        ops = [o["covenant"] for o in tx["vout"] if o["covenant"]["type"] not in ("none", "burn")]
        rows.append({"txid": r["txid"], "height": r["height"], "delta": fmt(delta), "delta_sat": delta,
                     "name_op": ops[0] if ops else None})
    out(args, rows, "\n".join(f"{r['height']:>7} {r['txid']} {r['delta']:>17} "
                              f"{(r['name_op'] or {}).get('type', '')} {(r['name_op'] or {}).get('name', '')}"
                              for r in rows) or "no transactions")


@command("send", "send coins", arg("address"), arg("amount", help="in coins, e.g. 1.5"))
def cmd_send(args, params):
    w = open_wallet(args, params, True)
    to = w.parse_address(args.address)
    amount = parse_amount(args.amount)
    from core.primitives import TxOut
    tx, fee = w.build([TxOut(amount, to)], args.fee_rate)
    w.save()
    txid = w.broadcast(tx)
    out(args, {"txid": txid, "amount": fmt(amount), "fee": fmt(fee), "fee_sat": fee, "size": tx.size},
        f"sent {fmt(amount)} to {args.address}: {txid} (fee {fmt(fee)})")


# --- name commands ------------------------------------------------------------------------------

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
        _LOCK.release()             # let other commands use the wallet meanwhile
        time.sleep(args.poll)
        _LOCK.acquire(timeout=600)
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
        rec, _ = N.owned_record(w, args.name)
        value_text = json.dumps(transform(V.parse_value(rec["value"])))
    if value_text is not None:
        value = value_arg(w, args.name, value_text)
    res = N.update(w, args.name, value, to, args.fee_rate)
    w.save()
    return w, res


@command("name update", "set a name's value", NAME, VALUE)
def cmd_name_update(args, params):
    _, res = _update(args, params, args.value, None)
    out(args, res, f"{args.name}: updated ({res['txid']})")


@command("name renew", "renew a name (same value, resets its expiry)", NAME)
def cmd_name_renew(args, params):
    _, res = _update(args, params, None, None)
    out(args, res, f"{args.name}: renewed ({res['txid']})")


@command("name transfer", "give a name to another address", NAME, arg("address"))
def cmd_name_transfer(args, params):
    _, res = _update(args, params, None, args.address)
    out(args, res, f"{args.name}: transferred to {args.address} ({res['txid']})")


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


# The commands that talk to a resolver (CA, ephemeral keys, tlsa) live in cli_resolver.py;
# importing it registers them.
from wallet import cli_resolver  # noqa: E402,F401


# --- argument parsing --------------------------------------------------------------------------------

def _common(p: argparse.ArgumentParser, suppress: bool) -> None:
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    p.add_argument("--network", choices=sorted(NETWORKS), default=d(None),
                   help="main (default), testnet or regtest (env DOTBIT_NETWORK)")
    p.add_argument("--wallet", default=d(None), help="wallet file (env DOTBIT_WALLET; default: wallet.json in the node's data dir)")
    p.add_argument("--json", action="store_true", default=d(False), help="print JSON")
    p.add_argument("--rpc-url", default=d(None), help="node JSON-RPC URL (env DOTBIT_RPC_URL)")
    p.add_argument("--rpc-cookie", default=d(None), help="node cookie file (env DOTBIT_RPC_COOKIE)")
    p.add_argument("--passphrase-file", default=d(None), help="read the passphrase from a file "
                   "(or env DOTBIT_WALLET_PASSPHRASE; else a prompt)")
    p.add_argument("--fee-rate", type=int, default=d(None), help=f"base units per byte (default {DEFAULT_FEE_RATE})")
    p.add_argument("--conf", default=d(None), help="config file (default: dotbit.toml in the node's data dir); "
                   "see docs/operator.md")


GROUP_HELP = {"name": "register and manage names", "cert": "certificates for your names from a resolver's CA",
              "ekey": "MinimaLT ephemeral keys for your names (rotate, show)"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="dotbit wallet: coins and .bit names")
    _common(p, False)
    sub = p.add_subparsers(dest="cmd", required=True)
    groups: dict = {}
    for full, (fn, help, arguments) in COMMANDS.items():
        if " " in full:             # "name register", "cert request": a command group
            group, leaf = full.split(" ", 1)
            if group not in groups:
                gp = sub.add_parser(group, help=GROUP_HELP.get(group))
                groups[group] = gp.add_subparsers(dest="subcmd", required=True)
            sp = groups[group].add_parser(leaf, help=help)
        else:
            sp = sub.add_parser(full, help=help)
        _common(sp, True)
        sp.set_defaults(fn=fn)
        for flags, kw in arguments:
            sp.add_argument(*flags, **kw)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # The node's config file and data dir: the wallet finds the node's RPC port and cookie there.
        args.cfg, args.network, args.datadir = load_config(args.conf, args.network, None, os.environ,
                                                            storage.read_optional, os.getcwd())
        args.fee_rate = args.cfg.get("wallet", "fee_rate", args.fee_rate, DEFAULT_FEE_RATE)
        try:
            params = get_params(args.network)
        except ValueError as e:             # a network from the environment or the file
            raise ConfigError(str(e)) from None
        args.fn(args, params)
        return 0
    except (WalletError, StorageError, NodeError, SeedError, ConfigError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): nothing to report; keep Python from complaining
        # again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # noqa: BLE001 — the promise is one line, never a traceback
        if os.environ.get("DOTBIT_WALLET_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run as `python -m wallet.cli`, this file is __main__, and cli_resolver registers its
    # commands in the importable wallet.cli's table: run that module's main, which has them all.
    from wallet.cli import main as _main
    sys.exit(_main())
