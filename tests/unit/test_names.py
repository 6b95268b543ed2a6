"""The name state machine with Namecoin's numbers on regtest (expiry 30, firstupdate after 12),
reorgs of name operations, and the rules' rejection reasons."""
from __future__ import annotations

import pytest

from support.chain import Key, make_block, mine
from support.name_txs import Funds, firstupdate, name_new, update
from node.chain import layout as L
from node.chain.chainstate import ChainState
from core.errors import ValidationError
from node.chain.storage import MemoryDB
from core.names.proof import verify_proof
from core.names.rules import expires_in, is_expired, tree_key

ALICE, BOB = Key.from_seed(31), Key.from_seed(32)
NAME = b"d/example"
R1, R2 = b"\x01" * 20, b"\x02" * 20


def projection(db):
    return {p: list(db.iterator(prefix=p)) for p in L.PROJECTIONS}


def replay(chain):
    fresh = ChainState(MemoryDB(), chain.params, clock=chain.clock)
    for e in chain.chain[1:]:
        fresh.process_block(chain.get_block(e.hash))
    assert fresh.tip.header.name_root == chain.tip.header.name_root
    return projection(fresh.db)


def reason(fn, *a):
    with pytest.raises(ValidationError) as e:
        fn(*a)
    return e.value.reason


def mine_to(chain, mempool, clock, height, address=None):
    mine(chain, mempool, address or ALICE.address, height - chain.height, clock)


def test_lifecycle_with_namecoin_numbers(chain, mempool, clock, params):
    mine_to(chain, mempool, clock, 100, ALICE.address)
    mine_to(chain, mempool, clock, 200, BOB.address)
    alice = Funds.coinbases(chain, ALICE, range(1, 40))
    bob = Funds.coinbases(chain, BOB, range(101, 140))
    new = name_new(alice, NAME, R1)
    mempool.accept(new)
    mine_to(chain, mempool, clock, 201)
    assert chain.get_coin(new.txid, 0) is not None
    first = firstupdate(alice, new, NAME, R1, b'{"ip":"1.2.3.4"}', params, 213)
    # A block carrying it at 212 is invalid (and the pool refuses it until 213 is next)
    mine_to(chain, mempool, clock, 211)
    clock.now += 600
    early = make_block(chain, None, ALICE.address, clock, extra_txs=[first])
    assert reason(chain.process_block, early) == "tx-firstupdate-immature"
    assert chain.height == 211
    mine_to(chain, mempool, clock, 212)
    assert chain.names.get(NAME) is None                             # not mined before 213
    assert chain.names.get_obj(NAME) is None
    mempool.accept(first)
    mine_to(chain, mempool, clock, 213)
    rec = chain.names.get(NAME)
    assert chain.names.get_obj(NAME) == rec.to_obj()                 # what the HTTP workers are sent
    assert rec.height == 213 and rec.value == b'{"ip":"1.2.3.4"}' and rec.address == ALICE.address
    assert expires_in(rec, chain.height, params) == 30
    # Bob cannot register it meanwhile, even with his own valid commitment
    bnew = name_new(bob, NAME, R2)
    mempool.accept(bnew)
    mine_to(chain, mempool, clock, 226)
    bfirst = firstupdate(bob, bnew, NAME, R2, b"{}", params, 227)
    assert reason(mempool.accept, bfirst) == "tx-firstupdate-name-exists"
    # renewal at expires_in 2 works
    mine_to(chain, mempool, clock, 241)
    assert expires_in(chain.names.get(NAME), chain.height, params) == 2
    upd = update(alice, first, 0, NAME, b'{"ip":"5.6.7.8"}', ALICE)
    mempool.accept(upd)
    mine_to(chain, mempool, clock, 242)
    rec = chain.names.get(NAME)
    assert rec.height == 242 and rec.value == b'{"ip":"5.6.7.8"}'
    # transfer to Bob
    xfer = update(alice, upd, 0, NAME, b'{"ip":"5.6.7.8"}', ALICE, to=BOB)
    mempool.accept(xfer)
    mine_to(chain, mempool, clock, 243)
    assert chain.names.get(NAME).address == BOB.address
    # at expires_in 1 the coin is gone: a renewal can no longer be mined
    mine_to(chain, mempool, clock, 243 + 30 - 1)
    assert expires_in(chain.names.get(NAME), chain.height, params) == 1
    late = update(bob, xfer, 0, NAME, b"{}", BOB)
    assert reason(mempool.accept, late) in ("bad-txns-inputs-missingorspent", "tx-nameupdate-expired")
    assert chain.get_coin(xfer.txid, 0) is None
    mine_to(chain, mempool, clock, 273)
    rec = chain.names.get(NAME)
    assert expires_in(rec, chain.height, params) == 0 and is_expired(rec, chain.height, params)
    # expired: another key (Alice again, with a new commitment) can register it
    anew = name_new(alice, NAME, R2)
    mempool.accept(anew)
    mine_to(chain, mempool, clock, 274 + 12)
    afirst = firstupdate(alice, anew, NAME, R2, b'{"ip":"9.9.9.9"}', params, chain.height + 1)
    mempool.accept(afirst)
    mine_to(chain, mempool, clock, chain.height + 1)
    rec = chain.names.get(NAME)
    assert rec.address == ALICE.address and rec.value == b'{"ip":"9.9.9.9"}'
    assert [r.value for r in chain.names.history(NAME)] == [
        b'{"ip":"1.2.3.4"}', b'{"ip":"5.6.7.8"}', b'{"ip":"5.6.7.8"}', b'{"ip":"9.9.9.9"}']
    # every name's proof verifies against the tip header
    root = chain.tip.header.name_root
    assert verify_proof(root, tree_key(NAME), chain.names.prove(root, NAME)) == rec.leaf_hash
    assert verify_proof(root, tree_key(b"d/absent"), chain.names.prove(root, b"d/absent")) is None
    assert projection(chain.db) == replay(chain)
    # reorg back below the first registration: names and expired coins are restored exactly
    snapshots = {}
    fork_height = 205
    while chain.height > fork_height:
        snapshots[chain.height] = projection(chain.db)
        chain._disconnect_tip()
    assert chain.names.get(NAME) is None
    assert projection(chain.db) == replay(chain)
