"""What every `dotbit-wallet` command module shares: the command table and its decorator,
output, passphrase and file input, and opening the wallet (locked, synced with the node).

The command modules (cli_coins, cli_names, cli_resolver) register into COMMANDS here, and
cli.py builds the parser from it; keeping the table here rather than in cli.py is what lets
cli.py import the command modules without any of them importing cli.py back.
"""
from __future__ import annotations

import getpass
import json
import os
import sys
import time

from wallet import names as N
from wallet import storage
from wallet.errors import WalletError
from wallet.nodeclient import NodeClient
from wallet.storage import FileLock
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
NAME_ENC = arg("--name-encoding", choices=("utf8", "hex"), default="utf8",
               help="hex: the name argument is hex bytes (any bytes a name may hold)")
VALUE_ENC = arg("--value-encoding", choices=("utf8", "hex"), default="utf8",
                help="hex: --value is hex bytes (a d/ value must still be a JSON object)")
FORCE = arg("--force", action="store_true",
            help="go ahead with a name or value that resolvers will never serve")


def printable(text: str) -> str:
    """Text safe to print: a name of non-UTF-8 bytes carries lone surrogates (names.name_text),
    which a terminal cannot encode; they show as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def out(args, obj, text: str) -> None:
    print(json.dumps(obj, indent=1, sort_keys=True) if args.json else printable(text))


def utc(epoch: int) -> str:
    """Times users read are dates, not raw epochs."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def note(msg: str) -> None:
    print(printable(msg), file=sys.stderr, flush=True)


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
    return NodeClient(url, cookie, timeout=30.0)


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
        # Names expire silently on the chain; whatever the user runs, tell them in time.
        for name, left in N.expiring_soon(w):
            note(f"warning: {name} expires in {left} blocks: {N.renew_hint(name)}")
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
