"""A full mempool costs the node, not the sender: memory counted as it really is, refusals
before any signature check, eviction of the lowest-scoring package with its descendants, the
rolling minimum fee rate and its decay (Bitcoin Core's model), chain-length limits."""
from __future__ import annotations

import gc
import tracemalloc
from dataclasses import replace

import pytest

from support.chain import COIN, Key, mine, spend
from core.errors import ValidationError
from core.primitives import Tx
from node.chain.mempool import MAX_CHAIN, Mempool
from node.chain.mempool_policy import MIN_FEE_RATE, ROLLING_FEE_HALFLIFE, entry_usage

ALICE, BOB = Key.from_seed(11), Key.from_seed(12)
FAN = 150                     # coins per fan-out transaction
VALUE = COIN // 4             # each (a coinbase pays 50 COIN)


def funded(chain, params, clock, fans: int = 2, cap: int = 10**9):
    """A pool with cap `cap` on a chain where ALICE holds fans * FAN confirmed coins of VALUE."""
    pool = Mempool(chain, params, max_bytes=cap, clock=clock)
    mine(chain, pool, ALICE.address, 100 + fans, clock)
    coins = []
    for h in range(1, fans + 1):
        cb = chain.get_block(chain.entry_at(h).hash).txs[0]
        fan = spend(chain, ALICE, [(cb.txid, 0)], [(ALICE.address, VALUE)] * FAN, fee=10_000)
        pool.accept(fan)
        coins += [(fan.txid, i) for i in range(FAN)]
    mine(chain, pool, ALICE.address, 1, clock)
    assert len(pool) == 0
    return pool, coins


def pay(chain_or_pool, coin, fee: int, to: bytes = BOB.address) -> Tx:
    return spend(chain_or_pool, ALICE, [coin], [(to, VALUE // 2)], fee=fee)


def reason(pool, tx) -> str:
    with pytest.raises(ValidationError) as e:
        pool.accept(tx)
    return e.value.reason


def fill(pool, chain, coins, fee_of, reserve: int = 0) -> list[Tx]:
    """Pays from coins while the pool keeps `reserve` bytes free; returns what got in."""
    txs = []
    for i, coin in enumerate(coins):
        tx = pay(chain, coin, fee_of(i))
        if pool.usage + entry_usage(tx) + reserve > pool.max_bytes:
            break
        pool.accept(tx)
        txs.append(tx)
    return txs


def test_usage_estimate_matches_tracemalloc(chain, params, clock):
    pool, coins = funded(chain, params, clock)
    raws = [pay(chain, c, 2_000).to_bytes() for c in coins[:250]]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for raw in raws:
            pool.accept(Tx.from_bytes(raw))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 0.8 * held <= pool.usage <= 1.25 * held, (pool.usage, held)
    assert pool.usage > 2 * pool.total_bytes      # the old count (wire bytes) was far below the truth
    for txid in list(pool.entries):
        pool.remove(txid)
    assert pool.usage == 0 and pool.total_bytes == 0


def test_full_pool_refuses_low_fee_before_signature_checks(chain, params, clock):
    pool, coins = funded(chain, params, clock, cap=60_000)
    txs = fill(pool, chain, coins, lambda i: 1_000 + 10 * i)
    assert len(txs) > 10 and pool.evicted == 0
    # A low-fee tx with a garbage signature: refused for its fee, its signature never looked at.
    low = pay(chain, coins[len(txs)], 1_000)
    forged = replace(low, inputs=(replace(low.inputs[0], sig=bytes(64)),))
    assert reason(pool, forged) == "mempool-full"
    # A forged one that pays enough gets to the signature check.
    high = pay(chain, coins[len(txs)], 50_000)
    assert reason(pool, replace(high, inputs=(replace(high.inputs[0], sig=bytes(64)),))) == "bad-txns-bad-signature"
    assert pool.refused["mempool-full"] == 1 and pool.refused["bad-txns-bad-signature"] == 1


def test_eviction_takes_the_lowest_package_with_descendants_and_raises_the_floor(chain, params, clock):
    pool, coins = funded(chain, params, clock, cap=60_000)
    txs = fill(pool, chain, coins, lambda i: 5_000 + 1_000 * i, reserve=5_000)
    cheapest = txs[0]
    # A child of the cheapest paying a little more: their package is the lowest scoring, the
    # child alone is not, yet it goes with its parent.
    child = spend(pool, ALICE, [(cheapest.txid, 1)], [], fee=5_200)
    assert 5_000 / cheapest.size < (5_000 + 5_200) / (cheapest.size + child.size) < 5_200 / child.size
    pool.accept(child)
    assert pool.evicted == 0
    pool.max_bytes = pool.usage            # full to the byte: the next tx must evict
    rich = pay(chain, coins[-1], 100_000)
    pool.accept(rich)
    assert rich.txid in pool and cheapest.txid not in pool and child.txid not in pool
    assert pool.evicted == 2 and pool.usage <= pool.max_bytes
    assert all(t.txid in pool for t in txs[1:])
    floor = pool.min_fee_rate()
    assert floor == pytest.approx((5_000 + 5_200) / (cheapest.size + child.size) + MIN_FEE_RATE)
    # Anything below the floor is now refused on sight, even with room.
    pool.remove(rich.txid)
    low = pay(chain, coins[-2], int(floor * 100))
    assert low.size > 100 and reason(pool, low) == "mempool-min-fee-not-met"
    assert pool.refused["mempool-min-fee-not-met"] == 1


def test_child_paying_for_parent_keeps_it(chain, params, clock):
    pool, coins = funded(chain, params, clock, cap=60_000)
    parent = pay(chain, coins[0], 400)          # the lowest own fee rate in the pool
    pool.accept(parent)
    child = spend(pool, ALICE, [(parent.txid, 1)], [], fee=60_000)
    pool.accept(child)
    fill(pool, chain, coins[1:], lambda i: 3_000)
    pool.max_bytes = pool.usage
    pool.accept(pay(chain, coins[-1], 40_000))
    assert pool.evicted >= 1 and parent.txid in pool and child.txid in pool


def test_rolling_floor_decays_after_a_block(chain, params, clock):
    pool, coins = funded(chain, params, clock, cap=60_000)
    txs = fill(pool, chain, coins, lambda i: 5_000)
    pool.accept(pay(chain, coins[-1], 90_000))
    raised = pool.min_fee_rate()
    assert raised > MIN_FEE_RATE and pool.evicted == 1
    clock.now += 10 * ROLLING_FEE_HALFLIFE
    assert pool.min_fee_rate() == raised        # no block since the raise: no decay
    mine(chain, pool, ALICE.address, 1, clock)  # takes most of the pool: usage now small
    assert pool.usage < pool.max_bytes / 4
    clock.now += ROLLING_FEE_HALFLIFE / 4       # a quarter-full pool halves 4x as fast
    assert pool.min_fee_rate() == pytest.approx(raised / 2, rel=0.02)
    clock.now += 20 * ROLLING_FEE_HALFLIFE / 4
    assert pool.min_fee_rate() == MIN_FEE_RATE and pool.floor.rate == 0
    assert len(txs) > 10


def test_chain_of_unconfirmed_is_limited(chain, params, clock):
    pool, coins = funded(chain, params, clock)
    prev = spend(chain, ALICE, [coins[0]], [], fee=1_000)        # its change is output 0
    pool.accept(prev)
    for _ in range(MAX_CHAIN - 1):
        prev = spend(pool, ALICE, [(prev.txid, 0)], [], fee=1_000)
        pool.accept(prev)
    assert reason(pool, spend(pool, ALICE, [(prev.txid, 0)], [], fee=1_000)) == "too-long-mempool-chain"
    # Package sums stay exact through removals.
    first = next(iter(pool.entries.values()))
    assert first.desc_count == MAX_CHAIN
    pool.remove(prev.txid)
    assert first.desc_count == MAX_CHAIN - 1
    assert first.desc_size == sum(e.size for e in pool.entries.values())


def test_the_cap_is_a_setting_flag_over_environment_over_file():
    from argparse import Namespace
    from core.config import Config
    from core.params import REGTEST
    from node.chain.mempool import DEFAULT_MAX_BYTES
    from node.settings import node_settings
    assert node_settings(Config({}, {}), REGTEST, Namespace()).mempool_max_bytes == DEFAULT_MAX_BYTES
    file = {"mempool": {"max_bytes": 300_000}}
    assert node_settings(Config(file, {}), REGTEST, Namespace()).mempool_max_bytes == 300_000
    env = {"DOTBIT_MEMPOOL_MAX_BYTES": "200000"}
    assert node_settings(Config(file, env), REGTEST, Namespace()).mempool_max_bytes == 200_000
    flags = Namespace(mempool_max_bytes=150_000)
    assert node_settings(Config(file, env), REGTEST, flags).mempool_max_bytes == 150_000
    with pytest.raises(ValueError, match="--mempool-max-bytes: 999 is below the minimum 10,000"):
        node_settings(Config({}, {}), REGTEST, Namespace(mempool_max_bytes=999))


def test_a_reorg_keeps_entries_below_a_raised_floor(chain, params, clock):
    pool, coins = funded(chain, params, clock, cap=60_000)
    txs = fill(pool, chain, coins, lambda i: 5_000 + 100 * i)
    pool.max_bytes = pool.usage
    pool.accept(pay(chain, coins[-1], 90_000))
    assert pool.min_fee_rate() > 5_100 / txs[1].size        # some entries are below the floor now
    kept = set(pool.entries)
    pool.revalidate()                  # what a reorg does with the pool
    assert set(pool.entries) == kept
