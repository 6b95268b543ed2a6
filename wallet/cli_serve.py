"""`dotbit-wallet serve`: runs the wallet RPC daemon (wallet/daemon.py) until SIGTERM,
SIGINT or the `stop` RPC. See docs/wallet-rpc.md."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading

from wallet import storage
from wallet.cliutil import arg, command, lock_wallet, node_client, note, read_passphrase, wallet_path
from wallet.daemon import WalletRPCServer, cookie_path, write_cookie
from wallet.errors import WalletError
from wallet.nodeclient import ForwardingClient
from wallet.rpc_args import RPCError
from wallet.walletservice import WalletService


@command("serve", "keep the wallet open behind a JSON-RPC URL that answers like namecoind",
         arg("--rpc-port", type=int, default=None, help="port (default: the node's RPC port + 1)"),
         arg("--rpc-bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"),
         arg("--locked", action="store_true", help="start locked even if a passphrase is configured "
             "(open it with the walletpassphrase RPC)"),
         arg("--poll", type=float, default=1.0, help=argparse.SUPPRESS))
def cmd_serve(args, params):
    path = wallet_path(args, params)
    storage.read_envelope(path)             # "no wallet file" before anything else
    lock_wallet(path)                       # held for the daemon's life: the CLI waits its turn
    port = args.rpc_port if args.rpc_port is not None else params.rpc_port + 1
    if not 0 < port < 65536:
        raise WalletError(f"--rpc-port {port} is not a port")
    svc = WalletService(path, params, node_client(args, params), args.fee_rate)
    passphrase = None if args.locked else _configured_passphrase(args)
    if passphrase is not None:
        try:
            svc.unlock(passphrase, None)
        except RPCError as e:
            raise WalletError(e.message.removeprefix("Error: ")) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    try:
        asyncio.run(_serve(args, params, svc, path, port))
    except OSError as e:
        raise WalletError(f"cannot listen on {args.rpc_bind}:{port}: {e.strerror or e}") from None


def _configured_passphrase(args) -> str | None:
    """The passphrase from --passphrase-file, the environment or the config file; without
    one the daemon starts locked (it never prompts: it runs unattended)."""
    if args.passphrase_file or os.environ.get("DOTBIT_WALLET_PASSPHRASE") is not None \
            or args.cfg.get("wallet", "passphrase_file"):
        return read_passphrase(args)
    return None


def _forwarder(args, params):
    """One node connection per forwarding thread (a NodeClient holds one HTTP connection)."""
    local = threading.local()
    base = node_client(args, params)

    def forward(method: str, call_params):
        if not hasattr(local, "client"):
            local.client = ForwardingClient(base.url.geturl(), base.cookie_file, timeout=120.0)
        return local.client.call_params(method, call_params)
    return forward


async def _serve(args, params, svc: WalletService, path: str, port: int) -> None:
    cookie = cookie_path(path)
    server = WalletRPCServer(svc, _forwarder(args, params), write_cookie(cookie))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stopping.set)
    try:
        await server.start(args.rpc_bind, port)
        note(f"dotbit-wallet: serving {path} on http://{args.rpc_bind}:{port}/ "
             f"({'unlocked' if svc.unlocked() else 'locked'}; cookie {cookie})")
        while not server.stopping.is_set():
            try:
                await loop.run_in_executor(server.wallet_thread, svc.background_step)
            except Exception as e:  # noqa: BLE001 — a node restart must not end the daemon
                logging.getLogger("dotbit.wallet.rpc").warning("background step: %s", e)
            try:
                await asyncio.wait_for(server.stopping.wait(), args.poll)
            except asyncio.TimeoutError:
                pass
    finally:
        await server.stop()
        try:
            os.unlink(cookie)
        except FileNotFoundError:
            pass
        note("dotbit-wallet: stopped")
