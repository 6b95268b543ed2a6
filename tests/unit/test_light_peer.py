"""light.peer.PeerSource against small in-process p2p listeners: the handshake, answering a
node's pings and getheaders while waiting, and peers that misbehave (chatter without ever
sending headers, another network's magic) failing with one named check."""
from __future__ import annotations

import asyncio

import pytest

from core import p2pwire as W
from core.params import MAIN, REGTEST
from light.peer import PeerSource
from light.verdict import VerifyError

MAGIC = REGTEST.magic


async def listener(behave):
    """A server whose connection handler is `behave(reader, writer, got)`; `got` collects what
    the client sent."""
    got = []

    async def serve(reader, writer):
        try:
            await behave(reader, writer, got)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], got


async def read(reader):
    head = await reader.readexactly(W.FRAME_HEADER.size)
    return W.decode_payload(await reader.readexactly(W.decode_frame_header(MAGIC, head)))


def send(writer, msg, magic=MAGIC):
    writer.write(W.encode_frame(magic, msg))


async def handshake(reader, writer, got):
    got.append(await read(reader))
    send(writer, W.Version(1, 1, 5, 9, 0, 0))
    send(writer, W.Verack())
    got.append(await read(reader))


def run(behave, timeout=2.0):
    async def main():
        server, port, got = await listener(behave)
        try:
            async with PeerSource("127.0.0.1", port, REGTEST, timeout=timeout) as peer:
                return await peer.headers_after([bytes(32)]), got
        finally:
            server.close()
    return asyncio.run(main())


def test_handshake_and_headers_with_pings_and_getheaders_answered():
    async def node(reader, writer, got):
        await handshake(reader, writer, got)
        send(writer, W.Ping(7))
        send(writer, W.GetHeaders((bytes(32),)))
        send(writer, W.Inv(((W.INV_BLOCK, bytes(32)),)))
        for _ in range(3):                       # our getheaders, then the pong and the empty headers
            got.append(await read(reader))
        send(writer, W.Headers((bytes(112),)))
    headers, got = run(node)
    assert headers == [bytes(112)]
    version = got[0]
    assert isinstance(version, W.Version) and version.services == 0 and version.listen_port == 0
    assert isinstance(got[1], W.Verack) and got[2] == W.GetHeaders((bytes(32),))
    assert got[3] == W.Pong(7) and got[4] == W.Headers(())


def test_a_peer_that_chatters_but_never_sends_headers_times_out():
    async def chatter(reader, writer, got):
        await handshake(reader, writer, got)
        while True:
            send(writer, W.Inv(((W.INV_TX, bytes(32)),)))
            await asyncio.sleep(0.05)
    with pytest.raises(VerifyError, match="connect: .* no answer in 0.5 s"):
        run(chatter, timeout=0.5)


def test_another_networks_peer_is_refused():
    async def mainnet(reader, writer, got):
        await read(reader)
        send(writer, W.Version(1, 1, 5, 9, 0, 0), magic=MAIN.magic)
    with pytest.raises(VerifyError, match="header: .*bad message: .*bad magic"):
        run(mainnet)


def test_nobody_listening_is_a_connect_failure():
    async def main():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        async with PeerSource("127.0.0.1", port, REGTEST, timeout=1):
            pass
    with pytest.raises(VerifyError, match="connect: peer 127.0.0.1:"):
        asyncio.run(main())
