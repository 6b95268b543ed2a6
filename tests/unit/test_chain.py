"""Chain state: connecting blocks, spending, rejection reasons, reorgs and invalid branches."""
from __future__ import annotations

from dataclasses import replace

import pytest

from support.chain import COIN, Key, make_block, mine, spend
from node.chain import layout as L
from node.chain.blockgroup import process_blocks
from node.chain.blockindex import new_entry
from node.chain.chainstate import ChainState
from core.errors import StoreError, ValidationError
from core.primitives import Block, Tx, TxIn, TxOut, block_merkle_root
from node.chain.storage import MemoryDB
from node.mining.miner import solve_quick
from core.params import MAIN

ALICE, BOB = Key.from_seed(1), Key.from_seed(2)


def projection(db) -> dict:
    return {p: list(db.iterator(prefix=p)) for p in L.PROJECTIONS}


def replay(chain) -> dict:
    """Projections of a fresh chain state fed the same main-chain blocks."""
    fresh = ChainState(MemoryDB(), chain.params, clock=chain.clock)
    for e in chain.chain[1:]:
        assert fresh.process_block(chain.get_block(e.hash)) == "active"
    return projection(fresh.db)


def test_genesis_and_reopen(tmp_path, params):
    from node.chain.storage import LevelDB
    db = LevelDB(str(tmp_path / "d"))
    c = ChainState(db, params)
    assert c.height == 0 and c.tip.hash == params.genesis_hash
    db.close()
    db = LevelDB(str(tmp_path / "d"))
    assert ChainState(db, params).tip.hash == params.genesis_hash
    with pytest.raises(StoreError):
        ChainState(db, MAIN)
    db.close()


def test_mine_and_spend(chain, mempool, clock):
    mine(chain, mempool, ALICE.address, 101, clock)
    assert chain.height == 101
    first_cb = chain.get_block(chain.entry_at(1).hash).txs[0]
    # Height 101 connecting now: the coinbase from height 1 is 100 deep at the next block.
    tx = spend(mempool, ALICE, [(first_cb.txid, 0)], [(BOB.address, 10 * COIN)])
    mempool.accept(tx)
    assert tx.txid in mempool
    mine(chain, mempool, ALICE.address, 1, clock)
    assert tx.txid not in mempool
    assert chain.get_coin(tx.txid, 0).value == 10 * COIN
    assert chain.get_coin(first_cb.txid, 0) is None
    block = chain.get_block(chain.tip.hash)
    assert block.txs[1].txid == tx.txid
    assert block.txs[0].outputs[0].value == 50 * COIN + 1000     # subsidy + fee
    assert projection(chain.db) == replay(chain)


def test_rejections(chain, mempool, clock):
    mine(chain, mempool, ALICE.address, 102, clock)
    cb1 = chain.get_block(chain.entry_at(1).hash).txs[0]
    cb2 = chain.get_block(chain.entry_at(2).hash).txs[0]
    cb_young = chain.get_block(chain.entry_at(100).hash).txs[0]

    def reason(tx):
        with pytest.raises(ValidationError) as e:
            mempool.accept(tx)
        return e.value.reason

    assert reason(spend(mempool, ALICE, [(cb_young.txid, 0)], [(BOB.address, COIN)])) \
        == "bad-txns-premature-spend-of-coinbase"
    good = spend(mempool, ALICE, [(cb1.txid, 0)], [(BOB.address, COIN)])
    bad_sig = replace(good, inputs=(replace(good.inputs[0], sig=bytes(64)),))
    assert reason(bad_sig) == "bad-txns-bad-signature"
    stolen = Tx(1, (TxIn(cb1.txid, 0, good.inputs[0].sig, BOB.pubkey),), good.outputs)
    assert reason(stolen) == "bad-txns-wrong-key"
    too_much = spend(mempool, ALICE, [(cb1.txid, 0)], [(BOB.address, 51 * COIN)], fee=0)
    assert reason(too_much) == "bad-txns-in-belowout"
    # high-S variant of a valid signature is refused (malleability)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    sig = good.inputs[0].sig
    high_s = sig[:32] + (n - int.from_bytes(sig[32:], "big")).to_bytes(32, "big")
    assert reason(replace(good, inputs=(replace(good.inputs[0], sig=high_s),))) == "bad-txns-bad-signature"
    mempool.accept(good)
    double = spend(chain, ALICE, [(cb1.txid, 0)], [(BOB.address, 2 * COIN)])
    assert reason(double) == "txn-mempool-conflict"
    assert reason(good) == "txn-already-in-mempool"
    # A block carrying a double spend inside itself is invalid and remembered.
    d2a = spend(chain, ALICE, [(cb2.txid, 0)], [(BOB.address, COIN)])
    d2b = spend(chain, ALICE, [(cb2.txid, 0)], [(BOB.address, 3 * COIN)])
    bad = make_block(chain, None, ALICE.address, clock, extra_txs=[d2a, d2b])
    with pytest.raises(ValidationError) as e:
        chain.process_block(bad)
    assert e.value.reason == "bad-txns-inputs-missingorspent"
    with pytest.raises(ValidationError) as e:
        chain.process_block(bad)
    assert e.value.reason == "duplicate-invalid"
    assert chain.tip.hash != bad.hash
    # Coinbase claiming more than subsidy + fees.
    t = make_block(chain, None, ALICE.address, clock)
    cb = t.txs[0]
    greedy_cb = Tx(1, (), (TxOut(51 * COIN, ALICE.address),), cb.locktime)
    hdr = replace(t.header, merkle_root=block_merkle_root([greedy_cb]))
    greedy = Block(solve_quick(hdr, 1 << 255), (greedy_cb,))
    with pytest.raises(ValidationError) as e:
        chain.process_block(greedy)
    assert e.value.reason == "bad-cb-amount"


def test_reorg_and_invalid_branch(chain, mempool, clock, params):
    mine(chain, mempool, ALICE.address, 101, clock)
    fork = chain.tip
    cb1 = chain.get_block(chain.entry_at(1).hash).txs[0]
    pay = spend(mempool, ALICE, [(cb1.txid, 0)], [(BOB.address, 7 * COIN)])
    mempool.accept(pay)
    main_blocks = mine(chain, mempool, ALICE.address, 2, clock)
    assert chain.get_coin(pay.txid, 0) is not None
    # A competing branch from `fork`, 3 blocks, mined by Bob, built on a second chain state.
    side = ChainState(MemoryDB(), params, clock=clock)
    for e in chain.chain[1:fork.height + 1]:
        side.process_block(chain.get_block(e.hash))
    side_blocks = mine(side, None, BOB.address, 3, clock)
    assert chain.process_block(side_blocks[0]) == "side"
    assert chain.process_block(side_blocks[1]) == "side"     # equal work: first seen stays
    assert chain.tip.hash == main_blocks[-1].hash
    assert chain.process_block(side_blocks[2]) == "active"
    assert chain.tip.hash == side_blocks[2].hash
    # The payment left the chain and went back to the mempool.
    assert chain.get_coin(pay.txid, 0) is None and pay.txid in mempool
    assert projection(chain.db) == replay(chain)
    # Now a heavier branch (4 blocks) whose second block is invalid: the reorg attempt fails
    # at it, the node returns to its chain, and the bad block and its children are remembered.
    side2 = ChainState(MemoryDB(), params, clock=clock)
    for e in chain.chain[1:fork.height + 1]:
        side2.process_block(chain.get_block(e.hash))
    b1 = mine(side2, None, BOB.address, 1, clock)[0]
    b2 = raw_block(b1, fork.height + 2, 60 * COIN)          # pays itself too much
    b3 = raw_block(b2, fork.height + 3, COIN)
    b4 = raw_block(b3, fork.height + 4, COIN)
    tip_before = chain.tip.hash
    for b in (b1, b2, b3):
        assert chain.process_block(b) == "side"
    with pytest.raises(ValidationError) as e:
        chain.process_block(b4)
    assert e.value.reason == "bad-cb-amount"
    assert chain.tip.hash == tip_before
    assert chain.entries[b2.hash].invalid and chain.entries[b4.hash].invalid
    assert not chain.entries[b1.hash].invalid
    b5 = raw_block(b4, fork.height + 5, COIN)
    with pytest.raises(ValidationError) as e:
        chain.process_block(b5)
    assert e.value.reason == "bad-prevblk"
    assert projection(chain.db) == replay(chain)
    # The remembered state survives a reopen of the same store.
    again = ChainState(chain.db, params, clock=clock)
    assert again.entries[b2.hash].invalid and again.tip.hash == tip_before


def raw_block(prev: Block, height: int, cb_value: int) -> Block:
    cb = Tx(1, (), (TxOut(cb_value, BOB.address),), height)
    hdr = replace(prev.header, prev_hash=prev.hash, merkle_root=block_merkle_root([cb]),
                  time=prev.header.time + 600, nonce=0)
    return Block(solve_quick(hdr, 1 << 255), (cb,))


def test_decode_rejects_trailing_and_oversize():
    from core.errors import DecodeError
    tx = Tx(1, (TxIn(bytes(32), 0, bytes(64), bytes(33)),), (TxOut(1, bytes(20)),))
    with pytest.raises(DecodeError):
        Tx.from_bytes(tx.to_bytes() + b"\x00")
    with pytest.raises(DecodeError):
        Tx.from_bytes(b"\x91" + b"\xc4\xff\xff" + bytes(1) * 200_000)



def test_block_stored_but_not_connected_is_connected_on_reopen(chain, mempool, db, params, clock):
    """Killed between a block's store and its connect (two batches): the next start connects it
    (else it stays "duplicate" for ever, and a miner rebuilding it stalls)."""
    mine(chain, mempool, ALICE.address, 2, clock)
    clock.now += 600
    block = make_block(chain, mempool, ALICE.address, clock)
    chain._store_block(block, new_entry(block.header, block.hash, chain.tip))    # the kill comes here
    reopened = ChainState(db, params, clock=clock)
    assert reopened.tip.hash == block.hash and reopened.height == 3
    assert projection(db) == replay(reopened)


def _swap_coinbase_address(raw: bytes, other: bytes = b"") -> bytes:
    block = Block.from_bytes(raw)
    cb = block.txs[0]
    cb = replace(cb, outputs=(replace(cb.outputs[0], address=BOB.address),) + tuple(cb.outputs[1:]))
    return Block(block.header, (cb,) + block.txs[1:]).to_bytes()


def _damage(chain, entry, how) -> None:
    """Rewrites (or deletes) entry's stored body with how(body, another block's body)."""
    key = L.block_key(entry.hash)
    new = how(chain.db.get(key), chain.db.get(L.block_key(chain.entry_at(2).hash)))
    with chain.db.write_batch() as b:
        b.delete(key) if new is None else b.put(key, new)


# damage done to stored bodies after they were checked -> what whole_block reports
BODY_DAMAGE = [
    ("decodes, pays another address", _swap_coinbase_address, "do not match its merkle root"),
    ("another block's body", lambda raw, other: other, "holds another header"),
    ("truncated", lambda raw, other: raw[:-3], "does not decode"),
    ("deleted", lambda raw, other: None, "is missing"),
]


@pytest.mark.parametrize("how,why", [d[1:] for d in BODY_DAMAGE], ids=[d[0] for d in BODY_DAMAGE])
def test_reindex_drops_damaged_bodies_and_their_return_reconnects_the_rest(chain, mempool, clock, how, why):
    """Two stored bodies damaged (heights 6 and 9): reindex stops before the first and drops
    it, without holding the block invalid, and never connects what its header does not commit
    to. Its body back (in a p2p group, beside a block the chain has) reconnects the stored
    blocks after it up to the second, which is dropped in turn; that one back, the chain is at
    its old tip, with the same projections as a replay. A liar's body for the dropped block
    (its header, other transactions) is refused and leaves it to be fetched again."""
    mine(chain, mempool, ALICE.address, 12, clock)
    tip = chain.tip.hash
    hurt = [chain.entry_at(6), chain.entry_at(9)]
    good = {e.height: chain.get_block(e.hash) for e in chain.chain[1:]}
    for e in hurt:
        _damage(chain, e, how)
    assert why in chain.store.body_damage(hurt[0].hash)
    chain.reindex()
    assert chain.height == 5 and chain.failure_reasons == {}
    assert chain.store.raw_block(hurt[0].hash) is None and not hurt[0].invalid
    # A liar answering for the dropped block with other transactions under its header.
    lie = Block.from_bytes(_swap_coinbase_address(good[6].to_bytes()))
    with pytest.raises(ValidationError, match="bad-txnmrklroot"):
        chain.process_block(lie)
    assert chain.height == 5 and not hurt[0].invalid and chain.store.raw_block(hurt[0].hash) is None
    assert process_blocks(chain, [good[6], good[7]]) == ["active", "duplicate"]
    assert chain.height == 8 and chain.store.raw_block(hurt[1].hash) is None and not hurt[1].invalid
    assert chain.process_block(good[9]) == "active"
    assert chain.tip.hash == tip and chain.failure_reasons == {} and projection(chain.db) == replay(chain)


@pytest.mark.parametrize("how,why", [d[1:] for d in BODY_DAMAGE], ids=[d[0] for d in BODY_DAMAGE])
def test_a_reorg_over_a_damaged_body_stops_with_a_store_error_not_a_wrong_undo(chain, mempool, clock, params, how, why):
    """The tip's stored body damaged, then a heavier branch arrives: undoing the tip would need
    its body, and one that still decodes would undo other transactions. The reorg stops with a
    StoreError that names the block and says to run reindex (not a ValidationError, which p2p
    would hold against the peer that sent the good branch), the chain left as it was; reindex
    then settles on the heavier branch, equal to a replay."""
    mine(chain, mempool, ALICE.address, 6, clock)
    fork = chain.entry_at(5)
    side = ChainState(MemoryDB(), params, clock=clock)
    for e in chain.chain[1:fork.height + 1]:
        side.process_block(chain.get_block(e.hash))
    heavier = mine(side, None, BOB.address, 2, clock)
    tip = chain.tip
    _damage(chain, tip, how)
    before = projection(chain.db)
    assert chain.process_block(heavier[0]) == "side"
    with pytest.raises(StoreError, match=f"cannot disconnect block {tip.hash.hex()} at 6: .*{why}.*run reindex"):
        chain.process_block(heavier[1])
    assert chain.tip is tip and projection(chain.db) == before
    chain.reindex()
    assert chain.tip.hash == heavier[1].hash and projection(chain.db) == replay(chain)
