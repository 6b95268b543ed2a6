"""Merge-mined blocks in the chain state: activation, mixing with nonce-mined blocks, a spoiled
AuxPoW in transit, reorgs across AuxPoW blocks and a restart (LevelDB and memory stores)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from core.errors import ValidationError
from core.primitives import Block
from node.chain.chainstate import ChainState
from node.chain.storage import LevelDB, MemoryDB
from support.auxpow import aux_mine, aux_next
from support.chain import Key, mine

ALICE, BOB = Key.from_seed(1), Key.from_seed(2)


def test_auxpow_refused_before_activation_then_mixed_with_nonce_blocks(chain, mempool, clock, params):
    mine(chain, mempool, ALICE.address, params.auxpow_height - 2, clock)
    clock.now += 600
    early = aux_next(chain, ALICE.address, clock)       # height auxpow_height - 1
    with pytest.raises(ValidationError) as e:
        chain.process_block(early)
    assert e.value.reason == "auxpow-before-activation"
    mine(chain, mempool, ALICE.address, 1, clock)
    assert chain.height == params.auxpow_height - 1
    blocks = aux_mine(chain, ALICE.address, 2, clock)
    mine(chain, mempool, ALICE.address, 1, clock)       # nonce-mined blocks stay valid after it
    aux_mine(chain, ALICE.address, 1, clock)
    assert chain.height == params.auxpow_height + 3
    stored = chain.get_block(blocks[0].hash)
    assert stored.header.auxpow == blocks[0].header.auxpow and stored == blocks[0]


def test_spoiled_auxpow_is_not_remembered_invalid(chain, mempool, clock, params):
    mine(chain, mempool, ALICE.address, params.auxpow_height, clock)
    clock.now += 600
    good = aux_next(chain, ALICE.address, clock)
    aux = good.header.auxpow
    spoiled = Block(replace(good.header, auxpow=replace(aux, coinbase_branch=(bytes(32),))), good.txs)
    assert spoiled.hash == good.hash
    with pytest.raises(ValidationError) as e:
        chain.process_block(spoiled)
    assert e.value.reason == "auxpow-bad-coinbase-branch"
    assert chain.process_block(good) == "active"


def test_reorg_across_auxpow_blocks(chain, mempool, clock, params):
    mine(chain, mempool, ALICE.address, params.auxpow_height, clock)
    fork = chain.tip
    main = aux_mine(chain, ALICE.address, 2, clock)
    side = ChainState(MemoryDB(), params, clock=clock)
    for e in chain.chain[1:fork.height + 1]:
        side.process_block(chain.get_block(e.hash))
    branch = aux_mine(side, BOB.address, 3, clock)
    assert [chain.process_block(b) for b in branch] == ["side", "side", "active"]
    assert chain.tip.hash == branch[-1].hash
    # and back, by merge-mined blocks again
    again = ChainState(MemoryDB(), params, clock=clock)
    for e in chain.chain[1:fork.height + 1]:
        again.process_block(chain.get_block(e.hash))
    for b in main:
        again.process_block(b)
    more = aux_mine(again, ALICE.address, 2, clock)
    assert [chain.process_block(b) for b in more] == ["side", "active"]
    assert chain.tip.hash == more[-1].hash
    assert [chain.entry_at(fork.height + 1 + i).hash for i in range(4)] == [b.hash for b in main + more]


def test_restart_keeps_auxpow_headers(tmp_path, params, clock):
    db = LevelDB(str(tmp_path / "d"))
    c = ChainState(db, params, clock=clock)
    mine(c, None, ALICE.address, params.auxpow_height, clock)
    blocks = aux_mine(c, ALICE.address, 3, clock)
    db.close()
    db = LevelDB(str(tmp_path / "d"))
    c = ChainState(db, params, clock=clock)
    assert c.tip.hash == blocks[-1].hash
    assert c.tip.header.auxpow == blocks[-1].header.auxpow
    assert c.get_block(blocks[0].hash) == blocks[0]
    db.close()


def test_aux_blocks_cache_is_bounded_and_follows_the_tip(chain, mempool, clock, params):
    from node.mining.auxblocks import MAX_AUX_BLOCKS, AuxBlocks
    mine(chain, mempool, ALICE.address, params.auxpow_height, clock)
    aux = AuxBlocks(chain, mempool, clock=clock)
    first, height = aux.create(ALICE.address)
    assert height == chain.height + 1 and aux.create(ALICE.address)[0] == first   # same block while fresh
    for i in range(MAX_AUX_BLOCKS + 5):
        aux.create(Key.from_seed(100 + i).address)
    assert len(aux.blocks) == MAX_AUX_BLOCKS and len(aux._latest) <= MAX_AUX_BLOCKS
    assert aux.solved(first.hash, None) is None                     # dropped, oldest first
    mine(chain, mempool, ALICE.address, 1, clock)
    again, _ = aux.create(ALICE.address)
    assert again.header.prev_hash == chain.tip.hash and len(aux.blocks) == 1
