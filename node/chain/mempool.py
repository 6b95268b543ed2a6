"""The mempool: valid unconfirmed transactions, ordered by fee rate, bounded in size.

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
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from core.consensus import BURN, Coin, check_tx_inputs, check_tx_sanity
from core.errors import ValidationError
from core.primitives import Tx

log = logging.getLogger("dotbit.mempool")

MIN_FEE_RATE = 1           # base units per byte
DEFAULT_MAX_BYTES = 50_000_000


@dataclass(slots=True, eq=False)
class MempoolEntry:
    tx: Tx
    txid: bytes
    fee: int
    size: int
    time: float
    height: int                                   # tip height when accepted
    parents: set = field(default_factory=set)     # in-pool txids this one spends from

    @property
    def fee_rate(self) -> float:
        return self.fee / self.size


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
        self.total_bytes = 0
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
        txid = tx.txid
        if tx.is_coinbase:
            raise ValidationError("coinbase", 100, "coinbase transactions are only valid in blocks")
        check_tx_sanity(tx, self.params)
        if txid in self.entries:
            raise ValidationError("txn-already-in-mempool", 0)
        if self.chain.tx_location(txid) is not None:
            raise ValidationError("txn-already-known", 0, "transaction is already in the chain")
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
        height = self.chain.height + 1
        fee = check_tx_inputs(tx, coins, height, self.params)
        self.names.check_mempool(tx, coins, height, self)
        size = tx.size
        if fee < MIN_FEE_RATE * size:
            raise ValidationError("min-relay-fee-not-met", 0, f"fee {fee} below {MIN_FEE_RATE * size}")
        entry = MempoolEntry(tx, txid, fee, size, self.clock(), self.chain.height,
                             {i.prev_txid for i in tx.inputs if i.prev_txid in self.entries})
        self._add(entry)
        self._trim()
        if txid not in self.entries:
            raise ValidationError("mempool-full", 0, "fee rate too low for a full mempool")
        return entry

    def _add(self, entry: MempoolEntry) -> None:
        self.entries[entry.txid] = entry
        for txin in entry.tx.inputs:
            self.spends[txin.outpoint] = entry.txid
        self.total_bytes += entry.size
        self.names.mempool_added(entry.tx)

    def _trim(self) -> None:
        while self.total_bytes > self.max_bytes and self.entries:
            worst = min(self.entries.values(), key=lambda e: (e.fee_rate, -e.time))
            self.remove(worst.txid, reason="evicted")

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

    def remove(self, txid: bytes, reason: str = "", recursive: bool = True) -> None:
        for t in (self.descendants(txid) if recursive else [txid]):
            e = self.entries.pop(t, None)
            if e is None:
                continue
            self.total_bytes -= e.size
            for txin in e.tx.inputs:
                if self.spends.get(txin.outpoint) == t:
                    del self.spends[txin.outpoint]
            for i in range(len(e.tx.outputs)):
                child = self.entries.get(self.spends.get((t, i)))
                if child is not None:
                    child.parents.discard(t)
            self.names.mempool_removed(e.tx)
            if reason:
                log.debug("mempool: removed %s (%s)", t.hex(), reason)

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
        self.total_bytes = 0
        self.names.mempool_reset()
        for tx in list(first) + [e.tx for e in old]:
            try:
                self.accept(tx)
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
                "usage": self.total_bytes, "maxmempool": self.max_bytes,
                "mempoolminfee": MIN_FEE_RATE}
