"""p2p/sync.py hands the blocks read in one event-loop turn to the chain as one group
(node/chain/blockgroup.py). What a liar can do with that: put a bad block and blocks built on
it into a group beside honest blocks. The liar is scored once for its block; an honest peer's
block in the same group is connected and its sender is not scored; a block built on the bad
one is refused without charging the peer that relayed it a second time."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from core.errors import ValidationError
from core.params import REGTEST
from p2p.sync import BlockSync

TIP = b"\x00" * 32


def fake_block(h: bytes, parent: bytes):
    return SimpleNamespace(hash=h, header=SimpleNamespace(prev_hash=parent))


class Peer:
    def __init__(self, pid: int):
        self.id, self.best_height = pid, 0
        self.blocks_recv, self.block_progress = 0, 0.0
        self.inflight: dict = {}
        self.known: set = set()


class View:
    """The chain side: answers scripted per block hash, every group kept as handed over."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.groups: list[list[bytes]] = []
        self.stored: set[bytes] = set()
        self.height, self.tip_hash = 0, TIP

    def known(self, h):
        return (0, 1, True, False) if h == TIP or h in self.stored else None

    def has_block(self, h):
        return h == TIP or h in self.stored

    def submit_blocks(self, blocks):
        self.groups.append([b.hash for b in blocks])
        self.stored.update(b.hash for b in blocks)     # the bad ones are remembered invalid
        out = []
        for b in blocks:
            a = self.answers[b.hash]
            out.append(ValidationError(a, 100) if a.startswith("bad") else a)
        return out


class Net:
    def __init__(self):
        self.scores: list[tuple[int, int, str]] = []

    def misbehave(self, peer, score, why):
        self.scores.append((peer.id, score, why))

    def ready_peers(self):
        return []


def deliver(sync, peer, block):
    sync.inflight[block.hash] = peer          # every block here was asked for
    peer.inflight[block.hash] = 0.0
    sync.on_block(peer, block)


def test_a_liars_block_and_its_descendant_cost_the_liar_once_and_the_honest_nothing():
    liar, honest = Peer(1), Peer(2)
    bad, on_bad, good, good2 = (fake_block(bytes([i]) * 32, p) for i, p in
                                ((1, TIP), (2, b"\x01" * 32), (3, TIP), (4, b"\x03" * 32)))
    view = View({bad.hash: "bad-cb-amount", on_bad.hash: "bad-prevblk", good.hash: "active",
                 good2.hash: "active"})
    net = Net()
    sync = BlockSync(net, view, REGTEST)

    async def one_turn():
        deliver(sync, liar, bad)
        deliver(sync, honest, good)
        deliver(sync, honest, on_bad)          # relayed on top of the liar's block
        deliver(sync, honest, good2)
        assert view.groups == []               # nothing handed over within the turn
        await asyncio.sleep(0)

    asyncio.run(one_turn())
    assert view.groups == [[bad.hash, good.hash, on_bad.hash, good2.hash]]
    assert net.scores == [(1, 100, "block bad-cb-amount")]
    assert not sync.arrived and not sync.waiting


def test_without_an_event_loop_each_block_goes_at_once():
    peer = Peer(1)
    a, b = fake_block(b"\x01" * 32, TIP), fake_block(b"\x02" * 32, b"\x01" * 32)
    view = View({a.hash: "active", b.hash: "active"})
    sync = BlockSync(Net(), view, REGTEST)
    deliver(sync, peer, a)
    deliver(sync, peer, b)
    assert view.groups == [[a.hash], [b.hash]]


def test_a_block_sent_twice_in_one_turn_is_handed_over_once():
    first, second = Peer(1), Peer(2)
    a = fake_block(b"\x01" * 32, TIP)
    view = View({a.hash: "active"})
    sync = BlockSync(Net(), view, REGTEST)

    async def one_turn():
        deliver(sync, first, a)
        deliver(sync, second, a)
        await asyncio.sleep(0)

    asyncio.run(one_turn())
    assert view.groups == [[a.hash]]
