"""The name projection: current records, history, expiry index and the name tree, written in
the block's one batch, with undo data so a disconnect restores names and expired coins.

Also the name side of the mempool: one pending operation per name, no repeated NAME_NEW
commitment, and every pending name operation valid in the very next block. An immature
FIRSTUPDATE must not wait in the pool: it would hold the name's one pending slot against the
first committer's FIRSTUPDATE, which is valid now (Namecoin refuses it the same way).
"""
from __future__ import annotations

import logging

import msgpack

from node.chain import layout as L
from core.consensus import Coin
from core.encoding import pack
from core.errors import ValidationError
from core.primitives import NAME_FIRSTUPDATE, NAME_NEW, NAME_UPDATE, Tx

from core.names.rules import NameRecord, check_name_tx, expiry_height, name_output, tree_key
from core.names.tree import NameTree
from node.events import Event

log = logging.getLogger("dotbit.names")


def _unpack(b):
    return msgpack.unpackb(b, raw=False)


class NameIndex:
    def __init__(self, db, params):
        self.db = db
        self.params = params
        self.tree = NameTree(lambda h: db.get(L.tree_key(h)))
        # fn(kind, name, record_or_None, height), after the block's batch committed
        self.listeners: Event[[str, bytes | None, NameRecord | None, int]] = Event(log, "name listener failed")
        self._events: list = []
        self.pending_names: dict[bytes, bytes] = {}        # name -> mempool txid
        self.pending_commitments: dict[bytes, bytes] = {}  # NAME_NEW commitment -> mempool txid

    # --- reads ---------------------------------------------------------------------------------

    def get(self, name: bytes) -> NameRecord | None:
        raw = self.db.get(L.name_key(name))
        return NameRecord.from_obj(_unpack(raw)) if raw is not None else None

    def get_obj(self, name: bytes) -> list | None:
        """get(name).to_obj() without the NameRecord between (the record is stored as that
        list): what the resolver's workers are sent, once per signed HTTP answer."""
        raw = self.db.get(L.name_key(name))
        return _unpack(raw) if raw is not None else None

    def expiring_at(self, height: int) -> list[bytes]:
        """Names whose current record is expired from `height` on (is_expired is true at
        `height`, not at height - 1): what stops resolving when the tip reaches `height`."""
        out = []
        for key, _ in self.db.iterator(prefix=L.expiry_prefix(height)):
            name = key[5:]
            rec = self.get(name)
            if rec is not None and expiry_height(rec.height, self.params) == height:
                out.append(name)
        return out

    def history(self, name: bytes) -> list[NameRecord]:
        return [NameRecord.from_obj(_unpack(v)) for _, v in self.db.iterator(prefix=L.name_hist_prefix(name))]

    def scan(self, start: bytes = b""):
        """Records in length-first name order, from `start` on."""
        begin = L.name_key(start) if start else L.NAME
        for key, value in self.db.iterator(prefix=L.NAME):
            if key < begin:
                continue
            yield NameRecord.from_obj(_unpack(value))

    def prove(self, root: bytes, name: bytes):
        return self.tree.prove(root, tree_key(name))

    # --- connect / disconnect (inside the chain's write batch) ----------------------------------

    def connect(self, block, height: int, ops: list[tuple[int, NameRecord]], prev_root: bytes, batch,
                before: dict | None = None) -> list:
        """`ops`: (tx position, new record) in block order; `before`: records as they were
        before the block, for names the caller already read. Checks the header's name_root,
        writes records, history, expiry index, tree nodes, expires due coins; returns undo."""
        before = before or {}
        params = self.params
        final: dict[bytes, NameRecord] = {}
        for _, rec in ops:
            final[rec.name] = rec
        new_root, nodes = self.tree.update(prev_root, {tree_key(n): r.leaf_hash for n, r in final.items()})
        if new_root != block.header.name_root:
            raise ValidationError("bad-name-root", 100, "header name_root does not match the name state")
        for h, enc in nodes.items():
            batch.put(L.tree_key(h), enc)
        changed = []
        for name, rec in final.items():
            old = before[name] if name in before else self.get(name)
            changed.append([name, old.to_obj() if old else None])
            if old is not None:
                batch.delete(L.expiry_key(expiry_height(old.height, params), name))
            batch.put(L.name_key(name), rec.to_bytes())
            batch.put(L.expiry_key(expiry_height(rec.height, params), name), b"")
        for pos, rec in ops:
            batch.put(L.name_hist_key(rec.name, height, pos), rec.to_bytes())
        # Names whose last update makes them expired from height + 1 lose their coin now.
        expired = []
        for key, _ in self.db.iterator(prefix=L.expiry_prefix(height + 1)):
            name = key[5:]
            rec = final.get(name) or self.get(name)
            if rec is None or expiry_height(rec.height, params) != height + 1:
                continue
            raw = self.db.get(L.coin_key(rec.txid, rec.vout))
            if raw is None:
                continue
            coin = _unpack(raw)
            batch.delete(L.coin_key(rec.txid, rec.vout))
            batch.delete(L.addr_coin_key(coin[1], rec.txid, rec.vout))
            expired.append([rec.txid, rec.vout, coin])
            self._events.append(("expire", name, rec, height))
        for name, rec in final.items():
            self._events.append(("connect", name, rec, height))
        return [changed, expired]

    def disconnect(self, block, height: int, undo, batch) -> None:
        params = self.params
        changed, expired = undo
        for pos, tx in enumerate(block.txs):
            found = name_output(tx)
            if found and found[1].covenant.type in (NAME_FIRSTUPDATE, NAME_UPDATE):
                batch.delete(L.name_hist_key(found[1].covenant.items[0], height, pos))
        for name, old in changed:
            cur = self.get(name)
            if cur is not None:
                batch.delete(L.expiry_key(expiry_height(cur.height, params), name))
            if old is None:
                batch.delete(L.name_key(name))
                self._events.append(("disconnect", name, None, height))
            else:
                rec = NameRecord.from_obj(old)
                batch.put(L.name_key(name), rec.to_bytes())
                batch.put(L.expiry_key(expiry_height(rec.height, params), name), b"")
                self._events.append(("disconnect", name, rec, height))
        for txid, vout, coin in expired:
            batch.put(L.coin_key(txid, vout), pack(coin))
            batch.put(L.addr_coin_key(coin[1], txid, vout), b"")
            self._events.append(("unexpire", name_of_coin(coin), None, height))

    def publish(self) -> None:
        """Called by the chain state once the batch has committed."""
        events, self._events = self._events, []
        for ev in events:
            self.listeners.emit(*ev)

    def discard_events(self) -> None:
        self._events = []

    # --- templates ----------------------------------------------------------------------------

    def root_after(self, txs, height: int, prev_root: bytes) -> bytes:
        """The name_root a block holding `txs` (valid, in order) at `height` must carry."""
        final = {}
        for tx in txs:
            found = name_output(tx)
            if found and found[1].covenant.type in (NAME_FIRSTUPDATE, NAME_UPDATE):
                vout, out = found
                items = out.covenant.items
                value = items[2] if out.covenant.type == NAME_FIRSTUPDATE else items[1]
                final[items[0]] = NameRecord(items[0], value, out.address, height, tx.txid, vout)
        root, _ = self.tree.update(prev_root, {tree_key(n): r.leaf_hash for n, r in final.items()})
        return root

    # --- mempool ------------------------------------------------------------------------------

    def check_mempool(self, tx: Tx, coins: list[Coin], height: int, mempool) -> None:
        # `height` is the next block's: the pool holds only what that block may include.
        op = check_name_tx(tx, coins, height, self.params, self.get)
        if op is None:
            return
        if op.kind == NAME_NEW:
            other = self.pending_commitments.get(op.commitment)
            if other is not None and other != tx.txid:
                raise ValidationError("txn-mempool-namenew-duplicate", 0, "this commitment is already pending")
        else:
            other = self.pending_names.get(op.name)
            if other is not None and other != tx.txid:
                raise ValidationError("txn-mempool-name-error", 0, "the name already has a pending operation")

    def mempool_added(self, tx: Tx) -> None:
        found = name_output(tx)
        if not found:
            return
        cov = found[1].covenant
        if cov.type == NAME_NEW:
            self.pending_commitments[cov.items[0]] = tx.txid
        else:
            self.pending_names[cov.items[0]] = tx.txid

    def mempool_removed(self, tx: Tx) -> None:
        found = name_output(tx)
        if not found:
            return
        cov = found[1].covenant
        table = self.pending_commitments if cov.type == NAME_NEW else self.pending_names
        if table.get(cov.items[0]) == tx.txid:
            del table[cov.items[0]]

    def mempool_reset(self) -> None:
        self.pending_names.clear()
        self.pending_commitments.clear()

    def mempool_conflicts(self, height: int, mempool) -> list[bytes]:
        """Pending name transactions the new tip made invalid (name registered by a block,
        expired, un-expired by a disconnect, or a NAME_NEW re-mined shallower by a reorg)."""
        bad = []
        for txid in list(self.pending_names.values()):
            entry = mempool.entries.get(txid)
            if entry is None:
                continue
            coins = [mempool.coin(*i.outpoint, ignore_spends=True) for i in entry.tx.inputs]
            try:
                if any(c is None for c in coins):
                    raise ValidationError("bad-txns-inputs-missingorspent", 0)
                check_name_tx(entry.tx, coins, height, self.params, self.get)
            except ValidationError as e:
                log.info("mempool: name tx %s no longer valid: %s", txid.hex(), e.reason)
                bad.append(txid)
        return bad


def name_of_coin(coin_obj) -> bytes | None:
    cov = coin_obj[2]
    return cov[1] if len(cov) > 1 else None
