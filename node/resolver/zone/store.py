"""The stored signed zone: the one zone module that knows its LevelDB keys (node/chain/layout.py,
Z and z...). Reads work on the store or on a snapshot of it; writes go into a given batch.

An owner entry is (owner wire, flags, signature expiration, RRs); an RR is (type, ttl, rdata
wire). An IXFR step is (old serial, new serial, tip hash, deleted RRs, added RRs) with an RR as
(owner wire, type, ttl, rdata wire), SOA left out (the step's SOAs delimit it).
"""
from __future__ import annotations

from dataclasses import dataclass

import msgpack

from core.encoding import pack
from node.chain import layout as L

_OWNER_END = L.ZONE_OWNER[:-1] + bytes([L.ZONE_OWNER[-1] + 1])
_BATCH = 20_000


def _unpack(raw: bytes):
    return msgpack.unpackb(raw, raw=False)


@dataclass
class Meta:
    serial: int
    tip: bytes             # b"": stale, rebuilt before use
    key: bytes             # the resolver's public key the zone is signed with
    first_step: int        # IXFR steps kept: [first_step, next_step)
    next_step: int

    def to_bytes(self) -> bytes:
        return pack([self.serial, self.tip, self.key, self.first_step, self.next_step])


class ZoneStore:
    def __init__(self, db):
        self.db = db

    # --- meta ------------------------------------------------------------------------------

    def meta(self) -> Meta | None:
        raw = self.db.get(L.ZONE_META)
        return Meta(*_unpack(raw)) if raw is not None else None

    def put_meta(self, batch, meta: Meta) -> None:
        batch.put(L.ZONE_META, meta.to_bytes())

    # --- owners ----------------------------------------------------------------------------

    def owner(self, okey: bytes):
        raw = self.db.get(L.zone_owner_key(okey))
        return _unpack(raw) if raw is not None else None

    def owners(self):
        """(owner key, entry) of the whole zone in canonical order."""
        n = len(L.ZONE_OWNER)
        for k, v in self.db.iterator(prefix=L.ZONE_OWNER):
            yield k[n:], _unpack(v)

    def keys_after(self, okey: bytes):
        n = len(L.ZONE_OWNER)
        for k, _ in self.db.range(L.zone_owner_key(okey) + b"\x00", _OWNER_END):
            yield k[n:]

    def keys_before(self, okey: bytes):
        n = len(L.ZONE_OWNER)
        for k, _ in self.db.range(L.ZONE_OWNER, L.zone_owner_key(okey), reverse=True):
            yield k[n:]

    def put_owner(self, batch, okey: bytes, raw: bytes) -> None:
        batch.put(L.zone_owner_key(okey), raw)

    def delete_owner(self, batch, okey: bytes) -> None:
        batch.delete(L.zone_owner_key(okey))

    # --- names and imports -----------------------------------------------------------------

    def name_entry(self, name: bytes) -> tuple[list, list]:
        raw = self.db.get(L.zone_name_key(name))
        return tuple(_unpack(raw)) if raw is not None else ([], [])

    def put_name(self, batch, name: bytes, owner_keys, deps) -> None:
        if owner_keys or deps:
            batch.put(L.zone_name_key(name), pack([list(owner_keys), sorted(deps)]))
        else:
            batch.delete(L.zone_name_key(name))

    def importers(self, dep: bytes) -> list[bytes]:
        prefix = L.zone_import_prefix(dep)
        return [k[len(prefix):] for k, _ in self.db.iterator(prefix=prefix)]

    def set_import(self, batch, dep: bytes, name: bytes, on: bool) -> None:
        if on:
            batch.put(L.zone_import_key(dep, name), b"")
        else:
            batch.delete(L.zone_import_key(dep, name))

    # --- signature expiry ------------------------------------------------------------------

    def expiring(self, before: int, limit: int) -> list[bytes]:
        """Owner keys whose signatures expire before `before`, oldest first, at most `limit`."""
        out = []
        n = len(L.ZONE_SIGEXP) + 4
        for k, _ in self.db.range(L.ZONE_SIGEXP, L.zone_sigexp_key(before, b"")):
            out.append(k[n:])
            if len(out) >= limit:
                break
        return out

    def oldest_expiration(self) -> int | None:
        for k, _ in self.db.iterator(prefix=L.ZONE_SIGEXP):
            return int.from_bytes(k[len(L.ZONE_SIGEXP):len(L.ZONE_SIGEXP) + 4], "big")
        return None

    def set_expiry(self, batch, expiration: int, okey: bytes, on: bool) -> None:
        if not expiration:           # glue: nothing signed
            return
        key = L.zone_sigexp_key(expiration, okey)
        if on:
            batch.put(key, b"")
        else:
            batch.delete(key)

    # --- IXFR steps ------------------------------------------------------------------------

    def steps(self, first: int):
        """Stored steps from `first` on: (n, [old, new, tip, deleted, added])."""
        for k, v in self.db.range(L.zone_step_key(first), L.zone_step_key(1 << 63)):
            yield int.from_bytes(k[len(L.ZONE_STEP):], "big"), _unpack(v)

    def put_step(self, batch, n: int, step: list) -> None:
        batch.put(L.zone_step_key(n), pack(step))

    def delete_step(self, batch, n: int) -> None:
        batch.delete(L.zone_step_key(n))

    # --- whole-zone ------------------------------------------------------------------------

    def wipe(self) -> None:
        """Every zone key but the meta (its serial must survive), in bounded batches."""
        for prefix in L.ZONE_PARTS:
            while True:
                keys = [k for k, _ in zip((k for k, _ in self.db.iterator(prefix=prefix)), range(_BATCH))]
                if not keys:
                    break
                with self.db.write_batch() as b:
                    for k in keys:
                        b.delete(k)
