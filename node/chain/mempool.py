"""The mempool: valid unconfirmed transactions, ordered by fee rate, bounded in memory.

Invariant: every entry is valid in the next block on the tip (parents first), so a block
template is simply the best of the pool and nothing in it waits for a later block while
blocking one that fits now. The pool follows the chain through ChainState events to keep
that true: a connected block removes its transactions, everything that conflicts with them
and name operations it made invalid. After any disconnect (a reorg, even one that only
re-mines coinbases) the pool waits for the chain to settle ("tip" event) and is then
re-checked as a whole against the new tip, the disconnected blocks' transactions first:
checked against the lower heights met on the way, a FIRSTUPDATE due at the new tip would
look immature and be lost.
Name-specific admission rules come from the chain's name layer (`names.check_mempool`).

A full pool costs the node, not the sender (mempool_policy.py): the cap counts real memory;
a transaction below the rolling minimum fee rate, or not paying more than the cheapest package
a full pool would evict, is refused after its coins are looked up and before any signature is
checked; eviction takes the lowest descendant score (Bitcoin Core's: the better of a tx's own
fee rate and its package's) from a heap in O(log n), with the package's descendants; chains of
unconfirmed transactions are limited to MAX_CHAIN so that keeping package sums costs O(1).
"""
from __future__ import annotations

import heapq
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from core.consensus import BURN, Coin, check_tx_inputs, check_tx_sanity
from core.errors import ValidationError
from core.primitives import Tx
from node.chain.mempool_policy import MIN_FEE_RATE, RollingFeeFloor, entry_usage

log = logging.getLogger("dotbit.mempool")

DEFAULT_MAX_BYTES = 100_000_000    # memory, as mempool_policy.entry_usage counts it
MIN_MAX_BYTES = 10_000           # a smaller cap could not hold even a few transactions
MAX_CHAIN = 25                     # in-pool ancestors (and descendants) of one tx, itself included

__all__ = ["Mempool", "MempoolEntry", "MIN_FEE_RATE", "DEFAULT_MAX_BYTES", "MIN_MAX_BYTES", "MAX_CHAIN"]


@dataclass(slots=True, eq=False)
class MempoolEntry:
    tx: Tx
    txid: bytes
    fee: int
    size: int
    time: float
    height: int                                   # tip height when accepted
    parents: set = field(default_factory=set)     # in-pool txids this one spends from
    usage: int = 0                                # memory held (mempool_policy.entry_usage)
    desc_fee: int = 0                             # fee and size of it and its in-pool descendants
    desc_size: int = 0
    desc_count: int = 1
    heap_item: tuple | None = None                # its current item in the eviction heap

    @property
    def fee_rate(self) -> float:
        return self.fee / self.size

    @property
    def score(self) -> float:
        """Eviction order (lowest first): a low-fee parent is kept by a child that pays for it."""
        return max(self.fee / self.size, self.desc_fee / self.desc_size)


class Mempool:
    def __init__(self, chain, params, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 clock: Callable[[], float] = time.time):
        self.chain = chain
        self.params = params
        self.max_bytes = max_bytes
        self.clock = clock
        self.names = chain.names
        self.entries: dict[bytes, MempoolEntry] = {}
        self.spends: dict[tuple[bytes, int], bytes] = {}   # outpoint -> spending txid
        self.total_bytes = 0               # wire bytes
        self.usage = 0                     # memory, what the cap counts
        self.floor = RollingFeeFloor(clock)
        self.refused: Counter[str] = Counter()     # reason -> count (reasons are a fixed set)
        self.evicted = 0
        self._heap: list[tuple] = []       # (score, -time, seq, txid); stale items skipped
        self._seq = 0
        self._disconnected: list[Tx] = []
        self._reorged = False          # a block was disconnected since the last "tip" event
        chain.listeners.subscribe(self._on_chain)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, txid: bytes) -> bool:
        return txid in self.entries

    def get(self, txid: bytes) -> Tx | None:
        e = self.entries.get(txid)
        return e.tx if e else None

    def min_fee_rate(self) -> float:
        """The fee rate (base units per byte) a new transaction must reach now."""
        return max(MIN_FEE_RATE, self.floor.current(self.usage, self.max_bytes))

    # --- admission ----------------------------------------------------------------------------

    def coin(self, txid: bytes, index: int, ignore_spends: bool = False) -> Coin | None:
        """A coin spendable by a new transaction: from the chain or an in-pool output."""
        if not ignore_spends and (txid, index) in self.spends:
            return None
        parent = self.entries.get(txid)
        if parent is not None:
            if index >= len(parent.tx.outputs) or parent.tx.outputs[index].covenant.type == BURN:
                return None
            out = parent.tx.outputs[index]
            return Coin(out.value, out.address, out.covenant, self.chain.height + 1, False)
        return self.chain.get_coin(txid, index)

    def accept(self, tx: Tx) -> MempoolEntry:
        """Admits tx or raises ValidationError; every refusal is counted by reason (/metrics)."""
        try:
            return self._accept(tx)
        except ValidationError as e:
            self.refused[e.reason] += 1
            raise

    def _accept(self, tx: Tx, reorg: bool = False) -> MempoolEntry:
        txid = tx.txid
        if tx.is_coinbase:
            raise ValidationError("coinbase", 100, "coinbase transactions are only valid in blocks")
        check_tx_sanity(tx, self.params)
        if txid in self.entries:
            raise ValidationError("txn-already-in-mempool", 0)
        if self.chain.tx_location(txid) is not None:
            raise ValidationError("txn-already-known", 0, "transaction is already in the chain")
        coins = self._coins(tx)
        size = tx.size
        usage = entry_usage(tx)
        ancestors = self._admission_policy(tx, coins, size, usage, reorg)   # before any signature
        height = self.chain.height + 1
        fee = check_tx_inputs(tx, coins, height, self.params)
        self.names.check_mempool(tx, coins, height, self)
        entry = MempoolEntry(tx, txid, fee, size, self.clock(), self.chain.height,
                             {i.prev_txid for i in tx.inputs if i.prev_txid in self.entries}, usage)
        self._add(entry, ancestors)
        self._trim()
        if txid not in self.entries:
            raise ValidationError("mempool-full", 0, "fee rate too low for a full mempool")
        return entry

    def _coins(self, tx: Tx) -> list[Coin]:
        coins = []
        for txin in tx.inputs:
            spender = self.spends.get(txin.outpoint)
            if spender is not None:
                raise ValidationError("txn-mempool-conflict", 0, f"input already spent by {spender.hex()}")
            coin = self.coin(*txin.outpoint)
            if coin is None:
                raise ValidationError("bad-txns-inputs-missingorspent", 0,
                                      f"{txin.prev_txid.hex()}:{txin.prev_index}")
            coins.append(coin)
        return coins

    def _admission_policy(self, tx: Tx, coins: list[Coin], size: int, usage: int,
                          reorg: bool) -> list[MempoolEntry]:
        """The cheap refusals, from values alone: fee rate below the floor, not enough to
        displace what a full pool holds, too long a chain. Returns the in-pool ancestors.
        Re-admitted after a reorg, a tx meets only the relay minimum (as in Bitcoin Core): it
        was in a block or in the pool before the floor rose; the cap is enforced by _trim."""
        fee = sum(c.value for c in coins) - sum(o.value for o in tx.outputs)
        if fee >= 0:            # (below zero check_tx_inputs says so, with its own reason)
            floor = MIN_FEE_RATE if reorg else self.min_fee_rate()
            if fee < floor * size:
                reason = "min-relay-fee-not-met" if floor == MIN_FEE_RATE else "mempool-min-fee-not-met"
                raise ValidationError(reason, 0, f"fee {fee} below {floor * size:.0f}")
            worst = self._worst() if self.usage + usage > self.max_bytes and not reorg else None
            if worst is not None and fee / size <= worst.score:
                raise ValidationError("mempool-full", 0, f"fee rate {fee / size:.2f} does not beat "
                                      f"{worst.score:.2f}, the lowest in a full mempool")
        ancestors = self._ancestors({i.prev_txid for i in tx.inputs if i.prev_txid in self.entries})
        if len(ancestors) + 1 > MAX_CHAIN or any(a.desc_count + 1 > MAX_CHAIN for a in ancestors):
            raise ValidationError("too-long-mempool-chain", 0, f"more than {MAX_CHAIN} unconfirmed in a chain")
        return ancestors

    def _ancestors(self, parents, stop: int = MAX_CHAIN) -> list[MempoolEntry]:
        """In-pool ancestors reached from `parents` (txids), at most `stop` + 1 of them."""
        out, seen, todo = [], set(parents), list(parents)
        while todo and len(out) <= stop:
            e = self.entries.get(todo.pop())
            if e is None:
                continue
            out.append(e)
            for p in e.parents:
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        return out

    def _add(self, entry: MempoolEntry, ancestors: list[MempoolEntry]) -> None:
        entry.desc_fee, entry.desc_size = entry.fee, entry.size
        self.entries[entry.txid] = entry
        for txin in entry.tx.inputs:
            self.spends[txin.outpoint] = entry.txid
        self.total_bytes += entry.size
        self.usage += entry.usage
        self._push(entry)
        for a in ancestors:
            a.desc_fee += entry.fee
            a.desc_size += entry.size
            a.desc_count += 1
            self._push(a)
        self.names.mempool_added(entry.tx)

    # --- eviction -----------------------------------------------------------------------------

    def _push(self, e: MempoolEntry) -> None:
        """(Re)files e under its current score; the old item goes stale, skipped when met."""
        self._seq += 1
        e.heap_item = (e.score, -e.time, self._seq, e.txid)
        heapq.heappush(self._heap, e.heap_item)
        if len(self._heap) > 2 * len(self.entries) + 64:
            self._heap = [x.heap_item for x in self.entries.values()]
            heapq.heapify(self._heap)

    def _worst(self) -> MempoolEntry | None:
        """The entry with the lowest score (the newest among equals): O(log n) amortized."""
        while self._heap:
            item = self._heap[0]
            e = self.entries.get(item[3])
            if e is not None and e.heap_item is item:
                return e
            heapq.heappop(self._heap)
        return None

    def _trim(self) -> None:
        while self.usage > self.max_bytes and self.entries:
            worst = self._worst()
            if worst is None:          # cannot happen while entries remain; never spin on it
                break
            self.floor.bump(worst.desc_fee / worst.desc_size)
            self.evicted += self.remove(worst.txid, reason="evicted")

    def descendants(self, txid: bytes) -> list[bytes]:
        out, todo, seen = [], [txid], {txid}
        while todo:
            t = todo.pop()
            out.append(t)
            e = self.entries.get(t)
            if e is None:
                continue
            for i in range(len(e.tx.outputs)):
                child = self.spends.get((t, i))
                if child is not None and child not in seen:
                    seen.add(child)
                    todo.append(child)
        return out

    def remove(self, txid: bytes, reason: str = "", recursive: bool = True) -> int:
        """Removes txid (and its descendants when recursive); returns how many left."""
        doomed = [self.entries[t] for t in (self.descendants(txid) if recursive else [txid])
                  if t in self.entries]
        gone = {e.txid for e in doomed}
        # Ancestors that stay lose each removed entry from their package sums: found first,
        # while every link is still in place.
        kept_ancestors = [(e, [a for a in self._ancestors(e.parents) if a.txid not in gone]) for e in doomed]
        for e, ancestors in kept_ancestors:
            for a in ancestors:
                a.desc_fee -= e.fee
                a.desc_size -= e.size
                a.desc_count -= 1
                self._push(a)
            self._unlink(e)
            if reason:
                log.debug("mempool: removed %s (%s)", e.txid.hex(), reason)
        return len(doomed)

    def _unlink(self, e: MempoolEntry) -> None:
        t = e.txid
        del self.entries[t]
        self.total_bytes -= e.size
        self.usage -= e.usage
        for txin in e.tx.inputs:
            if self.spends.get(txin.outpoint) == t:
                del self.spends[txin.outpoint]
        for i in range(len(e.tx.outputs)):
            child = self.entries.get(self.spends.get((t, i)))
            if child is not None:
                child.parents.discard(t)
        self.names.mempool_removed(e.tx)

    # --- following the chain ------------------------------------------------------------------

    def _on_chain(self, kind: str, block, entry) -> None:
        if kind == "connect" and not self._reorged:
            for tx in block.txs:
                if tx.txid in self.entries:
                    self.remove(tx.txid, recursive=False)
                for txin in tx.inputs:
                    spender = self.spends.get(txin.outpoint)
                    if spender is not None:
                        self.remove(spender, reason="conflict with block")
            for t in self.names.mempool_conflicts(self.chain.height + 1, self):
                self.remove(t, reason="name conflict with block")
            self.floor.block_connected()
        elif kind == "disconnect":
            self._disconnected[:0] = [tx for tx in block.txs[1:]]
            self._reorged = True
        elif kind == "tip" and self._reorged:
            # Depths may have shrunk (a NAME_NEW re-mined later): re-check everything.
            disconnected, self._disconnected, self._reorged = self._disconnected, [], False
            self.revalidate(disconnected)

    def revalidate(self, first: list[Tx] = ()) -> None:
        """Re-admit `first` (transactions of disconnected blocks, in chain order) and then the
        current pool against the new tip; whatever no longer fits is dropped."""
        old = sorted(self.entries.values(), key=lambda e: e.time)
        self.entries.clear()
        self.spends.clear()
        self.total_bytes = self.usage = 0
        self._heap.clear()
        self.names.mempool_reset()
        for tx in list(first) + [e.tx for e in old]:
            try:
                self._accept(tx, reorg=True)
            except ValidationError as e:
                log.debug("mempool: dropped %s after reorg: %s", tx.txid.hex(), e.reason)

    # --- block templates ----------------------------------------------------------------------

    def select(self, max_bytes: int) -> list[Tx]:
        """Transactions by descending fee rate, parents always before children, within
        max_bytes; all of them fit the next block (the pool's invariant)."""
        chosen: list[Tx] = []
        included: set[bytes] = set()
        size = 0
        waiting: dict[bytes, list[MempoolEntry]] = {}
        for e in sorted(self.entries.values(), key=lambda e: -e.fee_rate):
            stack = [e]
            while stack:
                cur = stack.pop()
                if cur.txid in included or size + cur.size > max_bytes:
                    continue
                missing = [p for p in cur.parents if p not in included]
                if missing:
                    waiting.setdefault(missing[0], []).append(cur)
                    continue
                chosen.append(cur.tx)
                included.add(cur.txid)
                size += cur.size
                stack.extend(waiting.pop(cur.txid, []))
        return chosen

    def info(self) -> dict:
        return {"size": len(self.entries), "bytes": self.total_bytes,
                "usage": self.usage, "maxmempool": self.max_bytes,
                "mempoolminfee": self.min_fee_rate(), "minrelaytxfee": MIN_FEE_RATE}
