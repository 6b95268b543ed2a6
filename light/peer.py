"""A full node as a header source, over the p2p protocol (docs/protocol.md §6).

A resolver that is the only source of headers decides what the world looks like: it can keep
serving an old chain forever. Full nodes on the p2p network know the chain the miners extend,
so the light client asks them too: version handshake, then getheaders/headers with a locator
of our own chain. The headers are checked exactly like a resolver's (verify.extend_headers);
nothing a peer says is believed without proof of work.

We announce no services and no listening port: the node treats us as an inbound peer that
serves nothing. While we wait for headers we answer what a node may ask of any peer (ping,
getheaders with an empty headers) and ignore announcements.
"""
from __future__ import annotations

import asyncio
import os
import time

from core.errors import DecodeError
from core.p2pwire import (FRAME_HEADER, PROTOCOL_VERSION, GetHeaders, Headers, Ping, Pong, Verack, Version,
                          decode_frame_header, decode_payload, encode_frame)
from light.verdict import VerifyError

USER_AGENT = b"dotbit-resolve"


class PeerSource:
    def __init__(self, host: str, port: int, params, height: int = 0, timeout: float = 10):
        self.host, self.port = host, port
        self.params = params
        self.height = height              # ours, announced in the version message
        self.timeout = timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    @property
    def name(self) -> str:
        return f"peer {self.host}:{self.port}"

    async def __aenter__(self):
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise VerifyError("connect", f"{self.name}: {type(e).__name__} {e}".strip()) from None
        await self._handshake()
        return self

    async def __aexit__(self, *exc):
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass

    async def _handshake(self) -> None:
        self._send(Version(PROTOCOL_VERSION, 0, self.height, int.from_bytes(os.urandom(8), "little"),
                           int(time.time()), 0, USER_AGENT))
        got_version = got_verack = False
        deadline = time.monotonic() + self.timeout
        while not (got_version and got_verack):
            msg = await self._recv(deadline)
            if isinstance(msg, Version) and not got_version:
                got_version = True
                self._send(Verack())
            elif isinstance(msg, Verack):
                got_verack = True

    async def headers_after(self, locator: list[bytes]) -> list[bytes]:
        """The peer's main-chain headers after the first locator hash it knows (at most 2000)."""
        self._send(GetHeaders(tuple(locator)))
        deadline = time.monotonic() + self.timeout
        while True:
            msg = await self._recv(deadline)
            if isinstance(msg, Headers):
                return list(msg.headers)

    def _send(self, msg) -> None:
        self.writer.write(encode_frame(self.params.magic, msg))

    async def _recv(self, deadline: float):
        """The next message, after answering what a node asks of every peer. `deadline`
        (monotonic) bounds the whole wait, so a peer chattering pings never holds us up."""
        while True:
            try:
                head = await asyncio.wait_for(self.reader.readexactly(FRAME_HEADER.size), deadline - time.monotonic())
                body = await asyncio.wait_for(self.reader.readexactly(decode_frame_header(self.params.magic, head)),
                                              deadline - time.monotonic())
                msg = decode_payload(body)
            except asyncio.TimeoutError:
                raise VerifyError("connect", f"{self.name}: no answer in {self.timeout:g} s") from None
            except (OSError, asyncio.IncompleteReadError) as e:
                raise VerifyError("connect", f"{self.name}: connection lost ({type(e).__name__})") from None
            except DecodeError as e:
                raise VerifyError("header", f"{self.name}: bad message: {e}") from None
            if isinstance(msg, Ping) and not isinstance(msg, Pong):
                self._send(Pong(msg.nonce))
            elif isinstance(msg, GetHeaders):
                self._send(Headers(()))          # we hold no blocks to offer
            elif msg is not None:
                return msg
