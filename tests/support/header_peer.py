"""A p2p listener that serves a given header chain as its main chain: version/verack, and
getheaders answered like a node's chain view (the headers after the highest locator hash it
knows). The light bench syncs from it; the lying-peer test serves tampered chains with it."""
from __future__ import annotations

import asyncio
import time

from core import p2pwire as W
from core.crypto import sha256d
from core.params import REGTEST


async def serve_headers(headers: list[bytes], magic: bytes = REGTEST.magic):
    """Starts the listener on a free loopback port; returns (server, port)."""
    index = {sha256d(raw[:112]): h for h, raw in enumerate(headers)}   # wire form: hash the 112 bytes

    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readexactly(W.FRAME_HEADER.size)
                msg = W.decode_payload(await reader.readexactly(W.decode_frame_header(magic, head)))
                if isinstance(msg, W.Version):
                    writer.write(W.encode_frame(magic, W.Version(1, 1, len(headers) - 1, 1, int(time.time()), 0)))
                    writer.write(W.encode_frame(magic, W.Verack()))
                elif isinstance(msg, W.GetHeaders):
                    start = next((index[h] for h in msg.locator if h in index), 0)
                    writer.write(W.encode_frame(magic, W.Headers(tuple(headers[start + 1:start + 1 + W.MAX_HEADERS]))))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            writer.close()
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]
