"""The signed `bit.` zone: every live name's records as the resolver answers them, signed with
the resolver's one key, for `dotbit-node zone export` and for AXFR to BIND, Knot or NSD
secondaries.

A zone version is a pure function of the chain tip and the key. The serial is the tip height
(the serial the online SOA carries, so a secondary's SOA check and its transfer agree);
signature times come from the tip's block time, not the clock, and Ed25519 signatures are
deterministic, so the file and the transfer at one tip are identical and only a new block
makes a new version. MinimaLT TXT records carry the on-chain ephemeral key: the off-chain
fresher ones change between blocks, which a serial cannot follow, so only the online
resolver serves them.

A registrant must not be able to make the zone unloadable for every secondary, so what a
zone file cannot hold is left out here (`_fit_for_zone`) although the online resolver may
still answer it: DS away from a cut, data beside a CNAME, anything below a DNAME or (but
glue) below a cut, NS/DS/DNAME at a wildcard, and a delegation whose in-zone nameservers
have no address.
"""
from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from core.names.dvalue import lookup_records, minimalt_txt_rdata
from core.names.dnsname import is_domain_label
from core.names.rules import is_expired

from node.names.index import NameIndex
from node.resolver.dns_answer import NS_NAME, TTL, rrsets_of, soa_rrset
from node.resolver.dnssec import OnlineSigner
from node.resolver.identity import ZONE, ResolverKey
from core.records import MINIMALT_PREFIX, NameSource

log = logging.getLogger("dotbit.resolver.zone")

T = dns.rdatatype
ZONE_SKEW = 3 * 3600           # a tip's time may run 2 h ahead of the clock (MAX_FUTURE_SECONDS)
ZONE_VALIDITY = 14 * 86400     # signatures outlive a stalled chain by two weeks


def domain_records(domains: Iterable[str], value: Callable[[str], str | None]):
    """(owner, type, rdata) of every domain ("d/example") with `_minimalt._udp.OWNER` TXT added
    as NameSource adds it on demand."""
    for name in domains:
        try:
            res = lookup_records(name, value)
        except Exception:               # one odd value must not cost every other name its place
            log.exception("zone: records of %s left out", name)
            continue
        for r in res.records:
            yield r.owner, r.rtype, r.rdata
        for owner, item in res.minimalt.items():
            yield MINIMALT_PREFIX + owner, "TXT", minimalt_txt_rdata(item)


def _strictly_below(name: dns.name.Name, owners: set) -> bool:
    """Whether a proper ancestor of `name` is in `owners` (walks up: a set lookup per label,
    not a comparison per owner, so zones with many cuts stay linear)."""
    while len(name) > len(ZONE):
        name = name.parent()
        if name in owners:
            return True
    return False


def _fit_for_zone(sets: dict) -> dict:
    """Drop what a zone file cannot hold (see the module doc)."""
    sets = {k: v for k, v in sets.items()
            if not (k[0].is_wild() and k[1] in (T.NS, T.DS, T.DNAME)) and k[0] != ZONE}
    cnames = {owner for owner, t in sets if t == T.CNAME}
    sets = {k: v for k, v in sets.items() if k[0] not in cnames or k[1] == T.CNAME}
    while True:
        cuts = {owner for owner, t in sets if t == T.NS}
        dnames = {owner for owner, t in sets if t == T.DNAME}
        kept = {}
        for (owner, t), rrset in sets.items():
            if t == T.DS and owner not in cuts:
                continue
            if _strictly_below(owner, dnames):
                continue
            if t not in (T.A, T.AAAA) and _strictly_below(owner, cuts):
                continue
            kept[(owner, t)] = rrset
        addressed = {owner for owner, t in kept if t in (T.A, T.AAAA)}
        lame = {owner for (owner, t), rrset in kept.items() if t == T.NS
                and any(rd.target.is_subdomain(ZONE) and rd.target not in addressed for rd in rrset)}
        if not lame:
            return kept
        # A lame cut goes with its DS and glue; its glue may have made another cut whole,
        # so check again.
        sets = {k: v for k, v in kept.items() if k[0] not in lame and not _strictly_below(k[0], lame)}


@dataclass
class SignedZone:
    serial: int
    tip_hash: bytes
    zone: dns.zone.Zone
    _text: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def text(self) -> str:
        """BIND master-file format, names absolute, in canonical order."""
        with self._lock:
            if self._text is None:
                out = io.StringIO()
                self.zone.to_file(out, sorted=True, relativize=False, want_origin=True)
                self._text = out.getvalue()
            return self._text

    def rrsets(self):
        """Every RRset, apex SOA first (AXFR order: the SOA then opens and closes the transfer)."""
        soa = self.zone.find_rrset(ZONE, T.SOA)
        yield soa
        for name in sorted(self.zone.nodes):
            for rdataset in self.zone.nodes[name]:
                if name == ZONE and rdataset.rdtype == T.SOA:
                    continue
                rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdataset.rdtype, rdataset.covers)
                rrset.update(rdataset)
                yield rrset


def build_zone(domains: Iterable[str], value: Callable[[str], str | None], key: ResolverKey,
               serial: int, tip_time: int, tip_hash: bytes = b"") -> SignedZone:
    """The signed zone of `domains` ("d/example", ...) whose values `value` gives (None for
    absent or expired names, which then add nothing)."""
    sets = _fit_for_zone(rrsets_of(domain_records(domains, value)))
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
        for rrset in sets.values():
            txn.add(rrset)
        # dnspython walks the names in canonical order, signs all but delegation NS and glue,
        # and links the NSEC chain past glue (RFC 4035 §2.2-2.3); we only supply the signer.
        dns.dnssec.sign_zone(zone, txn=txn, add_dnskey=False, rrset_signer=sign)
    return SignedZone(serial, tip_hash, zone)


def live_domains(names, height: int, params):
    """d/ names that map to a .bit domain and are not expired at `height`, from the name index."""
    for rec in names.scan():
        if (rec.name.startswith(b"d/") and not is_expired(rec, height, params)
                and is_domain_label(rec.name[2:].decode("utf-8", "replace"))):
            yield rec.name.decode()


def chain_zone(chain, params, key: ResolverKey) -> SignedZone:
    """The signed zone at the chain's tip, read from the store directly (node stopped)."""
    return zone_at(chain.db, chain.tip, params, key)


def zone_at(db, tip, params, key: ResolverKey) -> SignedZone:
    """The signed zone of the name index in `db` (the store or a snapshot of it) at `tip`."""
    names = NameIndex(db, params)
    source = NameSource(names.get, lambda: tip.height, params)
    return build_zone(live_domains(names, tip.height, params), source.value, key,
                      tip.height, tip.header.time, tip.hash)


class ZoneCache:
    """The signed zone of the current tip, built once per tip in a worker thread (the event
    loop keeps serving while a large zone is signed) from a store snapshot taken together
    with the tip, so blocks connecting meanwhile cannot mix two states into one version."""

    def __init__(self, chain, params, key: ResolverKey):
        self.chain = chain
        self.params = params
        self.key = key
        self._zone: SignedZone | None = None
        self._building: tuple | None = None      # (tip hash, future)

    async def current(self) -> SignedZone:
        import asyncio
        tip = self.chain.tip
        if self._zone is not None and self._zone.tip_hash == tip.hash:
            return self._zone
        if self._building is None or self._building[0] != tip.hash:
            snap = self.chain.db.snapshot()
            fut = asyncio.get_running_loop().run_in_executor(None, self._build, snap, tip)
            self._building = (tip.hash, fut)
        fut = self._building[1]
        zone = await asyncio.shield(fut)
        if self._building is not None and self._building[1] is fut:
            self._building = None
            self._zone = zone
        return zone

    def _build(self, snap, tip) -> SignedZone:
        try:
            return zone_at(snap, tip, self.params, self.key)
        finally:
            snap.close()
