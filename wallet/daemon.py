"""`dotbit-wallet serve`: the wallet kept open behind one JSON-RPC URL that answers like
namecoind. Wallet methods (wallet/rpc_methods.py) are answered here; every other method is
forwarded to the node and its answer, error code and message included, passed back
unchanged, so scripts written for namecoind need one URL.

Auth is bitcoind's cookie: a random password in WALLET.cookie beside the wallet file (mode
0600), rewritten on every start, removed on a clean stop. The server binds 127.0.0.1 unless
told otherwise and bounds what a client can make it hold: request body size, batch length,
connections (core/connlimit.py, the node RPC's own caps).

Wallet work runs on one worker thread, one call at a time, in the order calls arrive: the
wallet file and its key counters are one state, and namecoind too serialises wallet calls.
A background task advances pending registrations (name_register) whenever the tip moves,
so a registration completes with nobody calling; after a restart it resumes from the file.
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import inspect
import json
import logging
import os
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from aiohttp import web

from core.connlimit import SourceLimiter

from wallet import rpc_methods
from wallet.errors import WalletError
from wallet.nodeclient import NodeError
from wallet.rpc_args import (CLIENT_NOT_CONNECTED, INVALID_REQUEST, METHOD_NOT_FOUND, MISC_ERROR,
                             PARSE_ERROR, WALLET_ERROR, RPCError)
from wallet.storage import StorageError
from wallet.walletservice import WalletService

log = logging.getLogger("dotbit.wallet.rpc")
MAX_REQUEST_BYTES = 1 << 20         # a name_update is < 2 kB; a megabyte is any sane batch
MAX_BATCH = 1000
MAX_CONNECTIONS = 64
PER_ADDRESS = MAX_CONNECTIONS // 2  # local tools all come from 127.0.0.1 (node/rpc/server.py's reasoning)
COOKIE_USER = "__cookie__"


def cookie_path(wallet_path: str) -> str:
    return wallet_path + ".cookie"


def write_cookie(path: str) -> str:
    creds = f"{COOKIE_USER}:{secrets.token_hex(32)}"
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(creds)
    os.replace(tmp, path)
    return creds


class _CappedServer(web.Server):
    """Connections admitted by the shared per-source caps (as node/rpc/server.py does)."""

    def __init__(self, *args, limiter: SourceLimiter, **kwargs):
        super().__init__(*args, **kwargs)
        self.limiter = limiter

    def connection_made(self, handler, transport) -> None:
        super().connection_made(handler, transport)
        host = (transport.get_extra_info("peername") or ("?",))[0]
        ok, victims = self.limiter.admit(handler, host)
        for victim in victims:
            victim.force_close()
        if not ok:
            transport.close()

    def connection_lost(self, handler, exc=None) -> None:
        self.limiter.release(handler)
        super().connection_lost(handler, exc)


class WalletRPCServer:
    def __init__(self, svc: WalletService, forward, credentials: str):
        self.svc = svc
        self.forward = forward              # (method, params) -> result, raising NodeError
        self._expected = ("Basic " + base64.b64encode(credentials.encode()).decode()).encode()
        self.wallet_thread = ThreadPoolExecutor(1, thread_name_prefix="wallet")
        self.node_threads = ThreadPoolExecutor(4, thread_name_prefix="forward")
        self.limiter = SourceLimiter(MAX_CONNECTIONS, PER_ADDRESS)
        self.runner: web.ServerRunner | None = None
        self.stopping = asyncio.Event()

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()

        def make_request(message, payload, protocol, writer, task):
            self.limiter.touch(protocol)
            return web.BaseRequest(message, payload, protocol, writer, task, loop,
                                   client_max_size=MAX_REQUEST_BYTES)
        server = _CappedServer(self._route, request_factory=make_request, access_log=None, limiter=self.limiter)
        self.runner = web.ServerRunner(server)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        self.wallet_thread.shutdown(wait=True)
        self.node_threads.shutdown(wait=False)

    async def _route(self, request: web.BaseRequest) -> web.Response:
        if request.path != "/" and not request.path.startswith("/wallet/"):
            return web.Response(status=404, text="not found\n")
        if request.method != "POST":
            return web.Response(status=405, text="use POST\n", headers={"Allow": "POST"})
        auth = request.headers.get("Authorization", "")
        if not hmac.compare_digest(auth.encode(), self._expected):
            return web.Response(status=401, text="unauthorized\n",
                                headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
        try:
            body = json.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text="request too large\n")
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _json(_error(None, PARSE_ERROR, "Parse error"), 500)
        if isinstance(body, list):
            if not body or len(body) > MAX_BATCH:
                return _json(_error(None, INVALID_REQUEST, f"a batch holds 1..{MAX_BATCH} calls"), 400)
            return _json([await self.call(req) for req in body], 200)
        reply = await self.call(body)
        status = 200
        if reply["error"] is not None:
            status = 404 if reply["error"]["code"] == METHOD_NOT_FOUND else 500
        return _json(reply, status)

    async def call(self, req) -> dict:
        rid = req.get("id") if isinstance(req, dict) else None
        if not isinstance(req, dict) or not isinstance(req.get("method"), str):
            return _error(rid, INVALID_REQUEST, "Invalid Request object")
        name, params = req["method"], req.get("params")
        if params is None:
            params = []
        if not isinstance(params, (list, dict)):
            return _error(rid, INVALID_REQUEST, "Params must be an array or object")
        loop = asyncio.get_running_loop()
        if name == "stop":                  # stops this daemon; the node has its own URL
            self.stopping.set()
            return {"result": "dotbit wallet stopping", "error": None, "id": rid}
        fn = rpc_methods.METHODS.get(name)
        if fn is None:
            return await loop.run_in_executor(self.node_threads, self._forwarded, rid, name, params)
        return await loop.run_in_executor(self.wallet_thread, self._local, rid, fn, params)

    def _local(self, rid, fn, params) -> dict:
        try:
            bound = (inspect.signature(fn).bind(self.svc, **params) if isinstance(params, dict)
                     else inspect.signature(fn).bind(self.svc, *params))
        except TypeError:
            return _error(rid, MISC_ERROR, f"{fn.__name__}: wrong number of arguments\n{fn.__doc__ or ''}")
        try:
            return {"result": fn(*bound.args, **bound.kwargs), "error": None, "id": rid}
        except RPCError as e:
            return _error(rid, e.code, e.message)
        except Exception as e:  # noqa: BLE001 — one bad call never takes the daemon down
            return self._internal(rid, fn.__name__, e)

    @staticmethod
    def _internal(rid, name: str, e: Exception) -> dict:
        if isinstance(e, (WalletError, StorageError)):     # a refusal meant for the user: one line
            return _error(rid, WALLET_ERROR, str(e))
        if isinstance(e, NodeError):
            code = CLIENT_NOT_CONNECTED if e.code is None else e.code
            return _error(rid, code, e.message)
        log.exception("wallet rpc %s failed", name)
        return _error(rid, MISC_ERROR, f"internal error: {type(e).__name__}: {e}")

    def _forwarded(self, rid, name: str, params) -> dict:
        try:
            return {"result": self.forward(name, params), "error": None, "id": rid}
        except NodeError as e:
            return _error(rid, CLIENT_NOT_CONNECTED if e.code is None else e.code, e.message)


def _error(rid, code: int, message: str) -> dict:
    return {"result": None, "error": {"code": code, "message": message}, "id": rid}


# A mark no caller can put into a string of its own (a name's value, say): it is random per
# process and never shown, so only the daemon's own amounts are unquoted.
_MARK = secrets.token_hex(16)
_DECIMAL = re.compile(rf'"{_MARK}:(-?[0-9]+\.[0-9]+)"')


def dumps(obj) -> bytes:
    """JSON with amounts (Decimal) as exact numbers, as bitcoind writes them: json would
    round them through float, so they go out as marked strings and are unquoted after."""
    text = json.dumps(obj, default=lambda o: f"{_MARK}:{o:.8f}" if isinstance(o, Decimal) else str(o))
    return _DECIMAL.sub(r"\1", text).encode()


def _json(obj, status: int) -> web.Response:
    return web.Response(status=status, body=dumps(obj), content_type="application/json")
