"""What a full mempool may cost the node: each entry's real memory footprint, and the rolling
minimum fee rate a full pool raises so that low-fee senders are refused before any work.

Footprint. The cap counts memory as it really is, not wire bytes: a decoded transaction is a
tree of Python objects (Tx, tuples, TxIn/TxOut/Covenant, bytes, ints, the encoding cache) that
weighs several times its wire size, and the pool's indexes add to it. An entry's usage is
  deep size of the decoded Tx (sys.getsizeof over every object it owns, shared singletons
  such as small ints, interned strings and the PLAIN covenant left out)
  + ENTRY_OVERHEAD (the MempoolEntry, its parents set, its slot in `entries`, its items in the
    eviction heap, counted twice since stale heap items wait up to one compaction)
  + INPUT_OVERHEAD per input (the outpoint tuple keying `spends` and its dict slot).
tests/unit/test_mempool_limits.py checks the sum against tracemalloc, within a margin.

Rolling minimum fee rate (Bitcoin Core's rollingMinimumFeeRate): evicting a package raises the
floor to that package's fee rate plus the incremental rate, so a sender must outbid what was
just thrown out, and transactions below the floor are refused after a few coin lookups, before
any signature is checked. After a block has been connected since the last raise the floor
halves every ROLLING_FEE_HALFLIFE (a quarter of it while the pool is under a quarter full,
half of it while under half full), and drops to zero below half the incremental rate.
"""
from __future__ import annotations

import sys
from typing import Callable

from core.primitives import PLAIN

MIN_FEE_RATE = 1                    # base units per byte: the relay floor, and the incremental rate
ROLLING_FEE_HALFLIFE = 12 * 3600    # seconds, as in Bitcoin Core
DECAY_GRANULARITY = 10              # seconds: the floor is recomputed at most this often

_WORD = 8
_DICT_SLOT = 3 * _WORD * 3 // 2 + _WORD      # hash, key, value; ~2/3 load factor; the index entry
ENTRY_OVERHEAD = (160 + sys.getsizeof(set()) + _DICT_SLOT
                  + 2 * (sys.getsizeof((0.0, 0.0, 0, b"")) + sys.getsizeof(0.0) + _WORD))
INPUT_OVERHEAD = sys.getsizeof((b"", 0)) + _DICT_SLOT


def _shared(o) -> bool:
    """Objects a transaction points at but does not own: freeing it would not free them."""
    if o is None or o is PLAIN or isinstance(o, (bool, str)):
        return True
    if type(o) is int:
        return -5 <= o <= 256
    return type(o) in (bytes, tuple) and not o          # the empty bytes and tuple singletons


def tx_footprint(tx) -> int:
    """Bytes of memory a decoded transaction holds (see the module doc): O(objects in it)."""
    total, seen, todo = 0, set(), [tx]
    while todo:
        o = todo.pop()
        if id(o) in seen or _shared(o):
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, (tuple, list)):
            todo.extend(o)
        elif isinstance(o, dict):
            todo.extend(o.values())
        else:
            todo.extend(getattr(o, s) for s in getattr(type(o), "__slots__", ()))
    return total


def entry_usage(tx) -> int:
    return tx_footprint(tx) + ENTRY_OVERHEAD + INPUT_OVERHEAD * len(tx.inputs)


class RollingFeeFloor:
    """The rolling minimum fee rate (base units per byte), Bitcoin Core's model."""

    def __init__(self, clock: Callable[[], float], halflife: float = ROLLING_FEE_HALFLIFE):
        self.clock = clock
        self.halflife = halflife
        self.rate = 0.0
        self.last_update = clock()
        self.block_since_bump = False

    def bump(self, removed_rate: float) -> None:
        """A package of this fee rate was evicted: nothing at or below it gets back in."""
        rate = removed_rate + MIN_FEE_RATE
        if rate > self.rate:
            self.rate = rate
            self.block_since_bump = False

    def block_connected(self) -> None:
        # Decay starts from the first block after a raise: a block is when room is made.
        self.last_update = self.clock()
        self.block_since_bump = True

    def current(self, usage: int, limit: int) -> float:
        """The floor now; 0.0 when the pool has not been full lately."""
        if not self.block_since_bump or self.rate == 0:
            return self.rate
        now = self.clock()
        if now > self.last_update + DECAY_GRANULARITY:
            halflife = self.halflife
            if usage < limit / 4:
                halflife /= 4
            elif usage < limit / 2:
                halflife /= 2
            self.rate /= 2 ** ((now - self.last_update) / halflife)
            self.last_update = now
            if self.rate < MIN_FEE_RATE / 2:
                self.rate = 0.0
                return 0.0
        return max(self.rate, MIN_FEE_RATE)
