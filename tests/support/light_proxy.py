"""A lying resolver for tests: a real aiohttp server (in its own thread) in front of a node's
HTTP API that passes everything through, except that /v1/domain answers can be altered by a
`lie(body) -> body` function and re-signed with the resolver's own key, so every lie carries
a perfectly valid signature and only the light client's other checks can catch it."""
from __future__ import annotations

import asyncio
import threading

import aiohttp
from aiohttp import web

from support.harness import free_port
from core.envelope import open_envelope, seal


class LyingProxy:
    def __init__(self, upstream: str, key):
        self.upstream = upstream.rstrip("/")
        self.key = key
        self.sign = key.sign
        self.lie = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = None
        self._session = None

    def __enter__(self):
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self):
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self):
        await self._runner.cleanup()
        await self._session.close()

    async def _handle(self, request):
        async with self._session.get(self.upstream + request.path_qs,
                                     headers={"Accept": "application/msgpack"}) as r:
            data, status = await r.read(), r.status
        lie = self.lie
        if lie is not None and request.path.startswith("/v1/domain/"):
            body = lie(open_envelope(data, self.key.public_key))
            data = seal(body, self.sign, "msgpack")
        return web.Response(body=data, status=status, content_type="application/msgpack")
