"""The DNS response rate limit shared by every DNS worker process (--dns-workers N).

SO_REUSEPORT spreads datagrams over the workers by a hash of the 4-tuple, so one client
sending from many source ports lands on all of them. Per-worker buckets would then give a
client up to N times the configured rate; a fixed share of rate/N per worker keeps the
total but cuts a client that happens to land on one worker (one source port: the normal
case) to a fraction of it. So the workers meter one set of token buckets in shared memory,
with the same meaning as the single-process limiter (ratelimit.py): `rate` answers a second
and a burst of `burst` per client /24 or /56, whichever worker answers.

The buckets live in a fixed table of SLOTS slots indexed by a keyed hash of the prefix (the
key is random per node run, so a spoofer cannot aim its prefixes at a victim's slot); two
prefixes that share a slot share a bucket, which can only make the limit stricter for both,
never looser. One lock guards the table: a check holds it for a few array reads and writes,
and only for clients that are not exempt (loopback is, by default).
"""
from __future__ import annotations

import hashlib
import time

from node.resolver.ratelimit import _EXEMPT, ALLOW, DROP, SLIP, DEFAULT_EXEMPT, ResponseRateLimiter

SLOTS = 65_536          # 3 doubles each: 1.5 MiB shared, whatever the clients do
FIELDS = 3              # tokens, last refill (time.monotonic, shared by all processes), refused count


def new_table(ctx):
    """The shared table and its lock, from a multiprocessing context (made by the node, handed
    to each worker when it is started)."""
    return ctx.RawArray("d", SLOTS * FIELDS), ctx.Lock()


class SharedRateLimiter(ResponseRateLimiter):
    """ResponseRateLimiter's check() over a shared table. The counters (allowed, dropped,
    slipped) stay per process; the node adds the workers' up for /metrics."""

    def __init__(self, rate: float, table, lock, salt: bytes, burst: float | None = None, slip: int = 2,
                 exempt=DEFAULT_EXEMPT, clock=time.monotonic):
        super().__init__(rate, burst, slip, exempt, clock)
        self.table = table
        self.lock = lock
        self.salt = salt
        self._slots: dict[str, int] = {}       # address text -> slot (-1: exempt): hash once

    def _slot(self, host: str) -> int:
        key = self._prefix(host)
        if key is _EXEMPT:
            slot = -1
        else:
            digest = hashlib.blake2b(repr(key).encode(), key=self.salt, digest_size=8).digest()
            slot = int.from_bytes(digest, "big") % SLOTS
        if len(self._slots) >= self.max_buckets:
            self._slots.clear()
        self._slots[host] = slot
        return slot

    def check(self, host: str) -> int:
        slot = self._slots.get(host)
        if slot is None:
            slot = self._slot(host)
        if slot < 0:
            self.allowed += 1
            return ALLOW
        i = slot * FIELDS
        t = self.table
        with self.lock:
            now = self.clock()            # read under the lock: refills never run backwards
            last = t[i + 1]
            tokens = self.burst if last == 0.0 else min(self.burst, t[i] + max(0.0, now - last) * self.rate)
            t[i + 1] = now
            if tokens >= 1.0:
                t[i] = tokens - 1.0
                verdict = ALLOW
            else:
                t[i] = tokens
                refused = t[i + 2] = t[i + 2] + 1
                verdict = SLIP if self.slip and int(refused) % self.slip == 0 else DROP
        if verdict == ALLOW:
            self.allowed += 1
        elif verdict == SLIP:
            self.slipped += 1
        else:
            self.dropped += 1
        return verdict
