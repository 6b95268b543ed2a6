"""A stream of a tunnel as asyncio sees it: `read()` / `write()` / `drain()` / `close()`, and
`pipe()` to join it to a TCP connection both ways (what serve and connect do per connection).

Back-pressure both ways: a writer waits in drain() while the stream holds more than
SEND_BUFFER unsent or unacked bytes; bytes read from the tunnel count against its receive
window until the application has taken them, so a slow reader stops its sender.
"""
from __future__ import annotations

import asyncio

from tunnel import packet as P
from tunnel.stream import SEND_BUFFER


class Connection:
    def __init__(self, endpoint, session, st):
        self.endpoint = endpoint          # has kick(session): flush it soon
        self.session = session
        self.st = st
        self.reader = asyncio.StreamReader(limit=2 ** 20)
        self._acked = asyncio.Event()
        st.on_data = self._data
        st.on_eof = self._eof

    def _data(self, data: bytes) -> None:
        self.reader.feed_data(data)

    def _eof(self) -> None:
        if not self.reader.at_eof():
            self.reader.feed_eof()

    async def read(self, n: int = 65536) -> bytes:
        data = await self.reader.read(n)
        if data:
            self.session.consumed(self.st, len(data))
            self.endpoint.kick(self.session)
        return data

    def write(self, data: bytes) -> None:
        if data:
            self.session.write(self.st, data)
            self.endpoint.kick(self.session)

    async def drain(self) -> None:
        while self.st.send.queued() > SEND_BUFFER and not self.st.reset and not self.session.closed:
            await asyncio.sleep(0.002)

    def close(self) -> None:
        """No more data from us (a FIN); the peer may still send."""
        self.session.finish(self.st)
        self.endpoint.kick(self.session)

    def abort(self) -> None:
        """Drops the stream both ways (RESET): e.g. the service behind the server is down."""
        self.st.reset = True
        self.session.control.append(P.Reset(self.st.sid))
        self._eof()
        self.endpoint.kick(self.session)

    async def wait_sent(self, timeout: float = 30) -> None:
        """Until everything written (and the FIN) is acknowledged."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not (self.st.send.fin_acked or self.st.reset or self.session.closed) and loop.time() < end:
            await asyncio.sleep(0.005)


async def pipe(conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               first: bytes = b"") -> None:
    """Joins a tunnel stream and a TCP connection until both directions ended."""
    async def up():
        if first:
            conn.write(first)
        while data := await reader.read(65536):
            conn.write(data)
            await conn.drain()
        conn.close()

    async def down():
        while data := await conn.read():
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    try:
        await asyncio.gather(up(), down())
        await conn.wait_sent()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
