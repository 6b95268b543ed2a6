"""A lean HTTP/1.1 server for the signed resolver API.

Why not aiohttp here (the JSON-RPC server uses it): with a no-op handler aiohttp peaked at
about 3,400 req/s on the 2-core benchmark machine, under the 5,000 req/s target before any
signing; this protocol, serving pre-rendered cached responses, did about 17,000. The API is
small (GETs with a query string, one POST of at most a few KB), so the subset of HTTP/1.1
it needs is small too: keep-alive and pipelining, Content-Length bodies only (no chunked
uploads), bounded header and body sizes, HTTP/1.0 and `Connection: close` honoured, idle
connections closed, a deadline for each request head (HEAD_SECONDS for the whole head, not per
byte: a client trickling one byte every few seconds is still closed), per-source caps and
eviction of the biggest holder's idlest connection when full (core/connlimit.py). Anything it
does not accept gets a 4xx and the connection is closed.
"""
from __future__ import annotations

import asyncio
import logging
import time

from core.connlimit import SourceLimiter

log = logging.getLogger("dotbit.resolver.http")

MAX_HEAD = 8192
MAX_BODY = 4096
MAX_CONNECTIONS = 1024
IDLE_SECONDS = 30.0
HEAD_SECONDS = 10.0      # from a request's first byte to the end of its body
LINGER_SECONDS = 2.0     # an error response's connection is drained this long before it is closed
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 409: "Conflict",
           413: "Payload Too Large",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
           503: "Service Unavailable"}


def render(status: int, ctype: str, body: bytes, close: bool = False) -> bytes:
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n")
    return head.encode("latin-1") + body


def _parse_head(raw: bytes):
    """(method, target, version, headers, body length), or the status to fail with."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        return 400
    method, target, version = parts
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return 400
        headers[name.lower()] = value.strip()
    if "transfer-encoding" in headers:
        return 501
    length = headers.get("content-length", "0")
    if not length.isdigit():
        return 400
    n = int(length)
    if n > MAX_BODY:
        return 413
    return method, target, version, headers, n


class Pending:
    """An answer being made elsewhere, as `dispatch` may return it instead of bytes (a DNS
    worker's API waiting for the node's snapshot). Like an asyncio future for what the server
    uses of one (add_done_callback, result), but its callbacks run as soon as the result is set,
    not one event-loop turn later: under load that turn is a measurable share of a request."""
    __slots__ = ("_value", "_error", "_callbacks", "_done")

    def __init__(self):
        self._value = self._error = None
        self._callbacks: list = []
        self._done = False

    def done(self) -> bool:
        return self._done

    def result(self):
        if self._error is not None:
            raise self._error
        return self._value

    def set_result(self, value) -> None:
        self._value = value
        self._finish()

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._finish()

    def add_done_callback(self, fn) -> None:
        if self._done:
            fn(self)
        else:
            self._callbacks.append(fn)

    def _finish(self) -> None:
        if self._done:
            raise RuntimeError("the answer was already set")
        self._done = True
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            try:
                fn(self)
            except Exception:           # as asyncio does for a future's callbacks: logged, not raised
                log.exception("a pending answer's callback failed")


class _Protocol(asyncio.Protocol):
    def __init__(self, server: "HTTPServer"):
        self.server = server
        self.transport = None
        self.buf = bytearray()
        self.last = time.monotonic()
        self.started = None            # when the request being received began (None: between requests)
        self.lingering = False         # answered with an error: reading only to discard, then closing
        self.waiting = False           # an answer is being made elsewhere (a future): requests queue up

    def connection_made(self, transport):
        self.transport = transport
        host = (transport.get_extra_info("peername") or ("?",))[0]
        ok, victims = self.server.limiter.admit(self, host)
        for v in victims:
            v.transport.close()
        if not ok:
            transport.write(render(503, "text/plain", b"too many connections\n", True))
            transport.close()
            return
        self.server.conns.add(self)

    def connection_lost(self, exc):
        self.server.conns.discard(self)
        self.server.limiter.release(self)

    def pause_writing(self):          # a client that does not read stops being read from
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return
        if self.waiting:                 # answers go out in order: the next request waits its turn
            self.buf += data
            if len(self.buf) > MAX_HEAD + MAX_BODY:
                self.transport.pause_reading()
            return
        # Only whole requests count as activity: a trickled byte does not reset any clock.
        if self.started is None:
            self.started = time.monotonic()
        self.buf += data
        while not self.transport.is_closing():
            if not self.buf:
                self.started = None
                return
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self._fail(431)
                return
            if end > MAX_HEAD:
                return self._fail(431)
            head = _parse_head(bytes(self.buf[:end]))
            if isinstance(head, int):
                return self._fail(head)
            method, target, version, headers, n = head
            if len(self.buf) < end + 4 + n:
                return                              # the body is still on its way
            body = bytes(self.buf[end + 4:end + 4 + n])
            del self.buf[:end + 4 + n]
            self.last = time.monotonic()
            self.started = self.last if self.buf else None     # a pipelined request starts now
            self.server.limiter.touch(self)
            close = version == "HTTP/1.0" or headers.get("connection", "").lower() == "close"
            try:
                out = self.server.dispatch(method, target, headers, body, close)
            except Exception:
                log.exception("internal error serving %s %s", method, target[:100])
                out = render(500, "text/plain", b"internal error\n", True)
                close = True
            if not isinstance(out, bytes):          # a future: the rest of the buffer waits for it
                self.waiting = True
                self.started = None                 # the server's wait, not the client's
                out.add_done_callback(lambda f, m=method, t=target, c=close: self._answered(f, m, t, c))
                return
            if not self._send(out, close):
                return

    def _send(self, out: bytes, close: bool) -> bool:
        """Write one answer; False once the connection is closing."""
        statuses = self.server.statuses
        st = out[9:12]                          # "HTTP/1.1 200 ..."
        statuses[st] = statuses.get(st, 0) + 1
        self.transport.write(out)
        if close:
            self.transport.close()
        return not close

    def _answered(self, fut, method: str, target: str, close: bool) -> None:
        """A future answer is ready: send it, then go on with the requests queued behind it."""
        self.waiting = False
        if self.transport.is_closing():
            return
        try:
            out = fut.result()
        except (Exception, asyncio.CancelledError):
            log.exception("internal error serving %s %s", method, target[:100])
            out, close = render(500, "text/plain", b"internal error\n", True), True
        if self._send(out, close):
            self.transport.resume_reading()
            if self.buf:
                self.data_received(b"")

    def _fail(self, status: int) -> None:
        key = str(status).encode()
        self.server.statuses[key] = self.server.statuses.get(key, 0) + 1
        self.transport.write(render(status, "text/plain", REASONS[status].encode() + b"\n", True))
        # A lingering close (as nginx does): closing a socket with unread input sends an RST,
        # which can destroy the error response before the client reads it. So half-close,
        # discard what still arrives, and close for good after LINGER_SECONDS.
        if self.lingering or not self.transport.can_write_eof():
            self.transport.close()
            return
        self.lingering = True
        self.started = None
        self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)


class HTTPServer:
    """`dispatch(method, target, headers, body, close) -> response bytes` does the work (or a
    Pending, or an asyncio future, of them: a DNS worker's API waits for the node's snapshot that way)."""

    def __init__(self, dispatch, limiter: SourceLimiter | None = None):
        self.dispatch = dispatch
        # Refusals and evictions are read by /metrics from the limiter.
        self.limiter = limiter if limiter is not None else SourceLimiter(MAX_CONNECTIONS)
        self.conns: set = set()
        self.statuses: dict[bytes, int] = {}   # b"200" -> responses sent (read by /metrics)
        self.head_timeouts = 0                  # connections closed for a late head (read by /metrics)
        self._server = None
        self._sweeper = None
        self.port = None

    async def start(self, host: str, port: int, reuse_port: bool = False) -> None:
        """`reuse_port`: one of several processes on the port (DNS workers, SO_REUSEPORT)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Protocol(self), host, port, reuse_address=True,
                                                reuse_port=reuse_port or None, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        """Once a second: close idle connections, and send 408 to heads past their deadline."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for p in list(self.conns):
                if p.started is not None and now - p.started > HEAD_SECONDS:
                    self.head_timeouts += 1
                    p._fail(408)
                elif p.started is None and now - p.last > IDLE_SECONDS:
                    p.transport.close()

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
            for p in list(self.conns):
                p.transport.close()
            await self._server.wait_closed()
