"""The header tree's anti-DoS bounds against a fake chain of 200 pow-limit blocks: runs that
cannot reach the threshold, the per-peer allowance of headers that do not beat the tip, and
pruning of dead branches (a leaving peer's, children of them that others sent, and all of
them when the tree is full)."""
from __future__ import annotations

import pytest

from core.consensus import block_work
from core.errors import ValidationError
from core.params import REGTEST
from core.primitives import Block, Header, Tx, TxOut
from node.chain.chainstate import ChainState
from node.chain.orphans import MAX_ORPHAN_BYTES
from node.chain.storage import MemoryDB
from node.mining.miner import solve_quick
from p2p import headers as H

W = block_work(REGTEST.pow_limit_bits)


def branch(parent: Header, n: int, salt: int) -> list[Header]:
    out = []
    for i in range(n):
        hdr = Header(1, parent.hash, salt.to_bytes(4, "little") + bytes(28), bytes(32), parent.time + 1,
                     REGTEST.pow_limit_bits, 0)
        parent = solve_quick(hdr, REGTEST.pow_limit)
        out.append(parent)
    return out


class FakeView:
    def __init__(self, headers: list[Header]):
        self.rows = {hd.hash: (i, (i + 1) * W, hd) for i, hd in enumerate(headers)}
        self.tip_hash = headers[-1].hash

    def known(self, h):
        r = self.rows.get(h)
        return None if r is None else (r[0], r[1], True, False)

    def header(self, h):
        r = self.rows.get(h)
        return None if r is None else r[2]

    def has_block(self, h):
        return h in self.rows


@pytest.fixture(scope="module")
def chain():
    g = REGTEST.genesis.header
    return [g] + branch(g, 200, 0)


def tree_on(chain):
    return H.HeaderTree(FakeView(chain), REGTEST, lambda: chain[-1].time)


def test_runs_below_the_threshold_cannot_lead(chain):
    tree = tree_on(chain)
    assert tree.threshold() == (201 - H.ANTI_DOS_BLOCKS) * W
    assert tree.cannot_lead(branch(chain[0], 50, 1))                # forks at genesis, far short
    assert not tree.cannot_lead(branch(chain[100], 10, 2))          # close enough to the tip
    assert not tree.cannot_lead(branch(chain[-1], 1, 3))            # extends the tip
    assert not tree.cannot_lead(branch(branch(chain[0], 1, 4)[0], 1, 5))   # unknown parent: add() says


def test_low_work_allowance_per_peer_and_pruning(chain, monkeypatch):
    monkeypatch.setattr(H, "MAX_LOW_WORK_PER_PEER", 6)
    tree = tree_on(chain)
    for s in range(3):                                      # 3 x 2 headers that do not beat the tip
        for hd in branch(chain[-4], 2, 10 + s):
            tree.add(hd, peer=7)
    with pytest.raises(ValidationError) as e:
        tree.add(branch(chain[-4], 1, 20)[0], peer=7)
    assert e.value.reason == "too-many-low-work-headers" and e.value.ban_score > 0
    own = branch(chain[-4], 2, 30)
    tree.add(own[0], peer=8)                               # other peers keep their own allowance
    mine = branch(own[0], 1, 31)[0]
    tree.add(mine, peer=9)                                 # a child of peer 8's low-work header
    ahead = branch(chain[-1], 2, 40)
    for hd in ahead:
        tree.add(hd, peer=7)                               # leading past the tip: not charged
    assert tree.low_work == {7: 6, 8: 1, 9: 1} and tree.best.hash == ahead[-1].hash
    tree.peer_gone(7)
    assert len(tree.nodes) == 4 and 7 not in tree.low_work   # its leading branch stays
    tree.peer_gone(8)                                      # takes peer 9's child along with it
    assert set(tree.nodes) == {hd.hash for hd in ahead} and tree.low_work == {}


def test_a_full_tree_still_takes_the_header_that_extends_the_tip(chain, monkeypatch):
    """The issue's symptom: a tree filled with branches that do not beat the tip refused every
    new header, honest ones included, and the node stopped following the chain."""
    monkeypatch.setattr(H, "MAX_TREE", 20)
    tree = tree_on(chain)
    for s in range(10):                                     # 10 peers, each within its allowance
        for hd in branch(chain[-3], 2, 50 + s):
            tree.add(hd, peer=100 + s)
    assert len(tree.nodes) == 20
    honest = branch(chain[-1], 1, 60)[0]
    assert tree.add(honest).hash == honest.hash and set(tree.nodes) == {honest.hash}
    assert tree.low_work == {}


def test_orphan_pool_is_bounded_in_bytes():
    chain = ChainState(MemoryDB(), REGTEST)
    fat = Tx(1, (), tuple(TxOut(1, bytes(20)) for _ in range(3000)), 1)
    size = fat.size
    for i in range(MAX_ORPHAN_BYTES // size + 20):
        hdr = Header(1, i.to_bytes(32, "little"), bytes(32), bytes(32), 0, REGTEST.pow_limit_bits, 0)
        chain.orphans.add(hdr.hash, Block(hdr, (fat,)))
    assert chain.orphans.size <= MAX_ORPHAN_BYTES
    assert chain.orphans.size == sum(112 + b.txs[0].size for b in chain.orphans.values())


def test_merge_mined_headers_are_checked_then_kept_without_their_auxpow(chain):
    from dataclasses import replace
    from support.auxpow import merge
    from node.mining.auxbuild import aux_header
    tree = tree_on(chain)
    tip = chain[-1]
    hdr = aux_header(Header(1, tip.hash, bytes(32), bytes(32), tip.time + 1, REGTEST.pow_limit_bits, 0),
                     REGTEST.auxpow_chain_id)
    good = merge(hdr, REGTEST.pow_limit, REGTEST.auxpow_chain_id)
    spoiled = replace(good, auxpow=replace(good.auxpow, coinbase_branch=(bytes(32),)))
    with pytest.raises(ValidationError) as e:
        tree.add(spoiled, peer=1)
    assert e.value.reason == "auxpow-bad-coinbase-branch"
    node = tree.add(good, peer=1)                    # the same hash, now with a good AuxPoW
    assert node.hash == good.hash and node.header.auxpow is None
    assert node.header == replace(good, auxpow=None)
