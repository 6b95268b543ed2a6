"""DNS over TCP (RFC 7766) connection loop: the framing both DNS servers share, the light
client's verified-only stub and the full node's resolver (node/resolver/dns_server.py). It
sits here, not in core/, because it does socket I/O; the node may import light/, never the
reverse.
"""
from __future__ import annotations

import asyncio
import struct

TCP_IDLE = 10.0          # seconds a TCP client may stay silent before we close it


async def serve_dns_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer,
                        conns: set, max_conns: int) -> None:
    """DNS over TCP (RFC 7766): two-byte length-prefixed messages on one connection until the
    client closes it or idles. `answer(wire)` gives the response bytes (or an awaitable of
    them; a list of messages for a zone transfer), or None to close the connection. Shared by the resolver and the light stub."""
    if len(conns) >= max_conns:
        writer.close()
        return
    conns.add(writer)
    try:
        while True:
            (n,) = struct.unpack(">H", await asyncio.wait_for(reader.readexactly(2), TCP_IDLE))
            data = await asyncio.wait_for(reader.readexactly(n), TCP_IDLE)
            out = answer(data)
            if asyncio.iscoroutine(out):
                out = await out
            if out is None:
                break
            for message in out if isinstance(out, list) else (out,):
                writer.write(struct.pack(">H", len(message)) + message)
                await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
        pass
    finally:
        conns.discard(writer)
        writer.close()
