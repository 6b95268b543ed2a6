"""A name's own records, rendered straight to wire: `NAME.bit.` or a name below it, asked for a
type the name has.

An uncached answer through dnspython (parse the query, Message objects, render with name
compression) cost several times the Ed25519 signature that a DO answer needs anyway. The
common shape is read by hand here, as fastdeny.py does for the NXDOMAIN: one question of
letters, digits, '-' and '_' labels under `bit.` (the last label exactly "bit"), class IN, a
data type, at most an OPT record without options, EDNS version 0. The answer is the RRset at
the name of that type (and its RRSIG with DO), taken from the same RRsets and signer as
Responder's own path; only name compression is left out (test_fastanswer.py compares both
paths parsed, and validates the signatures). Anything else returns None and the general path
answers: the apex, a zone cut or DNAME at or above the name, CNAME following, NODATA,
NXDOMAIN, another record source (CA, DANE zones), or a response over the UDP size limit.
"""
from __future__ import annotations

import io
import re
import struct

import dns.name
import dns.rrset

OPT, NS, DS, DNAME = 41, 2, 43, 39
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


def answer(resp, wire: bytes, tcp: bool, parsed) -> bytes | None:
    """Responder `resp`'s answer when the name holds an RRset of the asked type and nothing
    above it cuts or redirects; None: the general path answers."""
    labels, question, qtype, edns, limit = parsed
    do = bool(edns)
    if do and resp.signer is None or not chain_only(resp.policy):
        return None                       # another source could add records: general path
    qname = dns.name.Name(labels + (b"",))
    sets = resp._rrsets(resp.source.resolve(b".".join(labels).decode("ascii") + "."))
    rrset = sets.get((qname, qtype))
    if rrset is None:
        return None
    for owner, rtype in sets:             # a referral, or a DNAME's synthesis (as Responder._answer)
        if (rtype == NS and not (qtype == DS and owner == qname) or rtype == DNAME and owner != qname) \
                and qname.is_subdomain(owner):
            return None
    body = _wire(rrset)
    count = len(rrset)
    if do:
        body += _wire(resp.signer.sign(rrset))
        count += 1
    flags = 0x8000 | 0x0400 | (wire[2] << 8 & 0x0100)          # QR AA (RD copied) NOERROR
    opt = b"" if edns is None else b"\x00" + struct.pack(">HHBBHH", OPT, 1232, 0, 0, 0x8000 if do else 0, 0)
    out = wire[:2] + struct.pack(">HHHHH", flags, 1, count, 0, 1 if opt else 0) + question + body + opt
    return out if tcp or len(out) <= limit else None      # too big: the general path compresses or truncates


def chain_only(policy) -> bool:
    """No record source besides the chain (a policy that cannot say so is taken to have one)."""
    return policy is None or hasattr(policy, "sources") and all(n == "chain" for n in policy.sources)


def _wire(rrset: dns.rrset.RRset) -> bytes:
    """An RRset's records, uncompressed."""
    f = io.BytesIO()
    rrset.to_wire(f)
    return f.getvalue()
