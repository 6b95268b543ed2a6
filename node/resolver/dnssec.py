"""Online DNSSEC for `bit.`: RRSIGs made on demand with the resolver key and cached until
shortly before they expire, the DNSKEY RRset, and authenticated denial with minimally
covering NSEC records ("white lies", RFC 4470): each NSEC spans only the denied name and its
descendants, so it never denies a name that exists and the zone cannot be walked.
"""
from __future__ import annotations

import struct
import time
from typing import Callable

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.NSEC import NSEC, Bitmap
from dns.rdtypes.ANY.RRSIG import RRSIG

from node.resolver.identity import ALGORITHM, ZONE, ResolverKey

VALIDITY = 3 * 86400     # signatures live three days...
REFRESH = 86400          # ...and are replaced when less than one day is left
SKEW = 3600              # inception an hour back, for validators with slow clocks
MAX_CACHE = 500_000

_LOWER_MIN, _LOWER_MAX = 0x41, 0x5A      # canonical order compares labels lower-cased
_BITMAPS: dict = {}                      # NSEC type bitmaps by type tuple (immutable, shared)


class OnlineSigner:
    def __init__(self, key: ResolverKey, clock: Callable[[], float] = time.time):
        self.key = key
        self.clock = clock
        self._cache: dict = {}
        # id(rrset) -> (rrset, sigset, until): an RRset object signed again (the Responder's
        # shared SOA) skips building the content key, which costs more than the lookup it feeds.
        self._by_object: dict = {}

    def dnskey_rrset(self, ttl: int) -> dns.rrset.RRset:
        rrset = dns.rrset.RRset(ZONE, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        rrset.add(self.key.dnskey, ttl)
        return rrset

    def sign(self, rrset: dns.rrset.RRset) -> dns.rrset.RRset:
        """The RRSIG RRset covering `rrset` (cached by content)."""
        now = self.clock()
        if rrset.rdtype == dns.rdatatype.NSEC:
            # Denials are minimally covering white lies, one per queried name: a flood of random
            # names would fill the cache with signatures no other query can reuse.
            return self._sigset(rrset, now)
        same = self._by_object.get(id(rrset))
        if same is not None and same[0] is rrset and same[2] > now:
            return same[1]
        ck = (rrset.name, rrset.rdtype, rrset.ttl, tuple(sorted(rd.to_digestable() for rd in rrset)))
        hit = self._cache.get(ck)
        if hit is None or hit[1] <= now:
            if len(self._cache) >= MAX_CACHE:
                self._cache.clear()
            hit = self._cache[ck] = (self._sigset(rrset, now), now + VALIDITY - REFRESH)
        if len(self._by_object) >= 64:
            self._by_object.clear()
        self._by_object[id(rrset)] = (rrset, hit[0], hit[1])
        return hit[0]

    def _sigset(self, rrset: dns.rrset.RRset, now: float) -> dns.rrset.RRset:
        start = int(now) - SKEW
        rrsig = self.rrsig(rrset, start, start + SKEW + VALIDITY)
        sigset = dns.rrset.RRset(rrset.name, dns.rdataclass.IN, dns.rdatatype.RRSIG, rrset.rdtype)
        sigset.add(rrsig, rrset.ttl)
        return sigset


    def rrsig(self, rrset: dns.rrset.RRset, inception: int, expiration: int) -> RRSIG:
        """RFC 4034 §3.1.8.1 signing done here with PyNaCl: dns.dnssec.sign took ~270 us per
        RRset against ~40 us for the Ed25519 signature itself, and DO answers are signed online."""
        name = rrset.name
        labels = len(name) - 1 - (1 if name.is_wild() else 0)
        head = struct.pack("!HBBIIIH", rrset.rdtype, ALGORITHM, labels, rrset.ttl, expiration, inception,
                           self.key.key_tag) + ZONE.to_digestable()
        fixed = name.to_digestable() + struct.pack("!HHI", rrset.rdtype, rrset.rdclass, rrset.ttl)
        data = head + b"".join(fixed + struct.pack("!H", len(d)) + d
                               for d in sorted({rd.to_digestable(ZONE) for rd in rrset}))
        return RRSIG(dns.rdataclass.IN, dns.rdatatype.RRSIG, rrset.rdtype, ALGORITHM, labels, rrset.ttl,
                     expiration, inception, self.key.key_tag, ZONE, self.key.sign(data))


def nsec_rrset(owner: dns.name.Name, next_name: dns.name.Name, types, ttl: int) -> dns.rrset.RRset:
    kinds = tuple(sorted(set(types) | {dns.rdatatype.RRSIG, dns.rdatatype.NSEC}))
    bitmap = _BITMAPS.get(kinds)
    if bitmap is None:          # a handful of type sets ever occur: parse each once
        bitmap = _BITMAPS[kinds] = Bitmap.from_rdtypes(list(kinds))
        if len(_BITMAPS) > 1024:
            _BITMAPS.clear()
    rd = NSEC(dns.rdataclass.IN, dns.rdatatype.NSEC, next_name, bitmap)
    rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, dns.rdatatype.NSEC)
    rrset.add(rd, ttl)
    return rrset


def _with_first(name: dns.name.Name, label: bytes) -> dns.name.Name | None:
    try:
        return dns.name.Name((label,) + name.labels[1:])
    except dns.name.NameTooLong:
        return None


def predecessor(name: dns.name.Name) -> dns.name.Name:
    """A name just before `name` in canonical order that no real name of the zone equals:
    the first label with its last octet decremented, then an 0xFF octet (d/ labels never
    hold one)."""
    first = name.labels[0].lower()
    last = first[-1] - 1
    if _LOWER_MIN <= last <= _LOWER_MAX:
        last = _LOWER_MIN - 1
    if last < 0:
        label = first[:-1]
    else:
        label = first[:-1] + bytes([last])
    if not label:
        return name.parent()
    if len(label) < 63:
        longer = _with_first(name, label + b"\xff")
        if longer is not None:
            return longer
    return _with_first(name, label) or name.parent()


def successor_after_subtree(name: dns.name.Name) -> dns.name.Name:
    """A name after `name` and after every name below it: the first label + 0x00."""
    first = name.labels[0].lower()
    if len(first) < 63:
        n = _with_first(name, first + b"\x00")
        if n is not None:
            return n
    nxt = first[-1] + 1
    if _LOWER_MIN <= nxt <= _LOWER_MAX:
        nxt = _LOWER_MAX + 1
    return _with_first(name, first[:-1] + bytes([min(nxt, 0xFF)])) or name


def successor(name: dns.name.Name) -> dns.name.Name:
    """The name right after `name`: \\000.name (for NODATA, where the NSEC owner is name)."""
    try:
        return dns.name.Name((b"\x00",) + name.labels)
    except dns.name.NameTooLong:
        return successor_after_subtree(name)
