"""`dotbit-wallet` commands for the wallet itself and its coins: create, restore, address,
balance, coins, history, send."""
from __future__ import annotations

import os
import sys

from wallet.coins import coin_rows, history_rows, send
from wallet.cliutil import (arg, command, lock_wallet, node_client, note, open_wallet, out,
                            read_input, read_passphrase, wallet_path)
from wallet.errors import WalletError
from wallet.txbuild import fmt, parse_amount
from wallet.wallet import Wallet

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
    rows = coin_rows(w)
    out(args, rows, "\n".join(f"{r['txid']}:{r['vout']} {r['value']:>16} {r['kind']:16} "
                              f"{r['confirmations']:5} conf {r['name'] or ''}" for r in rows) or "no coins")


@command("history", "list transactions touching this wallet")
def cmd_history(args, params):
    w = open_wallet(args, params, True)
    w.save()
    rows = history_rows(w)
    for r in rows:
        del r["coinbase"]
    out(args, rows, "\n".join(f"{r['height']:>7} {r['txid']} {r['delta']:>17} "
                              f"{(r['name_op'] or {}).get('type', '')} {(r['name_op'] or {}).get('name', '')}"
                              for r in rows) or "no transactions")


@command("send", "send coins", arg("address"), arg("amount", help="in coins, e.g. 1.5"))
def cmd_send(args, params):
    w = open_wallet(args, params, True)
    to = w.parse_address(args.address)
    amount = parse_amount(args.amount)
    res = send(w, to, amount, args.fee_rate)
    out(args, res, f"sent {fmt(amount)} to {args.address}: {res['txid']} (fee {res['fee']})")
