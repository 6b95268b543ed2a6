"""DNS over TCP (RFC 7766) connection loop: the framing both DNS servers share, the light
client's verified-only stub and the full node's resolver (node/resolver/dns_server.py). It
sits here, not in core/, because it does socket I/O; the node may import light/, never the
reverse.
"""
from __future__ import annotations

import asyncio
import struct

from core.connlimit import SourceLimiter

TCP_IDLE = 10.0          # seconds a TCP client may stay silent between messages before we close it
TCP_MESSAGE = 5.0        # seconds from a message's first byte to its last: trickling does not extend it


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    first = await asyncio.wait_for(reader.readexactly(1), TCP_IDLE)
    async with asyncio.timeout(TCP_MESSAGE):
        (n,) = struct.unpack(">H", first + await reader.readexactly(1))
        return await reader.readexactly(n)


async def serve_dns_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer,
                        limiter: SourceLimiter) -> bool:
    """DNS over TCP (RFC 7766): two-byte length-prefixed messages on one connection until the
    client closes it or idles. `answer(wire)` gives the response bytes (or an awaitable of
    them; a list or an async iterator of messages for a zone transfer, each written once the
    one before has drained), or None to close the connection. `limiter`
    holds the per-source caps; when full, the biggest holder's idlest connection is closed
    for a newcomer from elsewhere. True when the client was closed for being too slow.
    Shared by the resolver and the light stub."""
    host = (writer.get_extra_info("peername") or ("?",))[0]
    ok, victims = limiter.admit(writer, host)
    for victim in victims:
        victim.close()
    if not ok:
        writer.close()
        return False
    try:
        while True:
            data = await _read_message(reader)
            out = answer(data)
            if asyncio.iscoroutine(out):
                out = await out
            if out is None:
                break
            if hasattr(out, "__aiter__"):
                async for message in out:
                    writer.write(struct.pack(">H", len(message)) + message)
                    await writer.drain()
            else:
                for message in out if isinstance(out, list) else (out,):
                    writer.write(struct.pack(">H", len(message)) + message)
                    await writer.drain()
            limiter.touch(writer)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    except asyncio.TimeoutError:
        return True
    finally:
        limiter.release(writer)
        writer.close()
    return False
