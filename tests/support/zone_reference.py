"""The whole signed zone built at once with dnspython's zone machinery (the node's zone before
it was kept incrementally in the store): the reference model the incremental zone is compared
with, and a quick way to get a zone of given values in a test."""
from __future__ import annotations

import io

import dns.dnssec
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from node.resolver.dns_answer import NS_NAME, TTL, soa_rrset
from node.resolver.dnssec import OnlineSigner
from node.resolver.identity import ZONE, ResolverKey
from node.resolver.zone.render import name_sets
from node.resolver.zone.signed import ZONE_SKEW, ZONE_VALIDITY

T = dns.rdatatype


class SignedZone:
    def __init__(self, serial: int, zone: dns.zone.Zone):
        self.serial = serial
        self.zone = zone

    def text(self) -> str:
        out = io.StringIO()
        self.zone.to_file(out, sorted=True, relativize=False, want_origin=True)
        return out.getvalue()

    def rrsets(self):
        """Every RRset, apex SOA first."""
        yield self.zone.find_rrset(ZONE, T.SOA)
        for name in sorted(self.zone.nodes):
            for rdataset in self.zone.nodes[name]:
                if name == ZONE and rdataset.rdtype == T.SOA:
                    continue
                rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdataset.rdtype, rdataset.covers)
                rrset.update(rdataset)
                yield rrset


def build_zone(domains, value, key: ResolverKey, serial: int, tip_time: int) -> SignedZone:
    """The signed zone of `domains` ("d/example", ...) whose values `value` gives (None for
    absent or expired names, which then add nothing)."""
    zone = dns.zone.Zone(ZONE, relativize=False)
    signer = OnlineSigner(key)
    inception = max(0, tip_time - ZONE_SKEW)
    expiration = tip_time + ZONE_VALIDITY

    def sign(txn, rrset: dns.rrset.RRset) -> None:
        txn.add(rrset.name, rrset.ttl, signer.rrsig(rrset, inception, expiration))

    with zone.writer() as txn:
        txn.add(soa_rrset(serial))
        txn.add(dns.rrset.from_text(ZONE, TTL, "IN", "NS", NS_NAME))
        txn.add(signer.dnskey_rrset(TTL))
        for name in domains:
            if value(name) is None:
                continue
            for (owner, _), rdatas in name_sets(name, value).items():
                txn.add(dns.rrset.from_rdata_list(owner, TTL, rdatas))
        dns.dnssec.sign_zone(zone, txn=txn, add_dnskey=False, rrset_signer=sign)
    return SignedZone(serial, zone)


def canonical(rrsets) -> set:
    """(name, ttl, type, covers, rdata text) of every RR: zones compared whatever their order."""
    return {(r.name.canonicalize().to_text(), r.ttl, r.rdtype, r.covers, rd.to_text())
            for r in rrsets for rd in r}
