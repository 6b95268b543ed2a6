"""Random sequences of name operations, mining and reorgs (competing branches submitted through
process_block). After every step the node's projections and name_root equal a replay of its
main chain from the common base, and every name's proof verifies against the tip header."""
from __future__ import annotations

import functools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.chain import Clock, Key, make_block, mine
from support.name_txs import firstupdate, name_new, update
from node.chain import layout as L
from node.chain.chainstate import ChainState
from core.errors import ValidationError
from node.chain.mempool import Mempool
from node.chain.storage import MemoryDB
from core.names.proof import verify_proof
from core.names.rules import tree_key
from core.params import REGTEST

KEYS = [Key.from_seed(s) for s in (61, 62, 63)]
MINER = Key.from_seed(64)
NAMES = [b"d/a", b"d/bb", b"d/ccc", b"id/dd"]
BASE_HEIGHT = 200


def copy_db(db: MemoryDB) -> MemoryDB:
    new = MemoryDB()
    new._data = dict(db._data)
    return new


@functools.lru_cache(maxsize=1)
def base_db() -> tuple[MemoryDB, int]:
    """200 blocks: coinbases 1..90 spread over the three keys (mature from height 201)."""
    clock = Clock(REGTEST.genesis_time + 600)
    chain = ChainState(MemoryDB(), REGTEST, clock=clock)
    for h in range(1, BASE_HEIGHT + 1):
        mine(chain, None, KEYS[h % 3].address if h <= 90 else MINER.address, 1, clock)
    return chain.db, clock.now


class FundsFromChain:
    """A key's next spendable plain coin, read from the address index each time so coins of
    transactions lost in a reorg are never handed out."""

    def __init__(self, chain, mempool, key):
        self.chain, self.mempool, self.key = chain, mempool, key
        self.coins = _Appender()

    def take(self):
        for k, _ in self.chain.db.iterator(prefix=L.ADDR_COIN + self.key.address):
            txid, idx = k[21:53], L.read_u32(k[53:57])
            coin = self.chain.get_coin(txid, idx)
            if (coin is None or coin.covenant.type != 0 or (txid, idx) in self.mempool.spends
                    or coin.coinbase and self.chain.height + 1 - coin.height < REGTEST.coinbase_maturity):
                continue
            return txid, idx, coin.value
        raise LookupError("no funds")


class World:
    def __init__(self):
        db, now = base_db()
        self.clock = Clock(now)
        self.chain = ChainState(copy_db(db), REGTEST, clock=self.clock)
        self.base = db
        self.mempool = Mempool(self.chain, REGTEST, clock=self.clock)
        self.pending: list[tuple] = []       # (name_new tx, name, rand, key)
        self.counter = 0

    def funds(self, key):
        return FundsFromChain(self.chain, self.mempool, key)

    def try_accept(self, tx) -> bool:
        try:
            self.mempool.accept(tx)
            return True
        except ValidationError:
            return False

    # --- operations ---------------------------------------------------------------------

    def register(self, name_i, key_i):
        key = KEYS[key_i]
        self.counter += 1
        rand = self.counter.to_bytes(20, "big")
        try:
            tx = name_new(self.funds(key), NAMES[name_i], rand)
        except LookupError:
            return
        if self.try_accept(tx):
            self.pending.append((tx, NAMES[name_i], rand, key))
            # like `register --wait`: the firstupdate waits in the pool until it is deep enough
            self.first(len(self.pending) - 1, name_i)

    def first(self, pend_i, value_i):
        if not self.pending:
            return
        new, name, rand, key = self.pending[pend_i % len(self.pending)]
        if self.mempool.coin(new.txid, 0, ignore_spends=True) is None:
            return
        try:
            tx = firstupdate(self.funds(key), new, name, rand, b'{"v":%d}' % value_i, REGTEST,
                             self.chain.height + 1)
        except LookupError:
            return
        self.try_accept(tx)

    def update(self, name_i, value_i, to_i):
        rec = self.chain.names.get(NAMES[name_i])
        if rec is None:
            return
        owner = next((k for k in KEYS if k.address == rec.address), None)
        if owner is None or self.chain.get_coin(rec.txid, rec.vout) is None:
            return
        prev = _TxRef(rec.txid)
        try:
            tx = update(self.funds(owner), prev, rec.vout, rec.name, b'{"u":%d}' % value_i, owner,
                        to=KEYS[to_i])
        except LookupError:
            return
        self.try_accept(tx)

    def mine(self, n):
        mine(self.chain, self.mempool, MINER.address, n, self.clock)

    def reorg(self, depth, extra):
        """A competing branch forking `depth` blocks below the tip, one block longer, mined on
        a copy of the node's state, then submitted block by block."""
        depth = min(depth, self.chain.height - BASE_HEIGHT)
        if depth <= 0:
            return
        side_clock = Clock(self.clock.now)
        side = ChainState(copy_db(self.chain.db), REGTEST, clock=side_clock)
        for _ in range(depth):
            side._disconnect_tip()
        blocks = []
        for i in range(depth + 1 + extra):
            side_clock.now += 600 + 1 + i      # different times: different blocks
            b = make_block(side, None, KEYS[0].address, side_clock)
            assert side.process_block(b) == "active"
            blocks.append(b)
        self.clock.now = side_clock.now
        for b in blocks:
            self.chain.process_block(b)
        assert self.chain.tip.hash == blocks[-1].hash

    # --- the invariant ------------------------------------------------------------------

    def check(self):
        fresh = ChainState(copy_db(self.base), REGTEST, clock=self.clock)
        for e in self.chain.chain[BASE_HEIGHT + 1:]:
            assert fresh.process_block(self.chain.get_block(e.hash)) == "active"
        assert fresh.tip.hash == self.chain.tip.hash
        for prefix in L.PROJECTIONS:
            assert list(fresh.db.iterator(prefix=prefix)) == list(self.chain.db.iterator(prefix=prefix)), prefix
        root = self.chain.tip.header.name_root
        for name in NAMES + [b"d/never"]:
            rec = self.chain.names.get(name)
            got = verify_proof(root, tree_key(name), self.chain.names.prove(root, name).to_bytes())
            assert got == (rec.leaf_hash if rec else None)
        # the mempool holds only transactions valid on the tip
        for t, e in list(self.mempool.entries.items()):
            for txin in e.tx.inputs:
                assert self.mempool.coin(*txin.outpoint, ignore_spends=True) is not None


class _Appender(list):
    """support.name_txs.build appends the change coin; FundsFromChain re-reads coins instead."""

    def append(self, item):
        pass


class _TxRef:
    def __init__(self, txid):
        self.txid = txid


def random_script(rnd, n: int) -> list[tuple]:
    """Weighted so that registrations usually get deep enough to complete and names live long
    enough to be updated, expire and be re-registered."""
    ops = []
    for _ in range(n):
        r = rnd.random()
        if r < 0.25:
            ops.append(("register", rnd.randrange(4), rnd.randrange(3)))
        elif r < 0.35:
            ops.append(("first", rnd.randrange(8), rnd.randrange(10)))
        elif r < 0.55:
            ops.append(("update", rnd.randrange(4), rnd.randrange(10), rnd.randrange(3)))
        elif r < 0.85:
            ops.append(("mine", rnd.randint(1, 16)))
        else:
            ops.append(("reorg", rnd.randint(1, 6), rnd.randrange(2)))
    return ops


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(10, 40))
def test_random_name_operations_mining_and_reorgs(rnd, n):
    w = World()
    for op, *args in random_script(rnd, n):
        getattr(w, op)(*args)
        w.check()


def test_long_scripted_run_with_expiries_and_reorgs():
    """A fixed script that surely registers, renews, expires and re-registers names across
    reorgs (random examples may not reach expiry)."""
    w = World()
    for i, name in enumerate(NAMES):
        w.register(i, i % 3)
    w.mine(12)
    for i in range(4):
        w.first(i, i)
    w.mine(1)
    assert all(w.chain.names.get(n) for n in NAMES)
    w.check()
    w.update(0, 1, 1)
    w.mine(3)
    w.reorg(2, 0)          # the update's block is undone; it returns to the pool...
    w.check()
    w.mine(1)              # ...and is mined again
    assert w.chain.names.get(NAMES[0]).value == b'{"u":1}'
    w.mine(30)             # everything expires
    assert w.chain.get_coin(w.chain.names.get(NAMES[1]).txid, 0) is None
    w.check()
    w.reorg(3, 1)          # reorg across the expiry height
    w.check()
    w.register(1, 2)
    w.mine(12)
    w.first(len(w.pending) - 1, 5)
    w.mine(1)
    assert w.chain.names.get(NAMES[1]).address == KEYS[2].address
    w.check()
