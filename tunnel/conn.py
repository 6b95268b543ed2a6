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
        self._room = asyncio.Event()      # set when a writer waiting in drain() may go on
        st.on_data = self._data
        st.on_eof = self._eof
        st.on_acked = self._on_acked

    def _data(self, data: bytes) -> None:
        self.reader.feed_data(data)

    def _on_acked(self) -> None:
        if self.st.send.queued() <= SEND_BUFFER:
            self._room.set()

    def _eof(self) -> None:
        self._room.set()                  # a reset or a closed tunnel ends drain() too
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
        # Woken by the ack that makes room (not by polling: at 100+ MB/s a 2 ms poll leaves
        # the pipe empty); the timeout only bounds a wait on a state change nobody signals.
        while self.st.send.queued() > SEND_BUFFER and not self.st.reset and not self.session.closed:
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), 0.05)
            except asyncio.TimeoutError:
                pass

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
