"""The mempool never holds a name transaction that no next block can include: an immature
FIRSTUPDATE (or one spending an unconfirmed NAME_NEW) is refused, so a late reveal cannot
take the one pending slot of a name away from the first committer; and pool entries are
re-checked on every new tip, reorgs included."""
from __future__ import annotations

import pytest

from core.errors import ValidationError
from core.params import REGTEST
from node.chain.chainstate import ChainState
from node.chain.storage import MemoryDB
from node.mining.template import create_template
from support.chain import Key, make_block, mine
from support.name_txs import Funds, firstupdate, name_new

ALICE, BOB, MINER = Key.from_seed(61), Key.from_seed(62), Key.from_seed(63)
NAME = b"d/x"
RA, RB = b"\x0a" * 20, b"\x0b" * 20
VALUE = b'{"ip":"192.0.2.7"}'


def reason(fn, *a):
    with pytest.raises(ValidationError) as e:
        fn(*a)
    return e.value.reason


def mine_to(chain, pool, clock, height):
    mine(chain, pool, MINER.address, height - chain.height, clock)


@pytest.fixture
def funded(chain, mempool, clock):
    """Height 200; Alice's coinbases at 1..40, Bob's at 41..80, both mature."""
    mine(chain, mempool, ALICE.address, 40, clock)
    mine(chain, mempool, BOB.address, 40, clock)
    mine_to(chain, mempool, clock, 200)
    return (Funds.coinbases(chain, ALICE, range(1, 41)), Funds.coinbases(chain, BOB, range(41, 81)))


def test_late_reveal_cannot_block_the_first_committer(chain, mempool, clock, funded):
    alice, bob = funded
    a_new = name_new(alice, NAME, RA)
    mempool.accept(a_new)
    mine_to(chain, mempool, clock, 201)                  # Alice's commitment at 201
    mine_to(chain, mempool, clock, 212)                  # a FIRSTUPDATE is valid from block 213
    b_new = name_new(bob, NAME, RB)
    mempool.accept(b_new)
    b_first = firstupdate(bob, b_new, NAME, RB, b"{}", REGTEST, 213)
    assert reason(mempool.accept, b_first) == "tx-firstupdate-immature"
    a_first = firstupdate(alice, a_new, NAME, RA, VALUE, REGTEST, 213)
    mempool.accept(a_first)
    template = create_template(chain, mempool, MINER.address, int(clock()) + 600)
    assert a_first.txid in {t.txid for t in template.block.txs}
    mine_to(chain, mempool, clock, 213)
    rec = chain.names.get(NAME)
    assert rec.address == ALICE.address and rec.txid == a_first.txid and rec.value == VALUE


def test_firstupdate_enters_the_pool_only_when_the_next_block_may_hold_it(chain, mempool, clock, funded):
    alice, _ = funded
    new = name_new(alice, NAME, RA)
    mempool.accept(new)
    early = firstupdate(alice, new, NAME, RA, VALUE, REGTEST, 213)
    assert reason(mempool.accept, early) == "tx-firstupdate-immature"   # its NAME_NEW is unconfirmed
    mine_to(chain, mempool, clock, 211)                   # NAME_NEW at 201; block 212 is too early
    assert reason(mempool.accept, early) == "tx-firstupdate-immature"
    assert mempool.names.pending_names == {}
    mine_to(chain, mempool, clock, 212)
    mempool.accept(early)
    mine_to(chain, mempool, clock, 213)
    assert chain.names.get(NAME).txid == early.txid


def test_reorg_that_makes_a_firstupdate_immature_drops_it(chain, mempool, clock, params, funded):
    alice, _ = funded
    fork = chain.tip
    new = name_new(alice, NAME, RA)
    mempool.accept(new)
    mine_to(chain, mempool, clock, 212)                   # NAME_NEW at 201
    first = firstupdate(alice, new, NAME, RA, VALUE, REGTEST, 213)
    mempool.accept(first)
    # A heavier branch from 200 that carries the same NAME_NEW two blocks later (203): after
    # the reorg (tip 213) the FIRSTUPDATE could only be mined at 215.
    side = ChainState(MemoryDB(), params, clock=clock)
    for e in chain.chain[1:fork.height + 1]:
        side.process_block(chain.get_block(e.hash))
    branch = mine(side, None, BOB.address, 2, clock)
    clock.now += 600
    branch.append(make_block(side, None, BOB.address, clock, extra_txs=[new]))
    side.process_block(branch[-1])
    branch += mine(side, None, BOB.address, 10, clock)
    for b in branch:
        chain.process_block(b)
    assert chain.tip.hash == branch[-1].hash and chain.height == 213
    assert first.txid not in mempool
    assert mempool.names.pending_names == {}
    # Its name slot is free again, and the same FIRSTUPDATE is accepted once it is due.
    assert reason(mempool.accept, first) == "tx-firstupdate-immature"
    mine_to(chain, mempool, clock, 214)
    mempool.accept(first)


def reorg_from(chain, fork, blocks: int, params, clock) -> None:
    """A side branch of `blocks` empty blocks (to BOB) from `fork`, fed to `chain`: a reorg."""
    side = ChainState(MemoryDB(), params, clock=clock)
    for e in chain.chain[1:fork.height + 1]:
        side.process_block(chain.get_block(e.hash))
    for b in mine(side, None, BOB.address, blocks, clock):
        chain.process_block(b)


def test_reorg_back_to_an_unconfirmed_namenew_drops_its_firstupdate(chain, mempool, clock, params, funded):
    alice, _ = funded
    fork = chain.tip
    new = name_new(alice, NAME, RA)
    mempool.accept(new)
    mine_to(chain, mempool, clock, 212)
    first = firstupdate(alice, new, NAME, RA, VALUE, REGTEST, 213)
    mempool.accept(first)
    reorg_from(chain, fork, 13, params, clock)
    assert chain.height == 213
    assert new.txid in mempool and first.txid not in mempool



def test_reorg_above_the_namenew_keeps_a_due_firstupdate(chain, mempool, clock, params, funded):
    # The branch's first blocks are lower than the old tip: checked there, the FIRSTUPDATE
    # would look immature. The pool judges it against the tip the chain settles on.
    alice, _ = funded
    new = name_new(alice, NAME, RA)
    mempool.accept(new)
    mine_to(chain, mempool, clock, 205)                   # NAME_NEW at 201
    fork = chain.tip
    mine_to(chain, mempool, clock, 212)
    first = firstupdate(alice, new, NAME, RA, VALUE, REGTEST, 213)
    mempool.accept(first)
    reorg_from(chain, fork, 8, params, clock)
    assert chain.height == 213 and chain.names.get(NAME) is None
    assert first.txid in mempool
    mine_to(chain, mempool, clock, 214)
    assert chain.names.get(NAME).txid == first.txid
