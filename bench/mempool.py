"""What a full mempool costs per transaction (issue 15 §4): fill a pool to its cap, then time
refusing low-fee transactions (valid and with forged signatures), admitting better-paying ones
that evict the lowest package, and admitting into a pool with room (signatures checked), next
to the pool's memory as counted and as tracemalloc sees it.

    python bench/mempool.py [--txs 20000] [--samples 2000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from dataclasses import replace

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from core.consensus import COIN  # noqa: E402
from core.params import REGTEST  # noqa: E402
from core.primitives import Tx, TxIn, TxOut  # noqa: E402
from core.signing import sign_tx  # noqa: E402
from node.chain.chainstate import ChainState  # noqa: E402
from node.chain.mempool import Mempool  # noqa: E402
from node.chain.mempool_policy import entry_usage  # noqa: E402
from node.chain.storage import MemoryDB  # noqa: E402
from support.chain import Clock, Key, mine, spend  # noqa: E402
from figures import figure  # noqa: E402  (bench/ is on sys.path when run as a script)

KEY, OTHER = Key.from_seed(1601), Key.from_seed(1602)
FAN = 1_000
VALUE = COIN // 25


def funded_chain(coins_needed: int):
    clock = Clock(REGTEST.genesis_time + 600)
    chain = ChainState(MemoryDB(), REGTEST, clock=clock)
    builder = Mempool(chain, REGTEST, clock=clock)
    fans = -(-coins_needed // FAN)
    mine(chain, builder, KEY.address, 100 + fans, clock)
    coins = []
    for h in range(1, fans + 1):
        cb = chain.get_block(chain.entry_at(h).hash).txs[0]
        fan = spend(chain, KEY, [(cb.txid, 0)], [(KEY.address, VALUE)] * FAN, fee=100_000)
        builder.accept(fan)
        coins += [(fan.txid, i) for i in range(FAN)]
    mine(chain, builder, KEY.address, 1, clock)
    return chain, clock, coins


def pay(coin, fee: int) -> Tx:
    tx = Tx(1, (TxIn(*coin),), (TxOut(VALUE // 2, OTHER.address), TxOut(VALUE - VALUE // 2 - fee, KEY.address)), 0)
    return sign_tx(tx, [(VALUE, KEY.address)], [KEY.secret], [KEY.pubkey])


def timed(pool, txs, expect_refusal: bool) -> list[float]:
    out = []
    for tx in txs:
        t0 = time.perf_counter()
        try:
            pool.accept(tx)
            ok = True
        except Exception:
            ok = False
        out.append(time.perf_counter() - t0)
        assert ok != expect_refusal, tx.txid.hex()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--txs", type=int, default=20_000, help="transactions a full pool holds")
    ap.add_argument("--samples", type=int, default=2_000, help="timed refusals and evictions each")
    args = ap.parse_args()
    t0 = time.monotonic()
    chain, clock, coins = funded_chain(args.txs + 2 * args.samples + 10)
    raws = [pay(c, 5_000 + i).to_bytes() for i, c in enumerate(coins[:args.txs])]
    rest = coins[args.txs:]
    cap = sum(entry_usage(t) for t in map(Tx.from_bytes, raws) if t.txid and t.size)   # as accept() sees them
    print(f"chain and {len(coins):,} coins in {time.monotonic() - t0:.1f} s; cap {cap:,} bytes for {args.txs:,} txs")

    # Memory first, in a pool of its own (tracemalloc slows everything it watches).
    pool = Mempool(chain, REGTEST, max_bytes=cap, clock=clock)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for raw in raws:                   # decoded inside the window: the pool holds the decoded tx
        pool.accept(Tx.from_bytes(raw))
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    counted, wire = pool.usage, pool.total_bytes
    pool = Mempool(chain, REGTEST, max_bytes=cap, clock=clock)
    fills = timed(pool, [Tx.from_bytes(raw) for raw in raws], expect_refusal=False)
    assert len(pool) == args.txs and pool.evicted == 0

    one_coin = rest[0]
    low = [pay(one_coin, 400 + k) for k in range(args.samples)]
    forged = [replace(t, inputs=(replace(t.inputs[0], sig=bytes(64)),)) for t in low]
    refuse_low = timed(pool, low, expect_refusal=True)
    refuse_forged = timed(pool, forged, expect_refusal=True)
    rich = [pay(c, 200_000 + k) for k, c in enumerate(rest[1:1 + args.samples])]
    evicting = timed(pool, rich, expect_refusal=False)
    assert pool.evicted > 0

    us = lambda xs: statistics.median(xs) * 1e6        # noqa: E731
    print(f"admit into a pool with room (signature checked): median {us(fills):.0f} us")
    p99 = statistics.quantiles(refuse_low, n=100)[98] * 1e6
    print(f"refuse a low-fee tx at the cap:                  median {us(refuse_low):.1f} us, p99 {p99:.0f} us")
    print(f"refuse the same with a forged signature:         median {us(refuse_forged):.1f} us")
    print(f"admit a better fee, evicting the lowest package: median {us(evicting):.0f} us")
    print(f"memory: counted {counted:,} bytes vs tracemalloc {held:,} ({counted / held:.2f}x); "
          f"wire {wire:,} bytes")
    print(f"refusals by reason: {dict(pool.refused)}; {pool.evicted:,} evicted; "
          f"floor now {pool.min_fee_rate():.2f} units/byte")
    figure("refuse_full_us", round(us(refuse_low), 1), "us", f"refuse a low-fee tx at a full pool of {args.txs:,}",
           "well under the ~53,000 us of issue 15")
    figure("refuse_forged_us", round(us(refuse_forged), 1), "us", "refuse a low-fee tx with a forged signature")
    figure("evict_admit_us", round(us(evicting), 1), "us", "admit a better fee at the cap, evicting")
    figure("admit_us", round(us(fills), 1), "us", "admit into a pool with room")
    figure("usage_vs_tracemalloc", round(counted / held, 3), "x", "counted memory / tracemalloc", "0.8-1.25")


if __name__ == "__main__":
    main()
