"""Choosing whom to dial (p2p/connections.py): anchors first, then picks from the book from
networks none of our outbound peers is in (loopback exempt); a feeler dials a "new" address,
moves it to "tried" on a completed handshake and hangs up. Real books, real sockets."""
from __future__ import annotations

import asyncio
import random
import time

from core.params import REGTEST
from node.service import Node
from p2p.addrpolicy import addr_group, is_loopback
from p2p.connections import Connections, P2PConfig
from support.harness import free_port


class Dialler(Connections):
    """Connections with nothing said over them: enough to ask whom it would dial."""

    def _add_peer(self, peer) -> None:
        self.peers[peer.id] = peer


def test_picks_come_from_distinct_networks_after_the_anchors(tmp_path):
    c = Dialler(str(tmp_path), P2PConfig(port=free_port()))
    c.book.rng = random.Random(3)
    c.book.key = bytes(range(32))          # the same buckets on every run
    for i in range(40):
        c.book.add(f"203.0.113.{i + 1}", 18600, time.time() - 60, "198.51.100.1")
    for i in range(5):
        c.book.add(f"10.{i}.0.1", 18600, time.time() - 60, f"10.{i}.9.9")
    for port in (1, 2, 3):
        c.book.add("127.0.0.1", port, time.time() - 60)
    c.anchors = [("192.0.2.9", 1)]
    picks = c._automatic_targets(8, set(), time.monotonic())
    assert picks[0] == ("192.0.2.9", 1) and c.anchors == []         # an anchor is tried once
    groups = [addr_group(h) for h, _ in picks if not is_loopback(h)]
    assert len(groups) == len(set(groups)), picks
    assert len(picks) >= 4 and sum(addr_group(h) == "203.0.113.0/24" for h, _ in picks) <= 1
    # a network already dialled counts too
    c._dialling.add(("10.0.0.1", 18600))
    later = c._automatic_targets(8, set(c._dialling), time.monotonic())
    assert not any(addr_group(h) == "10.0.0.0/24" for h, _ in later)
    # back-off records of addresses dialled long ago are forgotten (the book reaches thousands)
    now = time.monotonic()
    c._retry_at = {(f"10.9.{i >> 8}.{i & 255}", 1): now - 1 for i in range(3000)}
    c._retry_at[("10.8.0.1", 1)] = now + 30
    c._forget_retries(now)
    assert c._retry_at == {("10.8.0.1", 1): now + 30}


async def _until(fn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def _feeler(tmp_path):
    pa = free_port()
    a = Node(REGTEST, str(tmp_path / "a"), rpc_port=free_port(), p2p=P2PConfig(port=pa))
    # no outbound slots at all: the only dial b makes is a feeler
    b = Node(REGTEST, str(tmp_path / "b"), rpc_port=free_port(),
             p2p=P2PConfig(port=free_port(), max_outbound=0, feeler_interval=0.2))
    await a.start()
    await b.start()
    try:
        key = f"127.0.0.1:{pa}"
        b.p2p.book.add("127.0.0.1", pa, time.time() - 3600, "198.51.100.1")
        assert not b.p2p.book.entries[key].tried
        await _until(lambda: b.p2p.book.entries[key].tried)
        await _until(lambda: not b.p2p.peers)                       # and hung up on
        assert b.p2p.dials["connected"] >= 1 and b.p2p.anchor_targets() == []
    finally:
        await b.stop()
        await a.stop()


def test_a_feeler_moves_a_live_address_to_tried_and_hangs_up(tmp_path):
    asyncio.run(_feeler(tmp_path))
