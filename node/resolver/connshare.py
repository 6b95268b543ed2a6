"""The HTTP API's per-source connection caps, shared by every DNS worker process that serves it
(--dns-workers N).

SO_REUSEPORT spreads TCP connections over the workers by a hash of the 4-tuple, so a client
opening many connections lands on all of them. Per-worker limiters would then let one address
hold N times its cap (--conns-per-addr, --conns-per-net). So the workers count every source's
connections in one shared table, with the same meaning as the single-process limiter
(core/connlimit.py): an address holds at most per_address connections, a /24 or /56 at most
per_group, whichever workers hold them.

The table has one row of SLOTS counters per worker, indexed by a keyed hash of the address or
of its network (the key is random per node run, so a client cannot aim at a victim's slot);
two sources sharing a slot share a count, which only makes the caps stricter for both, never
looser. A source's total is the sum over the rows. A worker only adds to and takes from its
own row, and clears it when it starts: the connections of a worker that died died with it, so
a restart never leaves counts behind. One lock guards the table: a connection's admission and
its release each hold it for a few array reads and writes.

The total (1,024 connections) is split evenly over the workers: each evicts only its own
connections when full (core/connlimit.py's eviction, per worker).
"""
from __future__ import annotations

import hashlib

from core.connlimit import SourceLimiter, source_group

SLOTS = 16_384          # int32 counters per worker row: 64 KiB each


def new_table(ctx, workers: int):
    """The shared counters and their lock, from a multiprocessing context (made by the node)."""
    return ctx.RawArray("i", SLOTS * workers), ctx.RLock()


class SharedSourceLimiter(SourceLimiter):
    """SourceLimiter whose per-address and per-group caps count every worker's connections."""

    def __init__(self, base: SourceLimiter, table, lock, salt: bytes, row: int, rows: int):
        super().__init__(base.max_total, base.per_address, base.per_group, base.exempt)
        self.table = table
        self.lock = lock
        self.salt = salt
        self.row = row
        self.rows = rows
        self._keys: dict = {}          # conn -> (address slot, group slot) it added to, or None
        with lock:
            for i in range(row * SLOTS, (row + 1) * SLOTS):
                table[i] = 0

    def _slot(self, kind: bytes, text: str) -> int:
        digest = hashlib.blake2b(kind + text.encode(), key=self.salt, digest_size=8).digest()
        return int.from_bytes(digest, "big") % SLOTS

    def _total(self, slot: int) -> int:
        t = self.table
        return sum(t[r * SLOTS + slot] for r in range(self.rows))

    def admit(self, conn, address: str, full: bool | None = None) -> tuple[bool, list]:
        if self._exempt(address):
            return super().admit(conn, address, full)
        a, g = self._slot(b"a", address), self._slot(b"g", source_group(address))
        with self.lock:
            if self.per_address and self._total(a) >= self.per_address:
                self.refused += 1
                return False, []
            if self.per_group and self._total(g) >= self.per_group:
                self.refused += 1
                return False, []
            ok, victims = super().admit(conn, address, full)     # victims are released (and uncounted) there
            if ok:
                base = self.row * SLOTS
                self.table[base + a] += 1
                self.table[base + g] += 1
                self._keys[conn] = (a, g)
            return ok, victims

    def release(self, conn) -> None:
        super().release(conn)
        keys = self._keys.pop(conn, None)
        if keys is not None:
            base = self.row * SLOTS
            with self.lock:
                self.table[base + keys[0]] -= 1
                self.table[base + keys[1]] -= 1
