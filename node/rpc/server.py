"""JSON-RPC over HTTP, bitcoind-style: POST {"method","params","id"} -> {"result","error","id"},
batches as arrays, HTTP Basic auth checked against the cookie in the data dir.

Everything a method raises is converted here, at the edge: RPCError keeps its code, a
ValidationError becomes RPC_VERIFY_REJECTED with its reason, anything else RPC_MISC_ERROR
(and is logged) — a bad call never takes the node down.
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import os
import secrets

from aiohttp import web

from core.connlimit import SourceLimiter
from core.errors import StoreError, ValidationError

from node.rpc.budget import Offloader
from node.rpc.registry import (INVALID_REQUEST, METHOD_NOT_FOUND, MISC_ERROR, PARSE_ERROR, VERIFY_REJECTED,
                               Registry, RPCError, bind)

log = logging.getLogger("dotbit.rpc")
MAX_REQUEST_BYTES = 32 << 20
MAX_CONNECTIONS = 256
# Half the slots per address: local tools all come from 127.0.0.1, so a tighter cap would lock
# them out as surely as an attacker; eviction still frees slots for other addresses.
PER_ADDRESS = MAX_CONNECTIONS // 2
COOKIE_USER = "__cookie__"


def write_cookie(datadir: str) -> str:
    """A fresh random password per start, readable only by the node's user (mode 0600)."""
    password = secrets.token_hex(32)
    path = os.path.join(datadir, ".cookie")
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)        # a left-over temp file keeps its old mode through O_CREAT
    with os.fdopen(fd, "w") as f:
        f.write(f"{COOKIE_USER}:{password}")
    os.replace(tmp, path)
    return f"{COOKIE_USER}:{password}"


def remove_cookie(datadir: str) -> None:
    try:
        os.unlink(os.path.join(datadir, ".cookie"))
    except FileNotFoundError:
        pass


class _CappedServer(web.Server):
    """aiohttp's low-level server with the shared per-source caps (core/connlimit.py): each
    connection is admitted, or refused, or makes the biggest holder give up its idlest one."""

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


class RPCServer:
    def __init__(self, node, credentials: str, registry: Registry):
        self.node = node
        self.registry = registry
        self._expected = ("Basic " + base64.b64encode(credentials.encode()).decode()).encode()
        self.runner: web.ServerRunner | None = None
        self.offloader = Offloader()          # expensive calls: off the loop, under a deadline
        self.limiter = SourceLimiter(MAX_CONNECTIONS, PER_ADDRESS)     # read by /metrics

    async def start(self, host: str, port: int) -> None:
        # aiohttp's low-level server: one handler, no router or middleware chain, which is a
        # good part of the per-request cost on a one-connection client such as bitcoin-cli.
        loop = asyncio.get_running_loop()

        def make_request(message, payload, protocol, writer, task):
            self.limiter.touch(protocol)          # a whole request head arrived: not idle
            return web.BaseRequest(message, payload, protocol, writer, task, loop,
                                   client_max_size=MAX_REQUEST_BYTES)
        server = _CappedServer(self._route, request_factory=make_request, access_log=None,
                               limiter=self.limiter)
        self.runner = web.ServerRunner(server)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port).start()

    async def _route(self, request: web.BaseRequest) -> web.Response:
        path = request.path
        if path != "/" and not path.startswith("/wallet/"):     # /wallet/NAME: bitcoin-cli -rpcwallet habit
            return web.Response(status=404, text="not found\n")
        if request.method != "POST":
            return web.Response(status=405, text="use POST\n", headers={"Allow": "POST"})
        return await self.handle(request)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        self.offloader.close()

    async def handle(self, request: web.BaseRequest) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not hmac.compare_digest(auth.encode(), self._expected):
            return web.Response(status=401, text="unauthorized\n",
                                headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError, RecursionError):     # RecursionError: [[[[... nested deeper than the decoder goes
            return _json({"result": None, "error": {"code": PARSE_ERROR, "message": "Parse error"},
                          "id": None}, 500)
        if isinstance(body, list):
            if not body:
                return _json({"result": None, "error": {"code": INVALID_REQUEST,
                              "message": "empty batch"}, "id": None}, 400)
            return _json([await self.call(req) for req in body], 200)
        reply = await self.call(body)
        status = 200
        if reply["error"] is not None:
            status = 404 if reply["error"]["code"] == METHOD_NOT_FOUND else 500
        return _json(reply, status)

    async def call(self, req) -> dict:
        rid = req.get("id") if isinstance(req, dict) else None
        try:
            if not isinstance(req, dict) or not isinstance(req.get("method"), str):
                raise RPCError(INVALID_REQUEST, "Invalid Request object")
            method = self.registry.get(req["method"])
            if method is None:
                # bitcoind's words and code, with the name: a typo is then plain to see.
                raise RPCError(METHOD_NOT_FOUND, f"Method not found: {req['method'][:100]!r}")
            args, kwargs = bind(method, req.get("params"))
            if method.offload:
                result = await self.offloader.run(method.fn, self.node, *args, **kwargs)
            else:
                result = method.fn(self.node, *args, **kwargs)
            if method.is_async:
                result = await result
            return {"result": result, "error": None, "id": rid}
        except RPCError as e:
            return {"result": None, "error": {"code": e.code, "message": e.message}, "id": rid}
        except ValidationError as e:
            return {"result": None, "error": {"code": VERIFY_REJECTED, "message": str(e)}, "id": rid}
        except StoreError as e:             # e.g. a stored block body damaged on disk: the operator's to mend
            log.error("rpc %r: %s", req.get("method"), e)
            return {"result": None, "error": {"code": MISC_ERROR, "message": str(e)}, "id": rid}
        except Exception as e:  # never let one call take the server down
            log.exception("rpc %r failed", req.get("method") if isinstance(req, dict) else req)
            return {"result": None, "error": {"code": MISC_ERROR, "message": f"internal error: {e}"},
                    "id": rid}


def _json(obj, status: int) -> web.Response:
    return web.Response(status=status, body=json.dumps(obj).encode(), content_type="application/json")
