"""Response rate limiting for DNS over UDP (the RRL idea of BIND and Knot, kept simple).

An authoritative server that signs online is a good amplifier: a 40-byte query with DO can
bring back a kilobyte of records and RRSIGs, sent to whatever source address the query
claims. So UDP answers per client network are metered with a token bucket: `rate` answers
a second with a burst of `burst`, per /24 for IPv4 and per /56 for IPv6 (an attacker
spoofing a victim picks addresses freely inside one network, a real client rarely spreads
wider). Over the limit a query is dropped, except every `slip`-th, which gets a bare TC=1
reply no larger than the query: a real client behind a busy network retries over TCP
(which needs a handshake, so cannot be spoofed, and is not limited here), a spoofed victim
receives nothing larger than what the attacker sent.

Loopback is exempt by default: off-host packets cannot carry a loopback source (the kernel
drops such martians), and a local stub or Unbound forwarding to us shows every one of its
clients as 127.0.0.1.
"""
from __future__ import annotations

import ipaddress
import struct
import time
from typing import Callable, Iterable

ALLOW, DROP, SLIP = 0, 1, 2
DEFAULT_EXEMPT = ("127.0.0.0/8", "::1/128")
MAX_BUCKETS = 65_536          # memory bound: a spoofer rotating prefixes cannot grow the table
_EXEMPT = object()


class ResponseRateLimiter:
    def __init__(self, rate: float, burst: float | None = None, slip: int = 2,
                 exempt: Iterable[str] = DEFAULT_EXEMPT, clock: Callable[[], float] = time.monotonic,
                 max_buckets: int = MAX_BUCKETS):
        if rate <= 0:
            raise ValueError("rate limit must be positive (0 means: no limiter at all)")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else rate)
        self.slip = slip
        self.exempt = tuple(ipaddress.ip_network(n, strict=False) for n in exempt)
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: dict = {}       # prefix -> [tokens, last refill time, refused count]
        self._keys: dict = {}          # address text -> prefix (or _EXEMPT): parse once
        self.allowed = self.dropped = self.slipped = 0

    def check(self, host: str) -> int:
        """ALLOW, DROP or SLIP for one query from `host` (an address as the socket gives it)."""
        key = self._keys.get(host)
        if key is None:
            key = self._prefix(host)
        if key is _EXEMPT:
            self.allowed += 1
            return ALLOW
        now = self.clock()
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.max_buckets:
                self._evict(now)
            b = self._buckets[key] = [self.burst, now, 0]
        tokens = min(self.burst, b[0] + (now - b[1]) * self.rate)
        b[1] = now
        if tokens >= 1.0:
            b[0] = tokens - 1.0
            self.allowed += 1
            return ALLOW
        b[0] = tokens
        b[2] += 1
        if self.slip and b[2] % self.slip == 0:
            self.slipped += 1
            return SLIP
        self.dropped += 1
        return DROP

    def _prefix(self, host: str):
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            key = ("?", host)
        else:
            if ip.version == 6 and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            if any(ip in n for n in self.exempt if n.version == ip.version):
                key = _EXEMPT
            elif ip.version == 4:
                key = (4, int(ip) >> 8)
            else:
                key = (6, int(ip) >> 72)
        if len(self._keys) >= self.max_buckets:
            self._keys.clear()
        self._keys[host] = key
        return key

    def _evict(self, now: float) -> None:
        """Forget buckets that have refilled (they hold no state worth keeping); if a flood of
        fresh prefixes leaves none refilled, start over rather than grow."""
        full = [k for k, (tokens, last, _) in self._buckets.items()
                if tokens + (now - last) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_buckets:
            self._buckets.clear()


def truncated_reply(query: bytes) -> bytes | None:
    """The slip answer: the query's header and question with QR, AA and TC set and nothing
    else, so it is never larger than the query. None if the query has no single plain
    question (then it is just dropped)."""
    if len(query) < 17 or query[2] & 0x80:
        return None
    qid, flags, qdcount = struct.unpack(">HHH", query[:6])
    if qdcount != 1:
        return None
    pos = 12
    while True:
        if pos >= len(query):
            return None
        n = query[pos]
        if n == 0:
            break
        if n & 0xC0:               # compression in a query's question: not worth parsing
            return None
        pos += 1 + n
    end = pos + 5
    if end > len(query):
        return None
    flags = 0x8000 | 0x0400 | 0x0200 | (flags & 0x7900)     # QR AA TC; opcode and RD copied
    return struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 0) + query[12:end]
