"""JSON-RPC over HTTP, bitcoind-style: POST {"method","params","id"} -> {"result","error","id"},
batches as arrays, HTTP Basic auth checked against the cookie in the data dir.

Everything a method raises is converted here, at the edge: RPCError keeps its code, a
ValidationError becomes RPC_VERIFY_REJECTED with its reason, anything else RPC_MISC_ERROR
(and is logged) — a bad call never takes the node down.
"""
from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import secrets

from aiohttp import web

from node.chain.errors import ValidationError

from .registry import (INVALID_REQUEST, METHOD_NOT_FOUND, METHODS, MISC_ERROR, PARSE_ERROR,
                       VERIFY_REJECTED, RPCError, bind)

log = logging.getLogger("dotbit.rpc")
MAX_REQUEST_BYTES = 32 << 20
COOKIE_USER = "__cookie__"


def write_cookie(datadir: str) -> str:
    """A fresh random password per start, readable only by the node's user (mode 0600)."""
    password = secrets.token_hex(32)
    path = os.path.join(datadir, ".cookie")
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{COOKIE_USER}:{password}")
    os.replace(tmp, path)
    return f"{COOKIE_USER}:{password}"


def remove_cookie(datadir: str) -> None:
    try:
        os.unlink(os.path.join(datadir, ".cookie"))
    except FileNotFoundError:
        pass


class RPCServer:
    def __init__(self, node, credentials: str):
        self.node = node
        self._expected = "Basic " + base64.b64encode(credentials.encode()).decode()
        self.app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        self.app.router.add_post("/", self.handle)
        self.app.router.add_post("/wallet/{name}", self.handle)   # bitcoin-cli -rpcwallet habit
        self.runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> None:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not hmac.compare_digest(auth.encode(), self._expected.encode()):
            return web.Response(status=401, text="unauthorized\n",
                                headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
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
            method = METHODS.get(req["method"])
            if method is None:
                raise RPCError(METHOD_NOT_FOUND, "Method not found")
            args, kwargs = bind(method, req.get("params"))
            result = method.fn(self.node, *args, **kwargs)
            if method.is_async:
                result = await result
            return {"result": result, "error": None, "id": rid}
        except RPCError as e:
            return {"result": None, "error": {"code": e.code, "message": e.message}, "id": rid}
        except ValidationError as e:
            return {"result": None, "error": {"code": VERIFY_REJECTED, "message": str(e)}, "id": rid}
        except Exception as e:  # never let one call take the server down
            log.exception("rpc %r failed", req.get("method") if isinstance(req, dict) else req)
            return {"result": None, "error": {"code": MISC_ERROR, "message": f"internal error: {e}"},
                    "id": rid}


def _json(obj, status: int) -> web.Response:
    return web.Response(status=status, text=json.dumps(obj), content_type="application/json")
