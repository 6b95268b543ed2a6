"""Resource records of the stored zone as wire bytes, and their signatures made directly with
PyNaCl: dnspython's zone machinery (Zone, sign_zone) costs ~1 ms per name, too slow to keep a
million names signed, so an RR here is (type, ttl, rdata wire) and an RRSIG is packed by hand
(RFC 4034 §3.1.8.1, the same bytes OnlineSigner.rrsig signs).

Owner keys order the zone canonically (RFC 4034 §6.1): labels from the root down, each
lower-cased and closed by a 0x00 octet, so a LevelDB iteration is an AXFR in canonical order
and every name of one d/ name's subtree shares the key prefix of its top name.
"""
from __future__ import annotations

import struct

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.NSEC import Bitmap

from node.resolver.dns_answer import NS_NAME, TTL, soa_rrset
from node.resolver.identity import ALGORITHM, ZONE, ResolverKey

T = dns.rdatatype
IN = dns.rdataclass.IN
_ZONE_WIRE = ZONE.to_digestable()
_HEAD = struct.Struct("!HBBIIIH")
_FIXED = struct.Struct("!HHI")
_LEN = struct.Struct("!H")


def owner_key(name: dns.name.Name) -> bytes:
    """Canonical-order key of an owner name (0x00 and 0x01 escaped so the closing 0x00 stays
    below every label octet: a shorter label sorts first, a parent before its children)."""
    return b"".join(label.lower().replace(b"\x01", b"\x01\x02").replace(b"\x00", b"\x01\x01") + b"\x00"
                    for label in reversed(name.labels[:-1]))


APEX_KEY = owner_key(ZONE)


def rdata_of(rdtype: int, wire: bytes) -> dns.rdata.Rdata:
    return dns.rdata.from_wire(IN, rdtype, wire, 0, len(wire))


# Types whose canonical form is their uncompressed wire, so signing them needs no parse: no
# domain name in the rdata (addresses, TXT, DS, TLSA, SSHFP, DNSKEY), or one RFC 6840 §5.1
# says is not lower-cased (NSEC's next name). Most of a zone.
_AS_WIRE = frozenset({T.A, T.AAAA, T.TXT, T.DS, T.TLSA, T.SSHFP, T.DNSKEY, T.NSEC})


def digestable(rdtype: int, wire: bytes) -> bytes:
    """The rdata's canonical form (names lower-cased where RFC 4034 §6.2 says so)."""
    if rdtype in _AS_WIRE:
        return wire
    return rdata_of(rdtype, wire).to_digestable()


def rrsig(key: ResolverKey, owner: dns.name.Name, rdtype: int, ttl: int, rdatas: list[bytes],
          inception: int, expiration: int) -> bytes:
    """The RRSIG rdata (wire) over the RRset (owner, rdtype, ttl, rdatas as wire)."""
    labels = len(owner) - 1 - (1 if owner.is_wild() else 0)
    head = _HEAD.pack(rdtype, ALGORITHM, labels, ttl, expiration, inception, key.key_tag) + _ZONE_WIRE
    fixed = owner.to_digestable() + _FIXED.pack(rdtype, IN, ttl)
    data = head + b"".join(fixed + _LEN.pack(len(d)) + d
                           for d in sorted({digestable(rdtype, w) for w in rdatas}))
    return head + key.sign(data)


def covered(rrsig_wire: bytes) -> int:
    return _LEN.unpack_from(rrsig_wire)[0]


def nsec_wire(next_name: dns.name.Name, types) -> bytes:
    kinds = sorted(set(types) | {T.RRSIG, T.NSEC})
    bitmap = b"".join(bytes([window, len(bits)]) + bits for window, bits in Bitmap.from_rdtypes(kinds).windows)
    return next_name.to_wire() + bitmap


def soa_wire(serial: int) -> bytes:
    return soa_rrset(serial)[0].to_wire()


def apex_data(key: ResolverKey, serial: int) -> list[tuple[int, int, bytes]]:
    """The apex's own RRsets: SOA (with the serial), NS and the DNSKEY."""
    ns = dns.rrset.from_text(ZONE, TTL, "IN", "NS", NS_NAME)[0].to_wire()
    return [(T.SOA, TTL, soa_wire(serial)), (T.NS, TTL, ns), (T.DNSKEY, TTL, key.dnskey.to_wire())]


def rrsets_of_rrs(owner: dns.name.Name, rrs) -> list[dns.rrset.RRset]:
    """(type, ttl, wire) RRs of one owner as dnspython RRsets (RRSIGs grouped by what they cover)."""
    sets: dict = {}
    for rdtype, ttl, wire in rrs:
        cov = covered(wire) if rdtype == T.RRSIG else T.NONE
        rrset = sets.get((rdtype, cov))
        if rrset is None:
            rrset = sets[(rdtype, cov)] = dns.rrset.RRset(owner, IN, rdtype, cov)
        rrset.add(rdata_of(rdtype, wire), ttl)
    return list(sets.values())
