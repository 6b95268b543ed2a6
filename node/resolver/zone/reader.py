"""One version of the stored zone, read from a store snapshot (blocks connecting meanwhile cannot
mix two serials into one transfer): its RRsets in canonical order for AXFR and `zone export`,
and the IXFR steps from a client's serial, all as generators in bounded memory.
"""
from __future__ import annotations

import itertools

import dns.name
import dns.rrset
import dns.serial

from node.resolver.dns_answer import soa_rrset
from node.resolver.identity import ZONE
from node.resolver.zone import rrwire
from node.resolver.zone.store import ZoneStore

T = rrwire.T


class ZoneVersion:
    def __init__(self, snapshot):
        self.snapshot = snapshot
        self.store = ZoneStore(snapshot)
        self.meta = self.store.meta()

    @property
    def ready(self) -> bool:
        """False before the zone was first built (or while a rebuild runs)."""
        return self.meta is not None and bool(self.meta.tip)

    @property
    def serial(self) -> int:
        return self.meta.serial

    def soa(self) -> dns.rrset.RRset:
        e = self.store.owner(rrwire.APEX_KEY)
        for rrset in rrwire.rrsets_of_rrs(ZONE, e[3] if e is not None else []):
            if rrset.rdtype == T.SOA:
                return rrset
        return soa_rrset(self.serial)

    def body(self):
        """Every RRset but the SOA, in canonical order of owners."""
        for _, e in self.store.owners():
            name = dns.name.from_wire(e[0], 0)[0]
            for rrset in rrwire.rrsets_of_rrs(name, e[3]):
                if rrset.rdtype != T.SOA:
                    yield rrset

    def axfr(self):
        soa = self.soa()
        yield soa
        yield from self.body()
        yield soa

    def ixfr(self, client_serial: int):
        """The RRsets of an incremental transfer from `client_serial` (RFC 1995 §4), or None
        when the steps from that serial are no longer (or never were) kept."""
        # Kept steps are consecutive serials ending at ours (a rebuild drops them all), so the
        # client's step is found by arithmetic, not by reading the history.
        behind = (self.serial - client_serial) & 0xFFFFFFFF
        first = self.meta.next_step - behind
        if behind == 0 or first < self.meta.first_step:
            return None
        step = next(self.store.steps(first), None)
        if step is None or step[0] != first or step[1][0] != client_serial:
            return None
        return self._ixfr_from(first)

    def _ixfr_from(self, first: int):
        soa = self.soa()
        yield soa
        for n, (old, new, _tip, deleted, added) in self.store.steps(first):
            if n >= self.meta.next_step:
                break
            yield soa_rrset(old)
            yield from _rrsets(deleted)
            yield soa if new == self.serial else soa_rrset(new)
            yield from _rrsets(added)
        yield soa

    def client_is_current(self, client_serial: int) -> bool:
        return dns.serial.Serial(client_serial) >= dns.serial.Serial(self.serial)

    def text(self):
        """BIND master-file lines (absolute names), SOA first, canonical order."""
        yield "$ORIGIN bit.\n"
        yield self.soa().to_text() + "\n"
        for rrset in self.body():
            yield rrset.to_text() + "\n"


def _rrsets(rrs):
    """(owner wire, type, ttl, rdata wire) RRs, sorted, as RRsets."""
    for owner, group in itertools.groupby(rrs, key=lambda rr: rr[0]):
        name = dns.name.from_wire(owner, 0)[0]
        yield from rrwire.rrsets_of_rrs(name, [(t, ttl, w) for _, t, ttl, w in group])


def zone_text(db) -> tuple[int, str]:
    """The stored zone's serial and its master-file text, from one snapshot."""
    snap = db.snapshot()
    try:
        version = ZoneVersion(snap)
        return version.serial, "".join(version.text())
    finally:
        snap.close()
