"""`dotbit-wallet`: an HD wallet for dotbit names, talking to a node over JSON-RPC.

Every command that reaches the node first rescans (gap limit) and advances pending name
registrations, so a registration started by `name register` completes on whatever command
runs once its name_new is deep enough. Errors a user can cause are one line on stderr and
exit status 1; nothing prints a traceback (set DOTBIT_WALLET_DEBUG=1 to see one).

The commands live in cli_coins, cli_names and cli_resolver (imported below in the order their
commands are listed in --help); this module builds the parser from their table and runs one.
"""
from __future__ import annotations

import argparse
import os
import sys

from core.config import ConfigError
from core.config import load as load_config
from core.params import NETWORKS, get_params

from wallet import cli_coins, cli_names, cli_resolver, cli_serve
from wallet import storage
from wallet.cliutil import COMMANDS, PROG, printable
from wallet.errors import WalletError
from wallet.keys import SeedError
from wallet.names import name_text
from wallet.nodeclient import NodeError
from wallet.storage import StorageError
from wallet.txbuild import DEFAULT_FEE_RATE


# Importing a command module registers its commands (in this order in --help).
COMMAND_MODULES = (cli_coins, cli_names, cli_resolver, cli_serve)


# --- argument parsing --------------------------------------------------------------------------------

def _common(p: argparse.ArgumentParser, suppress: bool) -> None:
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    p.add_argument("--network", choices=sorted(NETWORKS), default=d(None),
                   help="main (default), testnet or regtest (env DOTBIT_NODE_NETWORK)")
    p.add_argument("--wallet", default=d(None), help="wallet file (env DOTBIT_WALLET_FILE; "
                   "default: wallet.json in the node's data dir)")
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
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()      # a reader that went away shows up here, not at exit
    except BrokenPipeError:
        # `| head` closed the pipe: nothing to report; keep Python from complaining again
        # when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(argv) -> int:
    args = build_parser().parse_args(argv)
    try:
        # The node's config file and data dir: the wallet finds the node's RPC port and cookie there.
        args.cfg, args.network, args.datadir = load_config(args.conf, args.network, None, os.environ,
                                                            storage.read_optional, os.getcwd())
        if getattr(args, "name_encoding", "utf8") == "hex":
            args.name = _hex_name(args.name)
        args.fee_rate = args.cfg.get("wallet", "fee_rate", args.fee_rate, DEFAULT_FEE_RATE)
        try:
            params = get_params(args.network)
        except ValueError as e:             # a network from the environment or the file
            raise ConfigError(str(e)) from None
        args.fn(args, params)
        return 0
    except (WalletError, StorageError, NodeError, SeedError, ConfigError) as e:
        print(printable(f"{PROG}: error: {e}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise               # main's: silent
    except Exception as e:  # noqa: BLE001 — the promise is one line, never a traceback
        if os.environ.get("DOTBIT_WALLET_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


def _hex_name(text: str) -> str:
    try:
        return name_text(bytes.fromhex(text))
    except ValueError:
        raise WalletError("name is not valid hex") from None


if __name__ == "__main__":
    sys.exit(main())
