"""Chain state: block acceptance, most-work chain selection, connect/disconnect and reorgs.

Every connect or disconnect is ONE write batch holding the block's projection changes, its
undo record and the new tip, so a crash leaves the previous or the next state, never a mix.
Listeners receive ("connect" | "disconnect", block, entry) after each batch has committed.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import msgpack

from node.chain import layout as L
from node.chain.blockindex import FAILED, FAILED_CHILD, HAVE_DATA, VALID, Entry, fork_point, new_entry
from core.consensus import (BURN, Coin, check_block_sanity, check_coinbase_height, check_header_context,
                        check_tx_inputs, next_bits, subsidy)
from core.encoding import pack
from core.errors import StoreError, ValidationError
from core.primitives import Block, Header
from node.events import Event
from node.names.index import NameIndex
from core.names.rules import check_name_tx

log = logging.getLogger("dotbit.chain")

MAX_ORPHANS = 256
# Reasons that may come from corruption in transit of an otherwise valid block, or from our
# own clock: the block hash must not be remembered as invalid for these.
NOT_REMEMBERED = {"bad-txnmrklroot", "high-hash", "bad-diffbits-range", "time-too-new", "bad-encoding"}


def _unpack(b: bytes):
    return msgpack.unpackb(b, raw=False)


class CoinView:
    """Coins as seen while connecting one block: the store plus this block's own changes."""

    __slots__ = ("db", "created", "spent")

    def __init__(self, db):
        self.db = db
        self.created: dict[tuple[bytes, int], Coin] = {}
        self.spent: dict[tuple[bytes, int], Coin] = {}

    def get(self, outpoint: tuple[bytes, int]) -> Coin | None:
        if outpoint in self.spent:
            return None
        coin = self.created.get(outpoint)
        if coin is not None:
            return coin
        raw = self.db.get(L.coin_key(*outpoint))
        return Coin.from_obj(_unpack(raw)) if raw is not None else None

    def spend(self, outpoint, coin: Coin) -> bool:
        """Returns True when the coin came from the store (so the undo record must keep it);
        a coin created and spent inside the same block leaves no trace."""
        if self.created.pop(outpoint, None) is None:
            self.spent[outpoint] = coin
            return True
        return False


class ChainState:
    def __init__(self, db, params, *, clock: Callable[[], float] = time.time, verify_sigs: bool = True):
        self.db = db
        self.params = params
        self.clock = clock
        self.verify_sigs = verify_sigs
        self.names = NameIndex(db, params)   # the name projection, part of consensus
        self.entries: dict[bytes, Entry] = {}
        self.chain: list[Entry] = []         # main chain by height
        self.orphans: dict[bytes, Block] = {}  # orphan hash -> block
        self.listeners: Event[[str, Block | None, Entry]] = Event(log, "listener failed on {0}")
        self.failure_reasons: dict[bytes, str] = {}
        self.progress: Callable | None = None  # called (entry, target) after each connect
        self._just_stored: tuple[bytes, Block] | None = None
        self._open()

    # --- opening -------------------------------------------------------------------------

    def _open(self) -> None:
        genesis = self.params.genesis
        meta = self.db.get(L.VERSION)
        if meta is None:
            with self.db.write_batch() as b:
                b.put(L.VERSION, pack([L.DB_VERSION, self.params.name, genesis.hash]))
        else:
            version, network, ghash = _unpack(meta)
            if version != L.DB_VERSION:
                raise StoreError(f"database version {version}, this node needs {L.DB_VERSION}; run reindex")
            if network != self.params.name or ghash != genesis.hash:
                raise StoreError(f"database belongs to network {network!r}, not {self.params.name!r}")
        self._load_index()
        if not self.entries:
            self._store_block(genesis, new_entry(genesis.header, genesis.hash, None))
        if not self.chain:
            self._activate(self.entries[genesis.hash])

    def _load_index(self) -> None:
        rows = []
        for key, value in self.db.iterator(prefix=L.HEADER):
            hb, height, work, status = _unpack(value)
            rows.append((height, key[1:], Header.from_bytes(hb), int.from_bytes(work, "big"), status))
        rows.sort(key=lambda r: r[0])
        for height, h, header, work, status in rows:
            prev = self.entries.get(header.prev_hash)
            if height and prev is None:
                raise StoreError(f"header index broken: parent of {h.hex()} missing")
            self.entries[h] = Entry(h, header, height, work, status, prev)
        tip_hash = self.db.get(L.TIP)
        if tip_hash is None:
            return
        tip = self.entries[tip_hash]
        self.chain = [None] * (tip.height + 1)
        e = tip
        while e is not None:
            self.chain[e.height] = e
            e = e.prev

    # --- queries ---------------------------------------------------------------------------

    @property
    def tip(self) -> Entry:
        return self.chain[-1]

    @property
    def height(self) -> int:
        return len(self.chain) - 1

    def entry_at(self, height: int) -> Entry | None:
        return self.chain[height] if 0 <= height < len(self.chain) else None

    def on_main_chain(self, entry: Entry) -> bool:
        return entry.height < len(self.chain) and self.chain[entry.height] is entry

    def get_block(self, block_hash: bytes) -> Block | None:
        raw = self.db.get(L.block_key(block_hash))
        return Block.from_bytes(raw, max_size=len(raw)) if raw is not None else None

    def get_coin(self, txid: bytes, index: int) -> Coin | None:
        raw = self.db.get(L.coin_key(txid, index))
        return Coin.from_obj(_unpack(raw)) if raw is not None else None

    def tx_location(self, txid: bytes) -> tuple[bytes, int] | None:
        raw = self.db.get(L.txindex_key(txid))
        return tuple(_unpack(raw)) if raw is not None else None

    def next_bits_after(self, prev: Entry) -> int:
        p = self.params
        first_time = None
        if p.retarget and (prev.height + 1) % p.retarget_interval == 0:
            first_time = prev.ancestor(prev.height + 1 - p.retarget_interval, self.chain).header.time
        return next_bits(p, prev.height, prev.header.bits, prev.header.time, first_time)

    # --- accepting blocks ------------------------------------------------------------------

    def process_block(self, block: Block) -> str:
        """Accept a block from anywhere (miner, RPC, peer). Returns "duplicate", "orphan",
        "active" (it is now the tip or on the main chain) or "side" (stored on a side branch).
        Raises ValidationError for invalid blocks."""
        h = block.hash
        known = self.entries.get(h)
        if known is not None:
            if known.invalid:
                raise ValidationError("duplicate-invalid", 0, "block is known to be invalid")
            if known.status & HAVE_DATA:
                return "duplicate"
        prev = self.entries.get(block.header.prev_hash)
        try:
            check_block_sanity(block, self.params)
        except ValidationError as e:
            if prev is not None and e.reason not in NOT_REMEMBERED:
                self._remember_invalid(block.header, h, prev, FAILED)
            raise
        if prev is None:
            if len(self.orphans) >= MAX_ORPHANS:
                self.orphans.pop(next(iter(self.orphans)))
            self.orphans[h] = block
            return "orphan"
        entry = known or new_entry(block.header, h, prev)
        if prev.invalid:
            self._remember_invalid(block.header, h, prev, FAILED_CHILD)
            raise ValidationError("bad-prevblk", 100, "block builds on an invalid block")
        try:
            check_header_context(block.header, self.next_bits_after(prev), prev.median_time_past(),
                                 int(self.clock()))
            check_coinbase_height(block, entry.height)
        except ValidationError as e:
            if e.reason not in NOT_REMEMBERED:
                self._remember_invalid(block.header, h, prev, FAILED)
            raise
        self._store_block(block, entry)
        self._just_stored = (h, block)     # spares _activate decoding it again from the store
        try:
            self._activate_best(entry)
        finally:
            self._just_stored = None
        self._connect_orphans(h)
        if entry.invalid:
            raise ValidationError(self._failure_reason(entry), 100, "block or an ancestor failed to connect")
        return "active" if self.on_main_chain(entry) else "side"

    def _failure_reason(self, entry: Entry) -> str:
        e = entry
        while e is not None and not e.status & FAILED:
            e = e.prev
        return self.failure_reasons.get(e.hash, "bad-block") if e is not None else "bad-block"

    def _connect_orphans(self, parent_hash: bytes) -> None:
        waiting = [parent_hash]
        while waiting:
            ph = waiting.pop()
            for oh, ob in [(oh, ob) for oh, ob in self.orphans.items() if ob.header.prev_hash == ph]:
                del self.orphans[oh]
                try:
                    self.process_block(ob)
                    waiting.append(oh)
                except ValidationError as e:
                    log.info("orphan %s rejected: %s", oh.hex(), e.reason)

    def _remember_invalid(self, header: Header, h: bytes, prev: Entry, flag: int) -> None:
        entry = self.entries.get(h) or new_entry(header, h, prev)
        entry.status |= flag
        self.entries[h] = entry
        with self.db.write_batch() as b:
            b.put(L.header_key(h), entry.encode())

    def _store_block(self, block: Block, entry: Entry) -> None:
        entry.status |= HAVE_DATA
        with self.db.write_batch() as b:
            b.put(L.block_key(entry.hash), block.to_bytes())
            b.put(L.header_key(entry.hash), entry.encode())
        self.entries[entry.hash] = entry

    # --- chain selection -------------------------------------------------------------------

    def _best_candidate(self) -> Entry:
        """The most-work entry whose whole branch is stored and not known invalid."""
        best = self.tip
        for e in self.entries.values():
            if e.work > best.work and self._branch_ok(e):
                best = e
        return best

    def _branch_ok(self, e: Entry) -> bool:
        while e is not None and not self.on_main_chain(e):
            if e.invalid or not e.status & HAVE_DATA:
                return False
            e = e.prev
        return True

    def _activate_best(self, hint: Entry | None = None) -> None:
        old_tip = self.tip if self.chain else None
        try:
            self._activate_loop(hint)
        finally:
            if self.chain and self.tip is not old_tip:
                # One event once the chain has settled (after a whole reorg), e.g. for the
                # mempool to put back the transactions of disconnected blocks.
                self._emit("tip", None, self.tip)

    def _activate_loop(self, hint: Entry | None) -> None:
        # The common case is a block extending the tip: try it without scanning the index.
        # Only after a failed connect is a full scan for the best remaining branch needed.
        while True:
            if hint is not None and hint.work > self.tip.work and self._branch_ok(hint):
                best = hint
            else:
                best = self._best_candidate()
            if best is self.tip:
                return
            if self._activate(best) and best is hint:
                return
            hint = None

    def _activate(self, target: Entry) -> bool:
        """Reorganise onto target: disconnect to the fork, connect up to target. A block that
        fails marks itself and its descendants invalid; the caller then picks again."""
        if self.chain:
            fork = fork_point(self.tip, target)
            while self.tip is not fork:
                self._disconnect_tip()
            start = fork.height + 1
        else:
            start = 0
        path = []
        e = target
        while e is not None and e.height >= start:
            path.append(e)
            e = e.prev
        for entry in reversed(path):
            fresh = self._just_stored
            block = fresh[1] if fresh is not None and fresh[0] == entry.hash else self.get_block(entry.hash)
            try:
                self._connect(block, entry)
                if self.progress is not None:
                    self.progress(entry, target)
            except ValidationError as err:
                log.warning("block %s at %d invalid: %s", entry.hash.hex(), entry.height, err)
                self._mark_failed(entry, err.reason)
                return False
        return True

    def _mark_failed(self, entry: Entry, reason: str) -> None:
        entry.status |= FAILED
        self.failure_reasons[entry.hash] = reason
        with self.db.write_batch() as b:
            b.put(L.header_key(entry.hash), entry.encode())
            for e in self.entries.values():
                if e.height > entry.height and not e.invalid and e.ancestor(entry.height) is entry:
                    e.status |= FAILED_CHILD
                    b.put(L.header_key(e.hash), e.encode())

    # --- connect / disconnect --------------------------------------------------------------

    def _connect(self, block: Block, entry: Entry) -> None:
        height = entry.height
        params = self.params
        view = CoinView(self.db)
        spent_undo = []
        fees = 0
        names = self.names
        name_ops = []            # (tx position, new record)
        in_block: dict = {}      # name -> record as changed earlier in this block
        before: dict = {}        # name -> record before this block (read once, reused by names.connect)

        def lookup(name):
            rec = in_block.get(name)
            if rec is not None:
                return rec
            if name not in before:
                before[name] = names.get(name)
            return before[name]

        for n, tx in enumerate(block.txs):
            txid = tx.txid
            if n:
                coins = []
                for txin in tx.inputs:
                    coin = view.get(txin.outpoint)
                    if coin is None:
                        raise ValidationError("bad-txns-inputs-missingorspent", 100,
                                              f"{txin.prev_txid.hex()}:{txin.prev_index}")
                    coins.append(coin)
                fees += check_tx_inputs(tx, coins, height, params, self.verify_sigs)
                op = check_name_tx(tx, coins, height, params, lookup)
                if op is not None and op.record is not None:
                    in_block[op.name] = op.record
                    name_ops.append((n, op.record))
                for txin, coin in zip(tx.inputs, coins):
                    if view.spend(txin.outpoint, coin):
                        spent_undo.append([txin.prev_txid, txin.prev_index, coin.to_obj()])
            for i, out in enumerate(tx.outputs):
                if out.covenant.type != BURN:
                    view.created[(txid, i)] = Coin(out.value, out.address, out.covenant, height, n == 0)
        coinbase_out = sum(o.value for o in block.txs[0].outputs)
        if coinbase_out > subsidy(height, params) + fees:
            raise ValidationError("bad-cb-amount", 100, "coinbase pays more than subsidy + fees")

        prev_root = entry.prev.header.name_root if entry.prev is not None else bytes(32)
        try:
            with self.db.write_batch() as b:
                name_undo = names.connect(block, height, name_ops, prev_root, b, before)
                self._write_connect(b, block, entry, view, spent_undo, name_undo)
        except BaseException:
            names.discard_events()
            raise
        self.chain.append(entry)
        names.publish()
        self._emit("connect", block, entry)

    def _write_connect(self, b, block, entry, view, spent_undo, name_undo) -> None:
        height = entry.height
        for (txid, idx), coin in view.spent.items():
            b.delete(L.coin_key(txid, idx))
            b.delete(L.addr_coin_key(coin.address, txid, idx))
        for (txid, idx), coin in view.created.items():
            b.put(L.coin_key(txid, idx), pack(coin.to_obj()))
            b.put(L.addr_coin_key(coin.address, txid, idx), b"")
        for pos, tx in enumerate(block.txs):
            txid = tx.txid
            b.put(L.txindex_key(txid), pack([entry.hash, pos]))
            for addr in {o.address for o in tx.outputs}:
                b.put(L.addr_hist_key(addr, height, txid), b"")
        self._write_spender_history(b, block, spent_undo, height, put=True)
        b.put(L.undo_key(entry.hash), pack([spent_undo, name_undo]))
        b.put(L.height_key(height), entry.hash)
        b.put(L.TIP, entry.hash)
        entry.status |= VALID
        b.put(L.header_key(entry.hash), entry.encode())

    @staticmethod
    def _write_spender_history(b, block: Block, spent_undo, height: int, put: bool) -> None:
        """Address history entries for the spending side: the spent coin's address is in the
        undo record, or, for a coin created earlier in the same block, in that block's tx."""
        spent_addr = {(txid, idx): coin_obj[1] for txid, idx, coin_obj in spent_undo}
        for tx in block.txs:
            for i, out in enumerate(tx.outputs):
                spent_addr.setdefault((tx.txid, i), out.address)
        for tx in block.txs[1:]:
            for addr in {spent_addr[txin.outpoint] for txin in tx.inputs}:
                key = L.addr_hist_key(addr, height, tx.txid)
                b.put(key, b"") if put else b.delete(key)

    def _disconnect_tip(self) -> None:
        entry = self.tip
        block = self.get_block(entry.hash)
        raw = self.db.get(L.undo_key(entry.hash))
        if block is None or raw is None:
            raise StoreError(f"cannot disconnect {entry.hash.hex()}: block or undo data missing")
        spent_undo, name_undo = _unpack(raw)
        height = entry.height
        with self.db.write_batch() as b:
            self.names.disconnect(block, height, name_undo, b)
            for tx in block.txs:
                txid = tx.txid
                b.delete(L.txindex_key(txid))
                for i, out in enumerate(tx.outputs):
                    if out.covenant.type != BURN:
                        b.delete(L.coin_key(txid, i))
                        b.delete(L.addr_coin_key(out.address, txid, i))
                for addr in {o.address for o in tx.outputs}:
                    b.delete(L.addr_hist_key(addr, height, txid))
            self._write_spender_history(b, block, spent_undo, height, put=False)
            for txid, idx, coin_obj in spent_undo:
                b.put(L.coin_key(txid, idx), pack(coin_obj))
                b.put(L.addr_coin_key(coin_obj[1], txid, idx), b"")
            b.delete(L.undo_key(entry.hash))
            b.delete(L.height_key(height))
            b.put(L.TIP, entry.prev.hash)
        self.chain.pop()
        self.names.publish()
        self._emit("disconnect", block, entry)

    def _emit(self, kind: str, block: Block | None, entry: Entry) -> None:
        self.listeners.emit(kind, block, entry)


    # --- maintenance --------------------------------------------------------------------

    def reindex(self) -> None:
        """Forget every projection and rebuild it by re-validating the stored blocks from
        genesis (signatures included); the best valid stored branch becomes the tip."""
        for prefix in L.PROJECTIONS:
            while True:
                keys = [k for k, _ in zip((k for k, _ in self.db.iterator(prefix=prefix)), range(50_000))]
                if not keys:
                    break
                with self.db.write_batch() as b:
                    for k in keys:
                        b.delete(k)
        with self.db.write_batch() as b:
            for e in self.entries.values():
                e.status &= HAVE_DATA
                b.put(L.header_key(e.hash), e.encode())
        self.chain = []
        self.failure_reasons.clear()
        self._activate(self.entries[self.params.genesis.hash])
        self._activate_best()
