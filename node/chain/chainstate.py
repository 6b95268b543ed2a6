"""Chain state: block acceptance, most-work chain selection, connect/disconnect and reorgs.

Every connect or disconnect is ONE write batch holding the block's projection changes, its
undo record and the new tip, so a crash leaves the previous or the next state, never a mix.
Listeners receive ("connect" | "disconnect", block, entry) after each batch has committed.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from core.consensus import (Coin, check_block_sanity, check_coinbase_height, check_header_context,
                            earliest_time, required_bits, subsidy)
from core.auxpow import TRANSIT_REASONS
from core.errors import StoreError, ValidationError
from core.primitives import Block, Header
from node.chain.blockindex import FAILED, FAILED_CHILD, HAVE_DATA, VALID, Entry, fork_point, new_entry
from node.chain.chaindb import MISSING, ChainDB, CoinView
from node.chain.orphans import OrphanPool
from node.chain.blockcheck import check_block_txs, known_coins, send_ahead, settle_ahead
from node.chain.blockfeed import BlockFeed
from node.chain.blockgroup import verdict
from node.chain.sigpool import SigPool
from node.events import Event
from node.names.index import NameIndex

log = logging.getLogger("dotbit.chain")


# Reasons that may come from corruption in transit of an otherwise valid block, or from our
# own clock: the block hash must not be remembered as invalid for these (an AuxPoW is not
# hashed into the block hash, so none of its failures are).
NOT_REMEMBERED = {"bad-txnmrklroot", "high-hash", "bad-diffbits-range", "time-too-new", "bad-encoding",
                  *TRANSIT_REASONS}


class ChainState:
    def __init__(self, db, params, *, clock: Callable[[], float] = time.time, verify_sigs: bool = True,
                 par: int = 1):
        self.db = db
        self.store = ChainDB(db)             # every chain key is read and written there
        self.params = params
        self.clock = clock
        self.verify_sigs = verify_sigs
        self.sigpool = SigPool(par)          # --par: signature workers for big blocks
        self.names = NameIndex(db, params)   # the name projection, part of consensus
        # Further projections written in each block's batch, not part of consensus (the
        # resolver's signed zone): connect(batch, entry, {name: record}) and
        # disconnect(batch, entry, name_undo_changed); reset(db) and attach(chain) on reindex.
        self.projections: list = []
        self.entries: dict[bytes, Entry] = {}
        self.chain: list[Entry] = []         # main chain by height
        self.orphans = OrphanPool()          # blocks whose parent is not known yet
        self.listeners: Event[[str, Block | None, Entry]] = Event(log, "listener failed on {0}")
        self.failure_reasons: dict[bytes, str] = {}
        self.progress: Callable | None = None  # called (entry, target) after each connect
        self._just_stored: dict[bytes, Block] = {}   # spares _activate decoding them again
        self.group: dict[bytes, Block] | None = None  # blockgroup.process_blocks: stored, not yet activated
        self._prefetch: tuple | None = None   # blockcheck.send_ahead's, for the next connect only
        self._rescan = False                  # the next activation ignores its hint (process_block)
        self._open()

    # --- opening -------------------------------------------------------------------------

    def _open(self) -> None:
        genesis = self.params.genesis
        self.store.check_meta(self.params.name, genesis.hash)
        self._load_index()
        if not self.entries:
            self._store_block(genesis, new_entry(genesis.header, genesis.hash, None))
        if not self.chain:
            self._activate(self.entries[genesis.hash])
        else:
            # A block is stored and connected in two batches: one stored when the process died
            # is connected now, else the node would answer "duplicate" to it for ever (and a
            # miner rebuilding the same block would stall).
            self._activate_best()

    def _load_index(self) -> None:
        for height, h, header, work, status in self.store.header_rows():
            prev = self.entries.get(header.prev_hash)
            if height and prev is None:
                raise StoreError(f"header index broken: parent of {h.hex()} missing")
            self.entries[h] = Entry(h, header, height, work, status, prev)
        tip_hash = self.store.tip_hash()
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
        """The stored block, None without a body; StoreError when its body is damaged."""
        block, why = self.store.read_whole(block_hash)
        if why == MISSING:
            return None
        if block is None:
            raise StoreError(f"block {block_hash.hex()}: {why}; stop the node and run reindex")
        return block

    def get_coin(self, txid: bytes, index: int) -> Coin | None:
        return self.store.get_coin(txid, index)

    def tx_location(self, txid: bytes) -> tuple[bytes, int] | None:
        return self.store.tx_location(txid)

    def _time_at(self, prev: Entry):
        """time_at(h) for a block whose parent is `prev` (core.consensus.TimeAt)."""
        return lambda h: prev.ancestor(h, self.chain).header.time

    def next_bits_after(self, prev: Entry) -> int:
        return required_bits(self.params, prev.height + 1, prev.header.bits, self._time_at(prev))

    def earliest_time_after(self, prev: Entry) -> int:
        """The earliest time a child of `prev` may carry (templates, getblocktemplate)."""
        return earliest_time(self.params, prev.height + 1, self._time_at(prev))

    # --- accepting blocks ------------------------------------------------------------------

    def process_block(self, block: Block) -> str:
        """Accept a block from anywhere (miner, RPC, peer). Returns "duplicate", "orphan",
        "active" (it is now the tip or on the main chain) or "side" (stored on a side branch);
        "stored" within blockgroup.process_blocks. Raises ValidationError for invalid blocks."""
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
            self.orphans.add(h, block)
            return "orphan"
        entry = known or new_entry(block.header, h, prev)
        if prev.invalid:
            self._remember_invalid(block.header, h, prev, FAILED_CHILD)
            raise ValidationError("bad-prevblk", 100, "block builds on an invalid block")
        try:
            check_header_context(block.header, entry.height, prev.header.bits, self._time_at(prev),
                                 self.params, int(self.clock()))
            check_coinbase_height(block, entry.height)
        except ValidationError as e:
            if e.reason not in NOT_REMEMBERED:
                self._remember_invalid(block.header, h, prev, FAILED)
            raise
        # A known entry stored again: its body was dropped (ChainDB.drop_body) and is back, so
        # its stored descendants can connect again: the next activation looks at every branch.
        self._rescan = self._rescan or known is not None
        self._store_block(block, entry)
        if self.group is not None:
            self.group[h] = block
            return "stored"
        self._just_stored = {h: block}
        try:
            self._activate_best(entry)
        finally:
            self._just_stored = {}
        self._connect_orphans(h)
        return verdict(self, entry)

    def _connect_orphans(self, parent_hash: bytes) -> None:
        waiting = [parent_hash]
        while waiting:
            ph = waiting.pop()
            for oh, ob in self.orphans.children(ph):
                self.orphans.take(oh)
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
            self.store.put_header(b, entry)

    def _store_block(self, block: Block, entry: Entry) -> None:
        entry.status |= HAVE_DATA
        self.store.store_block(block, entry)
        self.entries[entry.hash] = entry

    # --- chain selection -------------------------------------------------------------------

    def _best_candidate(self) -> Entry:
        """The most-work entry whose whole branch is stored and not known invalid."""
        tip = self.tip
        # Most work first, and the first usable branch wins: a reindex (tip at genesis, every
        # stored block a candidate) then walks one branch instead of every entry's (quadratic:
        # 9% of a 2,000-block reindex). The sort is stable: ties go to the first indexed, as before.
        more = sorted((e for e in self.entries.values() if e.work > tip.work), key=lambda e: e.work, reverse=True)
        for e in more:
            if self._branch_ok(e):
                return e
        return tip

    def _branch_ok(self, e: Entry) -> bool:
        while e is not None and not self.on_main_chain(e):
            if e.invalid or not e.status & HAVE_DATA:
                return False
            e = e.prev
        return True

    def _activate_best(self, hint: Entry | None = None) -> None:
        if self._rescan:
            hint, self._rescan = None, False
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
        feed = BlockFeed(path[::-1], self._block_for)
        for entry, block in feed:
            if block is None:            # its stored body is missing or damaged: not its fault
                why = self.store.drop_body(entry)
                log.error("block %s at %d: %s", entry.hash.hex(), entry.height, why)
                return False
            try:
                self._connect(block, entry, feed.ahead)
                if self.progress is not None:
                    self.progress(entry, target)
            except ValidationError as err:
                log.warning("block %s at %d invalid: %s", entry.hash.hex(), entry.height, err)
                self._mark_failed(entry, err.reason)
                return False
        return True

    def _block_for(self, entry: Entry) -> Block | None:
        fresh = self._just_stored.get(entry.hash)
        return fresh if fresh is not None else self.store.whole_block(entry.hash)

    def _mark_failed(self, entry: Entry, reason: str) -> None:
        entry.status |= FAILED
        self.failure_reasons[entry.hash] = reason
        with self.db.write_batch() as b:
            self.store.put_header(b, entry)
            for e in self.entries.values():
                if e.height > entry.height and not e.invalid and e.ancestor(entry.height) is entry:
                    e.status |= FAILED_CHILD
                    self.store.put_header(b, e)

    # --- connect / disconnect --------------------------------------------------------------

    def _connect(self, block: Block, entry: Entry, ahead: Callable[[], Block | None] | None = None) -> None:
        # Signatures of a big block go to the worker processes while this thread does the
        # coin and name work and builds the block's batch: they are collected only before the
        # batch commits, so the workers have that much longer. Every other failure is raised
        # through sigs.finish() first: a bad signature checked before it in serial order wins.
        sigs = self.sigpool.begin(block) if self.verify_sigs else None
        try:
            self._connect_checked(block, entry, sigs, ahead)
        except ValidationError:
            if sigs is not None:
                sigs.finish()        # a bad signature checked before this failure comes first
            raise
        self.chain.append(entry)
        self.names.publish()
        self._emit("connect", block, entry)

    def _connect_checked(self, block: Block, entry: Entry, sigs, ahead) -> None:
        """The connect's checks and its one batch; the batch commits only once `sigs` (the
        signatures the workers hold) all hold. `ahead()` gives the next block: its checks go to
        the workers before this block's own checks begin, so they have this whole connect."""
        height = entry.height
        params = self.params
        names = self.names
        pre, self._prefetch = self._prefetch, None       # for this connect only, whatever it is
        view = CoinView(self.db, known_coins(pre, entry, self.chain[-1] if self.chain else None))
        nxt = ahead() if sigs is not None and ahead is not None else None
        early = send_ahead(self.sigpool, nxt, block, view) if nxt is not None else None
        fees, spent_undo, name_ops, before = check_block_txs(block, height, view, params, names, self.verify_sigs, sigs)
        if sigs is not None:
            sigs.flush()             # the tail of the jobs to an idle worker, not kept for the end
        coinbase_out = sum(o.value for o in block.txs[0].outputs)
        if coinbase_out > subsidy(height, params) + fees:
            raise ValidationError("bad-cb-amount", 100, "coinbase pays more than subsidy + fees")
        prev_root = entry.prev.header.name_root if entry.prev is not None else bytes(32)
        was_valid = entry.status & VALID
        try:
            with self.db.write_batch() as b:
                name_undo = names.connect(block, height, name_ops, prev_root, b, before)
                entry.status |= VALID
                self.store.write_connect(b, block, entry, view, spent_undo, name_undo)
                if sigs is not None:
                    if early is not None:
                        self._prefetch = settle_ahead(nxt, early, entry, view, name_undo[1])
                    sigs.finish()    # raising here drops the batch
                for p in self.projections:
                    p.connect(b, entry, {rec.name: rec for _, rec in name_ops})
        except BaseException:
            entry.status = entry.status & ~VALID | was_valid
            names.discard_events()
            raise

    def _disconnect_tip(self) -> None:
        entry = self.tip
        # Undone from its own body: a damaged one that decoded would undo other transactions.
        block = self.store.whole_block(entry.hash)
        undo = self.store.undo(entry.hash)
        if block is None or undo is None:
            why = self.store.body_damage(entry.hash) or "its undo data is missing"
            raise StoreError(f"cannot disconnect block {entry.hash.hex()} at {entry.height}: {why}; "
                             "stop the node and run reindex")
        spent_undo, name_undo = undo
        with self.db.write_batch() as b:
            self.names.disconnect(block, entry.height, name_undo, b)
            self.store.write_disconnect(b, block, entry, spent_undo)
            for p in self.projections:
                p.disconnect(b, entry, name_undo[0])
        self.chain.pop()
        self.names.publish()
        self._emit("disconnect", block, entry)

    def _emit(self, kind: str, block: Block | None, entry: Entry) -> None:
        self.listeners.emit(kind, block, entry)

    # --- maintenance --------------------------------------------------------------------

    def reindex(self) -> None:
        """Forget every projection and rebuild it by re-validating the stored blocks from
        genesis (signatures included); the best valid stored branch becomes the tip."""
        self.store.wipe_projections()
        projections, self.projections = self.projections, []
        for p in projections:
            p.reset(self.db)
        self.store.forget_validation(self.entries.values())
        self.chain = []
        self.failure_reasons.clear()
        self._activate(self.entries[self.params.genesis.hash])
        self._activate_best()
        for p in projections:
            p.attach(self)
