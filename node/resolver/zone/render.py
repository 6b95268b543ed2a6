"""One d/ name's share of the signed zone: its owners (`example.bit.` and below), each with its
RRsets, an NSEC to the next owner of the whole zone and the RRSIGs, as the stored entry.

A d/ name owns exactly the subtree of its domain, so the zone-file fitness rules
(signed._fit_for_zone) are applied to that subtree alone and the zone changes name by name.
What a name reads of other names (its `import`s) is returned too: a change to an imported name
re-renders its importers.
"""
from __future__ import annotations

from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA

from core.encoding import pack
from core.names.dnsname import is_domain_label
from node.resolver.dns_answer import NEG_TTL, TTL
from node.resolver.identity import ResolverKey
from node.resolver.zone import rrwire
from node.resolver.zone.signed import _fit_for_zone, _strictly_below, domain_records

T = dns.rdatatype
IN_CHAIN, AT_CUT = 1, 2


@dataclass
class Owner:
    name: dns.name.Name
    key: bytes
    flags: int                 # IN_CHAIN (not glue below a cut), AT_CUT (a delegation point)
    data: list                 # [(type, ttl, rdata wire)] without NSEC and RRSIG

    @property
    def in_chain(self) -> bool:
        return bool(self.flags & IN_CHAIN)


def top_of(name: str) -> dns.name.Name | None:
    """`example.bit.` for "d/example"; None for a name that is no .bit domain."""
    if not name.startswith("d/") or not is_domain_label(name[2:]):
        return None
    try:
        return dns.name.from_text(name[2:] + ".bit.")
    except Exception:
        return None


IN = dns.rdataclass.IN


def _sets_of(records) -> dict:
    """(owner, type) -> [rdata], parsed and de-duplicated as dns_answer.rrsets_of does (what
    dnspython will not parse is left out), without building RRsets: addresses, most of a
    zone, go straight to their rdata class, and each owner's name is parsed once."""
    names: dict = {}
    sets: dict = {}
    seen: set = set()
    for owner, rtype, text in records:
        try:
            name = names.get(owner)
            if name is None:
                name = names[owner] = dns.name.from_text(owner)
            kind = dns.rdatatype.from_text(rtype)
            if kind == T.A:
                rd = A(IN, T.A, text)
            elif kind == T.AAAA:
                rd = AAAA(IN, T.AAAA, text)
            else:
                rd = dns.rdata.from_text(IN, kind, text)
            canonical = rd.to_digestable()
        except Exception:
            continue
        if (name, kind, canonical) not in seen:
            seen.add((name, kind, canonical))
            sets.setdefault((name, kind), []).append(rd)
    return sets


def name_sets(name: str, value) -> dict:
    """(owner, type) -> [rdata] of one d/ name as the zone holds it (all with TTL)."""
    top = top_of(name)
    if top is None:
        return {}
    sets = {k: v for k, v in _sets_of(domain_records([name], value)).items() if k[0].is_subdomain(top)}
    return _fit_for_zone(sets, within=top)


def render_name(name: bytes, value) -> tuple[list[Owner], set[bytes]]:
    """The owners of d/ name `name` in canonical order (none when it is absent, expired or no
    domain) and the other names its records were read from."""
    text = name.decode("utf-8", "surrogateescape")
    read: set[str] = set()

    def tracked(n: str):
        read.add(n)
        return value(n)

    if top_of(text) is None or tracked(text) is None:
        return [], set()
    sets = name_sets(text, tracked)
    cuts = {owner for owner, t in sets if t == T.NS}
    by_owner: dict = {}
    for (owner, t), rdatas in sets.items():
        by_owner.setdefault(owner, []).extend((t, TTL, rd.to_wire()) for rd in rdatas)
    owners = [Owner(o, rrwire.owner_key(o),
                    (0 if _strictly_below(o, cuts) else IN_CHAIN) | (AT_CUT if o in cuts else 0), sorted(rrs))
              for o, rrs in by_owner.items()]
    owners.sort(key=lambda o: o.key)
    deps = {n.encode("utf-8", "surrogateescape") for n in read} - {name}
    return owners, deps


def sign(key: ResolverKey, owner: dns.name.Name, flags: int, data: list, next_name: dns.name.Name | None,
         inception: int, expiration: int) -> list:
    """Every RR of the owner: its data, then (in the chain) an NSEC to `next_name` and RRSIGs
    over what the owner is authoritative for (at a cut only DS and NSEC, RFC 4035 §2.2)."""
    rrs = list(data)
    if not flags & IN_CHAIN:
        return rrs
    rrs.append((T.NSEC, NEG_TTL, rrwire.nsec_wire(next_name, {t for t, _, _ in data})))
    groups: dict = {}
    for t, ttl, wire in rrs:
        groups.setdefault(t, (ttl, []))[1].append(wire)
    for t, (ttl, wires) in groups.items():
        if flags & AT_CUT and t not in (T.DS, T.NSEC):
            continue
        rrs.append((T.RRSIG, ttl, rrwire.rrsig(key, owner, t, ttl, wires, inception, expiration)))
    return sorted(rrs)


def data_of(rrs) -> list:
    return [rr for rr in rrs if rr[0] not in (T.NSEC, T.RRSIG)]


def nsec_next(rrs) -> dns.name.Name | None:
    for t, _, wire in rrs:
        if t == T.NSEC:
            return rrwire.rdata_of(t, wire).next
    return None


def entry_bytes(owner_wire: bytes, flags: int, expiration: int, rrs) -> bytes:
    return pack([owner_wire, flags, expiration, [list(rr) for rr in rrs]])
