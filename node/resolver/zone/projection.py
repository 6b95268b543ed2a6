"""The signed `bit.` zone as a projection of the chain, kept in LevelDB and changed in each
block's own write batch (ChainState.projections), so the zone, its serial and the chain state
can never disagree, not even after a kill -9.

Per connected or disconnected block only the names that changed are re-rendered and re-signed
(the block's name operations, or on disconnect the names it restores; names expiring at the
block's height; names importing any of those), the NSEC chain is patched around them, the apex
gets a new serial (SOA and DNSKEY re-signed) and the oldest signatures are refreshed in a
bounded batch, so unchanged names keep their signatures without ever letting them expire while
blocks come. The difference is kept as an IXFR step; the last `history` steps are kept. While
no block comes, refresh.py's timer makes such serials of refreshed signatures alone
(refresh_signatures), so a stalled chain's zone does not expire.

The serial only increases (RFC 1982): one more per connected or disconnected block, per timer
refresh and per rebuild, whatever the height does on a reorg, and it survives restarts and
reindex.

The projection needs the resolver key. Without a resolver with DNS the zone is not kept; when
one starts on a zone that does not describe the chain's tip (or was signed with another key),
the zone is rebuilt from the name index before serving, with the next serial: a rebuild is one
new serial, and secondaries then get it by AXFR.
"""
from __future__ import annotations

import logging

from core.names.rules import NameRecord
from node.names.index import NameIndex
from node.resolver.identity import ResolverKey
from node.resolver.zone.patch import Patch
from node.resolver.zone.basis import chain_value, next_serial, signing_window
from node.resolver.zone.signed import ZONE_VALIDITY
from node.resolver.zone.store import Meta, ZoneStore

log = logging.getLogger("dotbit.resolver.zone")

DEFAULT_HISTORY = 300             # IXFR steps kept: about two days of blocks
MAX_HISTORY = 100_000
REFRESH_BATCH = 2000              # signatures refreshed per block: a million names in ~500 blocks
REFRESH_AGE = ZONE_VALIDITY // 2  # refreshed once they are this close to expiring
MAX_IMPORT_FANOUT = 100_000       # names re-rendered for one changed imported name, at most


class ZoneProjection:
    def __init__(self, db, params, key: ResolverKey, history: int = DEFAULT_HISTORY,
                 build_workers: int | None = None):
        self.db = db
        self.params = params
        self.key = key
        self.history = history
        self.build_workers = build_workers      # processes beside this one for a whole build (lanes.py)
        self.store = ZoneStore(db)
        self.names = NameIndex(db, params)

    def serial(self) -> int:
        meta = self.store.meta()
        return meta.serial if meta is not None else 0

    def describes(self, tip_hash: bytes) -> bool:
        meta = self.store.meta()
        return meta is not None and meta.tip == tip_hash and meta.key == self.key.public_key

    def attach(self, chain) -> None:
        """Keep the zone from now on, rebuilding it first when it is not the tip's."""
        from node.resolver.zone.rebuild import rebuild
        if not self.describes(chain.tip.hash):
            rebuild(self, chain.tip, self.build_workers)
        if self not in chain.projections:
            chain.projections.append(self)

    def reset(self, db) -> None:
        forget_zone(db)

    # --- the chain's hooks (inside the block's write batch) ----------------------------------

    def connect(self, batch, entry, changed: dict) -> None:
        """`changed`: name -> record after the block, for the block's name operations."""
        before = entry.prev.hash if entry.prev is not None else b""
        self._apply(batch, before, entry, changed, entry.height)

    def disconnect(self, batch, entry, undo_changed) -> None:
        """`undo_changed`: the block's name undo, [name, record before the block or None]."""
        changed = {n: NameRecord.from_obj(o) if o else None for n, o in undo_changed}
        self._apply(batch, entry.hash, entry.prev, changed, entry.height)

    def _apply(self, batch, before: bytes, after, changed: dict, expiry_height: int) -> None:
        meta = self.store.meta()
        if meta is None or meta.tip != before or meta.key != self.key.public_key:
            return                                  # stale: rebuilt when a resolver next attaches
        try:
            patch = self._patch(meta, after, changed, expiry_height)
            deleted, added = patch.finish()
        except Exception:
            # A zone bug must never stop a valid block: the zone goes stale and is rebuilt.
            log.exception("zone: update for block %s failed; the zone is rebuilt at next start", after.hash.hex())
            self.store.put_meta(batch, Meta(meta.serial, b"", meta.key, meta.first_step, meta.next_step))
            return
        self._commit(batch, meta, after.hash, patch, deleted, added)

    def _commit(self, batch, meta: Meta, tip_hash: bytes, patch: Patch, deleted: list, added: list) -> int:
        """A finished patch as the next serial, with its IXFR step, into `batch`."""
        patch.write(batch)
        serial = next_serial(meta.serial)
        step = meta.next_step
        if self.history > 0:
            self.store.put_step(batch, step, [meta.serial, serial, tip_hash, deleted, added])
            step += 1
        first = max(meta.first_step, step - self.history)
        for n in range(meta.first_step, first):
            self.store.delete_step(batch, n)
        self.store.put_meta(batch, Meta(serial, tip_hash, meta.key, first, step))
        return serial

    def _patch(self, meta: Meta, after, changed: dict, expiry_height: int) -> Patch:
        value = chain_value(self.names, self.params, after.height, changed)
        targets = set(changed) | set(self.names.expiring_at(expiry_height))
        targets = self._with_importers(targets)
        inception, expiration = signing_window(after.header.time)
        patch = Patch(self.store, self.key, inception, expiration)
        for name in sorted(targets):
            patch.rerender(name, value)
        patch.apex(next_serial(meta.serial))
        patch.patch_chain()
        patch.refresh(after.header.time + REFRESH_AGE, REFRESH_BATCH)
        return patch

    # --- signatures refreshed between blocks (refresh.py's timer, on the chain's thread) ------

    def oldest_expiration(self) -> int | None:
        """When the zone's oldest signature expires (the apex's included); None: no zone."""
        meta = self.store.meta()
        if meta is None or not meta.tip or meta.key != self.key.public_key:
            return None
        return self.store.oldest_expiration()

    def refresh_signatures(self, tip, now: int, limit: int = REFRESH_BATCH) -> int:
        """Without a block, once the oldest signature expires within REFRESH_AGE of `now`:
        re-sign the apex (SOA, DNSKEY) and up to `limit` owners whose signatures expire within
        it, oldest first, dated from `now` (a stalled chain's tip time would sign them
        as old as they are), as one new serial with its IXFR step, in one batch. Returns the
        new serial, or 0 when the zone is not `tip`'s (stale: a rebuild comes first) or
        nothing is due.

        It must run on the thread that connects blocks (the event loop), so a block's batch
        and this one never interleave: a block arriving meanwhile waits, then finds the
        refreshed serial and tip unchanged and goes on from there."""
        meta = self.store.meta()
        if meta is None or meta.tip != tip.hash or meta.key != self.key.public_key:
            return 0
        oldest = self.store.oldest_expiration()
        if oldest is None or oldest >= now + REFRESH_AGE:
            return 0
        inception, expiration = signing_window(max(now, tip.header.time))
        patch = Patch(self.store, self.key, inception, expiration)
        patch.apex(next_serial(meta.serial))
        patch.patch_chain()
        patch.refresh(now + REFRESH_AGE, limit)
        deleted, added = patch.finish()
        with self.db.write_batch() as b:
            return self._commit(b, meta, meta.tip, patch, deleted, added)

    def _with_importers(self, targets: set) -> set:
        out = set(targets)
        todo = list(targets)
        while todo and len(out) < MAX_IMPORT_FANOUT:
            for importer in self.store.importers(todo.pop()):
                if importer not in out:
                    out.add(importer)
                    todo.append(importer)
        return out


def forget_zone(db) -> None:
    """Forget the zone but its serial (reindex): it is rebuilt, with a higher serial, later."""
    store = ZoneStore(db)
    meta = store.meta()
    store.wipe()
    if meta is not None:
        with db.write_batch() as b:
            store.put_meta(b, Meta(meta.serial, b"", meta.key, meta.next_step, meta.next_step))

