"""Forward mode: plain TCP accepted on a loopback port, relayed over a TLS connection to the
target whose certificate a verified TLSA row accepted. Each local connection looks the name
up again (the light client syncs headers at most every few seconds), so a rotated key is
seen; a failed check closes that local connection and prints one line, the forwarder stays.
Connections are bounded: past --max-connections a new one is closed at once."""
from __future__ import annotations

import asyncio
import contextlib
import sys
import time

from connect.lookup import lookup
from connect.target import CheckFailed, Target
from connect.tls import connect_async

IDLE = 300.0            # seconds a relayed connection may stay silent both ways
CHUNK = 65536


class Forwarder:
    def __init__(self, client, target: Target, max_connections: int, timeout: float, say):
        self.client = client
        self.target = target
        self.max_connections = max_connections
        self.timeout = timeout
        self.say = say
        self.active = 0
        self.server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(self._accept, host, port)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _accept(self, reader, writer) -> None:
        if self.active >= self.max_connections:
            print(f"dotbit-connect: note: over --max-connections ({self.max_connections}), a local "
                  f"connection was closed", file=sys.stderr, flush=True)
            writer.close()
            return
        self.active += 1
        try:
            await self._serve(reader, writer)
        finally:
            self.active -= 1
            writer.close()

    async def _serve(self, reader, writer) -> None:
        try:
            found = await lookup(self.client, self.target, False, self.say)
            up_reader, up_writer = await connect_async(self.target, found, self.timeout, self.say)
        except CheckFailed as e:
            print(f"dotbit-connect: {e} (local connection closed)", file=sys.stderr, flush=True)
            return
        relay = _Relay()
        up = asyncio.ensure_future(relay.pipe(reader, up_writer))
        try:
            await relay.pipe(up_reader, writer)      # the server's side decides when we are done
        finally:
            up.cancel()
            up_writer.close()


class _Relay:
    """Two copies sharing one idle clock: a long download keeps the quiet upload open, but
    IDLE seconds with nothing either way ends both."""

    def __init__(self):
        self.last = time.monotonic()

    async def pipe(self, reader, writer) -> None:
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(CHUNK), IDLE)
                except asyncio.TimeoutError:
                    if time.monotonic() - self.last >= IDLE:
                        return
                    continue
                if not data:
                    break
                self.last = time.monotonic()
                writer.write(data)
                await writer.drain()
        except OSError:
            return
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():       # plain TCP to the local client; TLS cannot half-close
                writer.write_eof()
