"""What the signed `bit.` zone holds of a name: every live name's records as the resolver
answers them (render.py turns them into signed owners, projection.py keeps them in the store).

Signature times come from the tip's block time, not the clock, and Ed25519 signatures are
deterministic. MinimaLT TXT records carry the on-chain ephemeral key: the off-chain fresher
ones change between blocks, which a serial cannot follow, so only the online resolver serves
them.

A registrant must not be able to make the zone unloadable for every secondary, so what a
zone file cannot hold is left out here (`_fit_for_zone`) although the online resolver may
still answer it: DS away from a cut, data beside a CNAME, anything below a DNAME or (but
glue) below a cut, NS/DS/DNAME at a wildcard, and a delegation whose in-zone nameservers
have no address.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

import dns.name
import dns.rdatatype

from core.names.dvalue import lookup_records, minimalt_txt_rdata
from core.records import MINIMALT_PREFIX
from node.resolver.identity import ZONE

log = logging.getLogger("dotbit.resolver.zone")

T = dns.rdatatype
ZONE_SKEW = 3 * 3600           # a tip's time may run 2 h ahead of the clock (MAX_FUTURE_SECONDS)
ZONE_VALIDITY = 14 * 86400     # signatures outlive a stalled chain by two weeks
_STRUCTURAL = frozenset({T.NS, T.DS, T.DNAME, T.CNAME})    # the types _fit_for_zone's rules are about


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
    not a comparison per owner, so zones with many cuts stay linear; none at all when there
    are no owners, as for most names: a whole build asks this of every owner)."""
    if not owners:
        return False
    while len(name) > len(ZONE):
        name = name.parent()
        if name in owners:
            return True
    return False


def _fit_for_zone(sets: dict, within: dns.name.Name = ZONE) -> dict:
    """Drop what a zone file cannot hold (see the module doc). `within`: the d/ name's domain
    when one name's subtree is checked alone; only nameservers inside it need an address
    here (one in another name's subtree is that name's data, not glue)."""
    if not any(t in _STRUCTURAL for _, t in sets):
        # Most names (addresses, TXT, MX): no rule of _fit_rules can drop anything but the
        # apex, and a whole build asks this of every name.
        return {k: v for k, v in sets.items() if k[0] != ZONE}
    return _fit_rules(sets, within)


def _fit_rules(sets: dict, within: dns.name.Name) -> dict:
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
                and any(rd.target.is_subdomain(within) and rd.target not in addressed for rd in rrset)}
        if not lame:
            return kept
        # A lame cut goes with its DS and glue; its glue may have made another cut whole,
        # so check again.
        sets = {k: v for k, v in kept.items() if k[0] not in lame and not _strictly_below(k[0], lame)}
