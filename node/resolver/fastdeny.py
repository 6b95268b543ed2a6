"""The random-name flood's answer, rendered straight to wire: NXDOMAIN for `LABEL.bit.`.

A flood of random names under bit. ("water torture") gets one NXDOMAIN each, with DO two
freshly signed NSEC white lies. Built with dnspython objects (parse, message, RRsets, render)
that cost about ten times the Ed25519 signature itself; here the plain query shape (one
question of two labels, class IN, a data type, at most an OPT record without options, EDNS
version 0) is read by hand and the answer written as bytes: the same records, flags and
signatures as Responder's own path (test_fastdeny_matches_the_general_path compares them
parsed, with one clock), only without name compression. Anything else returns None, and the
general path answers.
"""
from __future__ import annotations

import io
import struct

import dns.name
import dns.rrset

from core.names.dnsname import is_domain_label
from node.resolver.dnssec import predecessor, successor_after_subtree
from node.resolver.identity import ALGORITHM

RRSIG, NSEC, OPT = 46, 47, 41
_BIT = b"\x03bit\x00"
_NSEC_BITMAP = b"\x00\x06\x00\x00\x00\x00\x00\x03"      # window 0: RRSIG (46) and NSEC (47)
_WILDCARD = dns.name.from_text("*.bit.")


def parse(wire: bytes):
    """(first label, question bytes, qtype, EDNS DO flag or None without EDNS, UDP size limit) of
    a plain query for LABEL.bit., or None."""
    if len(wire) < 17:
        return None
    flags, qd, an, ns, ar = struct.unpack_from(">HHHHH", wire, 2)
    if flags & 0xF800 or qd != 1 or an or ns or ar > 1:       # QR or an opcode: not ours
        return None
    n = wire[12]
    if not 0 < n < 64 or wire[13 + n:18 + n] != _BIT:
        return None
    label = wire[13:13 + n]
    end = 18 + n + 4
    if len(wire) < end:
        return None
    qtype, qclass = struct.unpack_from(">HH", wire, end - 4)
    if qclass != 1 or not 0 < qtype < 128 or qtype == OPT or label == b"*" or b"." in label:
        return None
    do, limit = None, 512
    if ar:
        if len(wire) != end + 11 or wire[end] != 0:
            return None
        rtype, payload, ext, version, eflags, rdlen = struct.unpack_from(">HHBBHH", wire, end + 1)
        if rtype != OPT or ext or version or rdlen:
            return None
        do, limit = bool(eflags & 0x8000), max(512, min(payload, 1232))
    elif len(wire) != end:
        return None
    return label, wire[12:end], qtype, do, limit


def deny(resp, fast: "FastDeny", wire: bytes, tcp: bool, parsed, ttl: int) -> bytes | None:
    """Responder `resp`'s NXDOMAIN for a parsed plain query, when the name is absent and no
    other record source could make it exist; None: the general path answers."""
    if parsed[3] and resp.signer is None or not all(n == "chain" for n in getattr(resp.policy, "sources", ())):
        return None
    if resp.policy is not None and not hasattr(resp.policy, "sources"):
        return None                       # a policy that cannot say it has only the chain
    label = parsed[0].lower()
    text = label.decode("ascii") if label.isascii() else ""
    ldh = is_domain_label(text)
    if resp.absent is not None and ldh and resp.absent(b"d/" + label):
        if resp.source.track is not None:         # what resolve() would have noted as read
            resp.source.track.append("d/" + text)
    elif resp.source.resolve(text + ".bit." if ldh else dns.name.Name((label, b"bit", b"")).to_text()).records:
        return None                               # (an LDH label's text needs no escaping)
    return fast.answer(wire, parsed, resp._soa(ttl), ttl, tcp)


def _rr(owner: bytes, rtype: int, ttl: int, rdata: bytes) -> bytes:
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


class FastDeny:
    """Renders the NXDOMAIN; the Responder decides that the name is absent."""

    def __init__(self, signer):
        self.signer = signer
        self._soa: dict = {}             # id(SOA RRset) -> (RRset, RRSIG RRset or None, wire)
        self._wild: tuple | None = None  # (valid until, wire) of the wildcard denial

    def soa_wire(self, soa: dns.rrset.RRset, do: bool) -> bytes:
        sig = self.signer.sign(soa) if do else None
        hit = self._soa.get(id(soa))
        if hit is None or hit[0] is not soa or hit[1] is not sig:
            wire = _wire(soa) + (_wire(sig) if sig is not None else b"")
            if len(self._soa) >= 16:
                self._soa.clear()
            hit = self._soa[id(soa)] = (soa, sig, wire)
        return hit[2]

    def nsec(self, denied: dns.name.Name, ttl: int, now: float) -> bytes:
        """One white lie for `denied` and all below it, and its RRSIG."""
        owner = predecessor(denied)
        owner_wire = owner.to_digestable()
        rdata = successor_after_subtree(denied).to_wire() + _NSEC_BITMAP
        labels = len(owner) - 1 - (1 if owner.is_wild() else 0)
        key = self.signer.key
        start = int(now) - 3600
        expiration = start + 3600 + 3 * 86400
        head = struct.pack(">HBBIIIH", NSEC, ALGORITHM, labels, ttl, expiration, start, key.key_tag) + _BIT
        record = _rr(owner_wire, NSEC, ttl, rdata)
        return record + _rr(owner_wire, RRSIG, ttl, head + key.sign(head + record))

    def answer(self, wire: bytes, parsed, soa: dns.rrset.RRset, ttl: int, tcp: bool) -> bytes | None:
        label, question, _, edns, limit = parsed
        do = bool(edns)
        flags = 0x8000 | 0x0400 | (wire[2] << 8 & 0x0100) | 3        # QR AA (RD copied) NXDOMAIN
        body = self.soa_wire(soa, do)
        count = 2 if do else 1
        if do:
            now = self.signer.clock()
            body += self.nsec(dns.name.Name((label.lower(), b"bit", b"")), ttl, now)
            if self._wild is None or self._wild[0] <= now:
                self._wild = (now + 86400, self.nsec(_WILDCARD, ttl, now))
            body += self._wild[1]
            count += 4
        opt = b"" if edns is None else b"\x00" + struct.pack(">HHBBHH", OPT, 1232, 0, 0, 0x8000 if do else 0, 0)
        out = wire[:2] + struct.pack(">HHHHH", flags, 1, 0, count, 1 if opt else 0) + question + body + opt
        return out if tcp or len(out) <= limit else None      # too big: the general path truncates


def _wire(rrset: dns.rrset.RRset) -> bytes:
    """An RRset's records, uncompressed."""
    f = io.BytesIO()
    rrset.to_wire(f)
    return f.getvalue()
