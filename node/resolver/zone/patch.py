"""One serial's change to the stored zone: the changed names re-rendered, the NSEC chain patched
around them, the apex re-signed with the new SOA, and a bounded batch of the oldest signatures
refreshed. Held in memory until written (as big as what one block changes, not the zone).

Owners are looked up through the pending changes first, then the store, so the neighbours of
a changed name are found in the zone as it will be once the block's batch commits.
"""
from __future__ import annotations

import bisect
import heapq

import dns.name

from node.resolver.identity import ZONE, ResolverKey
from node.resolver.zone import rrwire
from node.resolver.zone.render import IN_CHAIN, data_of, entry_bytes, nsec_next, render_name, sign, top_of
from node.resolver.zone.store import ZoneStore

SOA = rrwire.T.SOA


class Patch:
    def __init__(self, store: ZoneStore, key: ResolverKey, inception: int, expiration: int):
        self.store = store
        self.key = key
        self.inception = inception
        self.expiration = expiration
        self.pending: dict[bytes, list | None] = {}      # owner key -> [name, flags, data] or None (gone)
        self.names: dict[bytes, tuple] = {}              # d/ name -> (old (keys, deps), new (keys, deps))
        self.nexts: dict[bytes, dns.name.Name] = {}      # owner key -> its NSEC's next name
        self._tops: list[bytes] = []                     # owner-key prefixes of the changed names
        self._sorted: list[bytes] | None = None
        self._writes: list = []                          # (key, old entry, new bytes or None, expiration)

    # --- what changes ----------------------------------------------------------------------

    def rerender(self, name: bytes, value) -> None:
        top = top_of(name.decode("utf-8", "surrogateescape"))
        if top is None:
            return
        owners, deps = render_name(name, value)
        old = self.store.name_entry(name)
        for k in old[0]:
            self.pending[k] = None
        for o in owners:
            self.pending[o.key] = [o.name, o.flags, o.data]
            if o.in_chain:
                self.nexts[o.key] = None
        self.names[name] = (old, ([o.key for o in owners], deps))
        self._tops.append(rrwire.owner_key(top))
        self._sorted = None

    def apex(self, serial: int) -> None:
        self.pending[rrwire.APEX_KEY] = [ZONE, IN_CHAIN, rrwire.apex_data(self.key, serial)]
        self.nexts[rrwire.APEX_KEY] = None
        self._sorted = None

    def patch_chain(self) -> None:
        """Every changed name's predecessor in the chain gets a new NSEC (its next name or
        its type bitmap may have changed); so do the new owners themselves."""
        for top in self._tops:
            found = self._walk(top, reverse=True)
            if found is not None:
                k, e = found
                if k not in self.pending:
                    self.pending[k] = e[:3]
                    self._sorted = None
                self.nexts[k] = None
        for k in list(self.nexts):
            if self.pending.get(k) is not None:
                found = self._walk(k, reverse=False)
                self.nexts[k] = found[1][0] if found is not None else ZONE
            else:
                del self.nexts[k]

    def refresh(self, before: int, limit: int) -> None:
        """Re-sign owners whose signatures expire before `before` (at most `limit`), NSEC kept."""
        for k in self.store.expiring(before, limit):
            if k in self.pending:
                continue
            e = self.store.owner(k)
            if e is None:
                continue
            self.pending[k] = [dns.name.from_wire(e[0], 0)[0], e[1], data_of(map(tuple, e[3]))]
            self.nexts[k] = nsec_next(map(tuple, e[3]))
        self._sorted = None

    # --- neighbours ------------------------------------------------------------------------

    def _entry(self, k: bytes):
        if k in self.pending:
            return self.pending[k]
        e = self.store.owner(k)
        if e is None:
            return None
        return [dns.name.from_wire(e[0], 0)[0], e[1], data_of(map(tuple, e[3]))]

    def _walk(self, k: bytes, reverse: bool):
        """The nearest owner in the chain before (reverse) or after `k`: (key, entry) or None."""
        if self._sorted is None:
            self._sorted = sorted(self.pending)
        pk = self._sorted
        if reverse:
            mine = pk[:bisect.bisect_left(pk, k)][::-1]
            stored = self.store.keys_before(k)
        else:
            mine = pk[bisect.bisect_right(pk, k):]
            stored = self.store.keys_after(k)
        last = None
        for key in heapq.merge(stored, mine, reverse=reverse):
            if key == last:
                continue
            last = key
            e = self._entry(key)
            if e is not None and e[1] & IN_CHAIN:
                return key, e
        return None

    # --- writing ---------------------------------------------------------------------------

    def finish(self) -> tuple[list, list]:
        """Sign every pending owner; returns the (deleted, added) RRs of the IXFR step. Nothing
        is written yet, so a failure here leaves the block's batch untouched."""
        deleted, added = [], []
        self._writes = []
        for k, e in self.pending.items():
            old = self.store.owner(k)
            old_rrs = {(old[0], *rr) for rr in old[3]} if old is not None else set()
            if e is None:
                self._writes.append((k, old, None, 0))
                new_rrs = set()
            else:
                name, flags, data = e
                rrs = sign(self.key, name, flags, data, self.nexts.get(k), self.inception, self.expiration)
                expiration = self.expiration if flags & IN_CHAIN else 0
                wire = name.to_wire()
                self._writes.append((k, old, entry_bytes(wire, flags, expiration, rrs), expiration))
                new_rrs = {(wire, *rr) for rr in rrs}
            deleted += [rr for rr in old_rrs - new_rrs if rr[1] != SOA]
            added += [rr for rr in new_rrs - old_rrs if rr[1] != SOA]
        return sorted(deleted), sorted(added)

    def write(self, batch) -> None:
        """Put the finished changes into `batch`."""
        for k, old, raw, expiration in self._writes:
            if old is not None:
                self.store.set_expiry(batch, old[2], k, False)
            if raw is None:
                self.store.delete_owner(batch, k)
            else:
                self.store.put_owner(batch, k, raw)
                self.store.set_expiry(batch, expiration, k, True)
        for name, ((old_keys, old_deps), (new_keys, new_deps)) in self.names.items():
            self.store.put_name(batch, name, new_keys, new_deps)
            for dep in set(old_deps) - set(new_deps):
                self.store.set_import(batch, dep, name, False)
            for dep in set(new_deps) - set(old_deps):
                self.store.set_import(batch, dep, name, True)
