"""DNS over UDP and TCP on loopback: moves bytes between sockets and `Responder.handle`.

TCP follows RFC 7766: two-byte length framing, several queries per connection, idle
connections closed after a timeout, a bound on open connections.
"""
from __future__ import annotations

import asyncio
import logging
import struct

log = logging.getLogger("dotbit.resolver.dns")

TCP_IDLE = 10.0
MAX_TCP_CONNECTIONS = 256


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, handle):
        self.handle = handle
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        out = self.handle(data, False)
        if out is not None:
            self.transport.sendto(out, addr)

    def error_received(self, exc):
        pass            # ICMP errors from clients that went away


class DNSServer:
    def __init__(self, responder, host: str = "127.0.0.1", port: int = 0):
        self.responder = responder
        self.host = host
        self.port = port
        self._udp = None
        self._tcp = None
        self._conns: set = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _UDP(self.responder.handle), local_addr=(self.host, self.port))
        self.port = self._udp.get_extra_info("sockname")[1]
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
        log.info("DNS for bit. on %s:%d (UDP and TCP)", self.host, self.port)

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            for w in list(self._conns):
                w.close()
            await self._tcp.wait_closed()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._conns) >= MAX_TCP_CONNECTIONS:
            writer.close()
            return
        self._conns.add(writer)
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE)
                (n,) = struct.unpack(">H", head)
                data = await asyncio.wait_for(reader.readexactly(n), TCP_IDLE)
                out = self.responder.handle(data, True)
                if out is None:
                    break
                writer.write(struct.pack(">H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            self._conns.discard(writer)
            writer.close()
