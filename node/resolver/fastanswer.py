"""A name's own records, rendered straight to wire: `NAME.bit.` or a name below it, asked for a
type the name has.

An uncached answer through dnspython (parse the query, Message objects, render with name
compression) cost several times the Ed25519 signature that a DO answer needs anyway. The
common shape is read by hand here, as fastdeny.py does for the NXDOMAIN: one question of
letters, digits, '-' and '_' labels under `bit.` (the last label exactly "bit"), class IN, a
data type, at most an OPT record without options, EDNS version 0. The answer is the RRset at
the name of that type (and its RRSIG with DO): the records dns_answer.rrsets_of would keep,
written from the record text without dnspython objects for A and AAAA (dnspython parses the
other types' rdata), signed with the resolver key as OnlineSigner.rrsig signs; only name
compression is left out (test_fastanswer.py compares both paths parsed, and validates the
signatures). Anything else returns None and the general path
answers: the apex, a zone cut or DNAME at or above the name, CNAME following, NODATA,
NXDOMAIN, another record source (CA, DANE zones), or a response over the UDP size limit.
"""
from __future__ import annotations

import re
import socket
import struct

import dns.rdata
import dns.rdatatype

from node.resolver.dnssec import REFRESH, SKEW, VALIDITY
from node.resolver.identity import ALGORITHM, ZONE

OPT, RRSIG, A, AAAA = 41, 46, 1, 28
TTL = 300                      # dns_answer.TTL (not imported: dns_answer imports this module)
MAX_SIGS = 50_000              # signatures kept by content, as OnlineSigner keeps them
_BIT = b"\x03bit\x00"
_TYPE_TEXT = {t: dns.rdatatype.to_text(t) for t in range(1, 128)}     # the record text's type names
_OK = re.compile(rb"\A[A-Za-z0-9_-]+\Z")


def parse(wire: bytes):
    """(lower-cased labels without the root, question bytes, qtype, EDNS DO flag or None
    without EDNS, UDP size limit) of a plain query for a name under bit. with two labels or
    more, or None."""
    if len(wire) < 17:
        return None
    flags, qd, an, ns, ar = struct.unpack_from(">HHHHH", wire, 2)
    if flags & 0xF800 or qd != 1 or an or ns or ar > 1:       # QR or an opcode: not ours
        return None
    labels, i, size = [], 12, len(wire)
    while True:
        if i >= size:
            return None
        n = wire[i]
        if n == 0:
            break
        label = wire[i + 1:i + 1 + n]
        if n > 63 or len(label) != n or not _OK.match(label):   # compression pointers too: n > 63
            return None
        labels.append(label.lower())
        i += 1 + n
    if len(labels) < 2 or labels[-1] != b"bit" or wire[i - 3:i] != b"bit" or i - 12 + 1 > 255:
        return None
    end = i + 5
    if size < end:
        return None
    qtype, qclass = struct.unpack_from(">HH", wire, i + 1)
    if qclass != 1 or not 0 < qtype < 128 or qtype == OPT:
        return None
    do, limit = None, 512
    if ar:
        if size != end + 11 or wire[end] != 0:
            return None
        rtype, payload, ext, version, eflags, rdlen = struct.unpack_from(">HHBBHH", wire, end + 1)
        if rtype != OPT or ext or version or rdlen:
            return None
        do, limit = bool(eflags & 0x8000), max(512, min(payload, 1232))
    elif size != end:
        return None
    return tuple(labels), wire[12:end], qtype, do, limit


def from_denial(denial):
    """parse(wire) from fastdeny.parse(wire) when that is not None (a query for LABEL.bit.): the
    same tuple without reading the packet again (test_fastanswer checks that they agree)."""
    label, question, qtype, do, limit = denial
    return ((label.lower(), b"bit"), question, qtype, do, limit) if _OK.match(label) else None


def domain_of(wire: bytes) -> bytes | None:
    """b"d/LABEL" for a query whose question name ends in LABEL.bit. (any letter case), else None:
    the name the answer reads first (a worker fetches it ahead, worker.py)."""
    i, last, prev, size = 12, None, None, min(len(wire), 12 + 255)
    while i < size:
        n = wire[i]
        if n == 0:
            return b"d/" + prev.lower() if last is not None and prev and last.lower() == b"bit" else None
        if n > 63:
            return None
        prev, last = last, wire[i + 1:i + 1 + n]
        i += 1 + n
    return None


class FastAnswer:
    """Renders and signs the answer; the name source says what the name holds."""

    def __init__(self, signer):
        self.signer = signer
        self._sigs: dict = {}          # (owner, type, rdatas) -> (RRSIG record bytes, valid until)

    def answer(self, resp, wire: bytes, tcp: bool, parsed) -> bytes | None:
        """Responder `resp`'s answer when the name holds records of the asked type and nothing
        at or above it cuts or redirects; None: the general path answers."""
        labels, question, qtype, edns, limit = parsed
        do = bool(edns)
        if do and self.signer is None or not chain_only(resp.policy):
            return None                   # another source could add records: general path
        qtext = b".".join(labels).decode("ascii") + "."
        found = _rdatas(resp.source.resolve(qtext).records, qtext, qtype)
        if not found:
            return None
        owner = wire[12:12 + len(question) - 4].lower()
        fixed = owner + struct.pack(">HHI", qtype, 1, TTL)
        body = b"".join(fixed + struct.pack(">H", len(w)) + w for w, _ in found)
        count = len(found)
        if do:
            body += self._rrsig(qtext, owner, len(labels), qtype, fixed, found)
            count += 1
        flags = 0x8000 | 0x0400 | (wire[2] << 8 & 0x0100)          # QR AA (RD copied) NOERROR
        opt = b"" if edns is None else b"\x00" + struct.pack(">HHBBHH", OPT, 1232, 0, 0, 0x8000 if do else 0, 0)
        out = wire[:2] + struct.pack(">HHHHH", flags, 1, count, 0, 1 if opt else 0) + question + body + opt
        return out if tcp or len(out) <= limit else None      # too big: the general path compresses or truncates

    def _rrsig(self, qtext: str, owner: bytes, labels: int, qtype: int, fixed: bytes, found) -> bytes:
        """The RRSIG record over the RRset, as OnlineSigner.rrsig makes it (cached by content)."""
        digests = sorted({d for _, d in found})
        key = (qtext, qtype, tuple(digests))
        now = self.signer.clock()
        hit = self._sigs.get(key)
        if hit is None or hit[1] <= now:
            signer = self.signer.key
            start = int(now) - SKEW
            head = struct.pack(">HBBIIIH", qtype, ALGORITHM, labels, TTL, start + SKEW + VALIDITY, start,
                               signer.key_tag) + _BIT
            data = head + b"".join(fixed + struct.pack(">H", len(d)) + d for d in digests)
            rdata = head + signer.sign(data)
            if len(self._sigs) >= MAX_SIGS:
                self._sigs.clear()
            hit = self._sigs[key] = (owner + struct.pack(">HHIH", RRSIG, 1, TTL, len(rdata)) + rdata,
                                     now + VALIDITY - REFRESH)
        return hit[0]


def _rdatas(records, qtext: str, qtype: int) -> list | None:
    """[(wire, canonical wire)] of the RRset at qtext of type qtype, as dns_answer.rrsets_of
    would build it (unparsable rdata left out, duplicates once); None when there is none, or
    a cut or DNAME at or above qtext makes it a referral or a synthesis (Responder._answer)."""
    name = _TYPE_TEXT.get(qtype) or dns.rdatatype.to_text(qtype)
    out, seen = [], set()
    for r in records:
        if r.rtype in ("NS", "DNAME") and (qtext == r.owner or qtext.endswith("." + r.owner)):
            if r.rtype == "NS" and not (qtype == 43 and r.owner == qtext) or r.rtype == "DNAME" and r.owner != qtext:
                return None
        if r.owner != qtext or r.rtype != name:
            continue
        got = _native(qtype, r.rdata)
        if got is None:
            try:
                rd = dns.rdata.from_text(1, qtype, r.rdata)
            except Exception:
                continue                  # as rrsets_of: left out
            try:
                got = (rd.to_wire(), rd.to_digestable(ZONE))
            except Exception:
                return None
        elif got is False:
            return None                   # not in the form parsed here: the general path decides
        if got[1] not in seen:
            seen.add(got[1])
            out.append(got)
    return out or None


def _native(qtype: int, text: str):
    """(wire, wire) of an A or AAAA rdata in canonical text form; False for another form of
    those types; None for other types."""
    family = socket.AF_INET if qtype == A else socket.AF_INET6 if qtype == AAAA else None
    if family is None:
        return None
    try:
        raw = socket.inet_pton(family, text)
    except (OSError, ValueError):
        return False
    return (raw, raw) if socket.inet_ntop(family, raw) == text else False


def chain_only(policy) -> bool:
    """No record source besides the chain (a policy that cannot say so is taken to have one)."""
    return policy is None or hasattr(policy, "sources") and all(n == "chain" for n in policy.sources)
