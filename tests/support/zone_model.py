"""A chain of name records on an in-memory store with the zone projection attached: the name
records and expiry index the projection reads (the keys NameIndex writes), and the projection's
hooks called inside each block's batch as ChainState calls them. Fast enough for property tests
of the incremental zone; real node processes test the real chain."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import msgpack

from core.names.rules import NameRecord, expiry_height
from node.chain import layout as L
from node.chain.storage import MemoryDB
from node.resolver.identity import ResolverKey
from node.resolver.zone.projection import ZoneProjection
from node.resolver.zone.reader import ZoneVersion

KEY = ResolverKey(bytes(range(32)))
PARAMS = SimpleNamespace(expiry_depth=4)


@dataclass
class Entry:
    hash: bytes
    height: int
    header: SimpleNamespace
    prev: "Entry | None"


class ModelChain:
    """Name records per block on a MemoryDB, the zone projection attached."""

    def __init__(self, history: int = 50, db=None, params=PARAMS, build_workers: int | None = None):
        self.db = db if db is not None else MemoryDB()
        self.params = params
        genesis = Entry(b"\x00" * 32, 0, SimpleNamespace(time=1_800_000_000), None)
        self.chain = [genesis]
        self.undo: list = []
        self.projections: list = []
        self.zone = ZoneProjection(self.db, params, KEY, history, build_workers)
        self.zone.attach(self)
        self.nonce = 0

    @property
    def tip(self) -> Entry:
        return self.chain[-1]

    def get(self, name: bytes) -> NameRecord | None:
        raw = self.db.get(L.name_key(name))
        return NameRecord.from_obj(msgpack.unpackb(raw, raw=False)) if raw else None

    def connect(self, ops: dict) -> None:
        prev = self.tip
        self.nonce += 1
        entry = Entry(self.nonce.to_bytes(32, "big"), prev.height + 1,
                      SimpleNamespace(time=prev.header.time + 600), prev)
        final = {n: NameRecord(n, v.encode(), b"\x01" * 20, entry.height, b"\x02" * 32, 0) for n, v in ops.items()}
        changed = []
        with self.db.write_batch() as b:
            for n, rec in final.items():
                old = self.get(n)
                changed.append([n, old.to_obj() if old else None])
                if old is not None:
                    b.delete(L.expiry_key(expiry_height(old.height, self.params), n))
                b.put(L.name_key(n), rec.to_bytes())
                b.put(L.expiry_key(expiry_height(rec.height, self.params), n), b"")
            for p in self.projections:
                p.connect(b, entry, final)
        self.undo.append(changed)
        self.chain.append(entry)

    def disconnect(self) -> None:
        entry = self.chain.pop()
        changed = self.undo.pop()
        with self.db.write_batch() as b:
            for n, old in changed:
                cur = self.get(n)
                b.delete(L.expiry_key(expiry_height(cur.height, self.params), n))
                if old is None:
                    b.delete(L.name_key(n))
                else:
                    rec = NameRecord.from_obj(old)
                    b.put(L.name_key(n), rec.to_bytes())
                    b.put(L.expiry_key(expiry_height(rec.height, self.params), n), b"")
            for p in self.projections:
                p.disconnect(b, entry, changed)

    def live_values(self, names) -> dict:
        out = {}
        for n in names:
            rec = self.get(n)
            if rec is not None and self.tip.height < expiry_height(rec.height, self.params):
                out[n.decode()] = rec.value.decode()
        return out

    def version(self) -> ZoneVersion:
        return ZoneVersion(self.db.snapshot())


def dies_in_a_worker(chunk, parent_pid: int):
    """Work for zone/lanes.py's tests: done in the building process, fatal in a worker."""
    import os
    if os.getpid() != parent_pid:
        os._exit(1)
    return chunk
