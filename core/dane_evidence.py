"""DNSSEC evidence pieces both DANE parties agree on: the resolver's DANE source
(node/resolver/dane.py) builds its evidence with them and the light client (light/dane.py)
checks it with them. Pure: dnspython objects and bytes in, verdicts and bytes out.
"""
from __future__ import annotations

import io
import struct
from typing import Iterable

import dns.dnssec
import dns.exception
import dns.name
import dns.rdatatype
import dns.zonefile

DNSKEY, DS = dns.rdatatype.DNSKEY, dns.rdatatype.DS
REVOKE = dns.dnssec.Flag.REVOKE

SERVED = ("TLSA", "A", "AAAA", "CNAME")


class DANEConfigError(Exception):
    """A trust-anchor or zone file that cannot be read or parsed."""


def parse_anchors(text: str, where: str) -> dict[dns.name.Name, list]:
    """DS and DNSKEY lines in zone-file syntax (what `dotbit-node dnssec-anchor` prints, or
    an Unbound trust-anchor-file), by owner. `where` names the source in errors."""
    try:
        rrsets = dns.zonefile.read_rrsets(text, rdclass=None, default_ttl=0, origin=dns.name.root)
    except (dns.exception.DNSException, UnicodeDecodeError, ValueError) as e:
        raise DANEConfigError(f"bad trust-anchor file {where}: {e}") from None
    anchors: dict[dns.name.Name, list] = {}
    for rrset in rrsets:
        if rrset.rdtype not in (DS, DNSKEY):
            raise DANEConfigError(f"bad trust-anchor file {where}: only DS and DNSKEY lines, "
                                  f"not {dns.rdatatype.to_text(rrset.rdtype)}")
        anchors.setdefault(rrset.name, []).extend(rrset)
    return anchors


def anchored_keys(origin: dns.name.Name, dnskeys, anchors: Iterable) -> list:
    """The apex DNSKEYs a trust anchor vouches for (RFC 4035 §5: a DS digest or the key itself).
    Revoked keys never count (RFC 5011 §2.1)."""
    out = []
    for key in dnskeys:
        if key.flags & REVOKE or key.protocol != 3:
            continue
        for a in anchors:
            if a.rdtype == DNSKEY:
                ok = a == key
            else:
                try:
                    ok = (a.key_tag == dns.dnssec.key_id(key) and a.algorithm == key.algorithm
                          and dns.dnssec.make_ds(origin, key, a.digest_type, validating=True) == a)
                except dns.exception.DNSException:
                    ok = False       # a digest type we do not know cannot vouch for anything
            if ok:
                out.append(key)
                break
    return out


def rrset_wire(name: dns.name.Name, rdataset, sigs) -> tuple[bytes, int]:
    """An RRset and its RRSIGs as uncompressed DNS wire (so pieces can be concatenated into a
    message), with the number of RRs written."""
    f = io.BytesIO()
    count = rdataset.to_wire(name, f, want_shuffle=False)
    if sigs is not None:
        count += sigs.to_wire(name, f, want_shuffle=False)
    return f.getvalue(), count


def evidence_message(answer, authority) -> bytes:
    """A DNS response (no question) whose answer and authority sections are the given
    (wire, count) pieces: what dnspython, ldns or any DNS library can parse."""
    header = struct.pack("!HHHHHH", 0, 0x8400, 0, sum(c for _, c in answer), sum(c for _, c in authority), 0)
    return header + b"".join(w for w, _ in answer) + b"".join(w for w, _ in authority)


def rdata_text(rtype: str, rd) -> str:
    # TLSA as the d/ interpreter writes it (hex upper case, one token), so both sources agree.
    if rtype == "TLSA":
        return f"{rd.usage} {rd.selector} {rd.mtype} {rd.cert.hex().upper()}"
    return rd.to_text()


