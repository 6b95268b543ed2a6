"""Two nodes in one event loop on real loopback sockets: a self-connection is detected by
the version nonce; the ephemeral-key hook relays only
what its handler accepts and punishes what it rejects; the address book is exchanged and
persisted; inbound connections stop at --maxpeers."""
from __future__ import annotations

import asyncio
import json
import os

from core.errors import ValidationError
from core.params import REGTEST
from node.service import Node
from support.harness import free_port
from p2p import messages as M
from p2p.network import P2PConfig


async def _until(fn, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not fn():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def test_ephkey_hook_addrbook_and_peer_cap(tmp_path):
    asyncio.run(_scenario(tmp_path))


async def _scenario(tmp_path):
    pa, pb = free_port(), free_port()
    a = Node(REGTEST, str(tmp_path / "a"), rpc_port=free_port(), p2p=P2PConfig(port=pa, maxpeers=2))
    b = Node(REGTEST, str(tmp_path / "b"), rpc_port=free_port(),
             p2p=P2PConfig(port=pb, connect=[("127.0.0.1", pa), ("127.0.0.1", pb)]))   # and itself
    await a.start()
    await b.start()
    raw = []
    try:
        got = []

        def handler(payload, peer_id):
            if payload.startswith(b"bad"):
                raise ValidationError("bad-ephkey", 100, "signature does not verify")
            got.append(payload)
            return payload.startswith(b"ok")

        a.p2p.register_handler("ephkey", handler)
        b.p2p.register_handler("ephkey", lambda p, i: True)
        await _until(lambda: a.p2p.ready_peers() and b.p2p.ready_peers())
        await _until(lambda: ("127.0.0.1", pb) in b.p2p._self_targets)    # version nonce matched
        assert len(b.p2p.peers) == 1
        b.p2p.broadcast_ephkey(b"ok:key1")
        await _until(lambda: got == [b"ok:key1"])
        # a accepted and would relay it: it now serves it to others by its id
        assert b"ok:key1" in a.p2p.ephkeys.values()
        # the address book: b learnt a's address by dialling it and saves it on stop
        assert f"127.0.0.1:{pa}" in b.p2p.book and b.p2p.book.entries[f"127.0.0.1:{pa}"].tried
        # a raw peer sending a payload the handler rejects is banned
        r, w = await asyncio.open_connection("127.0.0.1", pa, local_addr=("127.0.0.8", 0))
        raw.append(w)
        w.write(M.encode_frame(REGTEST.magic, M.Version(1, 1, 0, 99, 0, 0, b"")))
        w.write(M.encode_frame(REGTEST.magic, M.Verack()))
        w.write(M.encode_frame(REGTEST.magic, M.EphKey(b"bad:forged")))
        await w.drain()
        await _until(lambda: a.p2p.bans.is_banned("127.0.0.8"))
        # maxpeers=2 on a: b plus one more; the next inbound is hung up on at once
        await _until(lambda: len(a.p2p.peers) == 1)
        r2, w2 = await asyncio.open_connection("127.0.0.1", pa, local_addr=("127.0.0.9", 0))
        raw.append(w2)
        await _until(lambda: len(a.p2p.peers) == 2)
        r3, w3 = await asyncio.open_connection("127.0.0.1", pa, local_addr=("127.0.0.10", 0))
        raw.append(w3)
        assert await asyncio.wait_for(r3.read(), 5) == b""
    finally:
        for w in raw:
            w.close()
        await b.stop()
        await a.stop()
    with open(os.path.join(tmp_path, "b", "peers.json")) as f:
        assert ["127.0.0.1", pa] in [row[:2] for row in json.load(f)["tried"]]
    with open(os.path.join(tmp_path, "a", "banlist.json")) as f:
        assert "127.0.0.8" in json.load(f)
