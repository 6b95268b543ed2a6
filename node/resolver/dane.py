"""The DANE record source: TLSA (and A, AAAA, CNAME) for names outside `bit.`, read from
DNSSEC-signed BIND zone files and served only as far as DNSSEC lets us trust them.

Each zone gets one of the RFC 4033 §5 verdicts when it is loaded:
- secure: its apex DNSKEY RRset is signed by a key that matches a trust anchor (a DS or
  DNSKEY line in the anchor file, or a validated DS for the apex in a secure parent zone
  that is loaded too). Then every RRset served must carry an RRSIG by one of the zone's
  keys that verifies and whose inception/expiration window holds; an RRset without one is
  bogus and dropped (logged), never served. The window is checked again at lookup time, so
  a signature that expires while the zone is loaded stops being served without a reload.
- bogus: the apex DNSKEY RRset does not verify under the anchor. Nothing of the zone is
  served: an attacker who can edit the file must not get anything through.
- insecure: no anchor at or above the apex. Served, marked secure=False, so a client can
  tell DNSSEC-less data from validated data (RFC 7671 §3: DANE needs secure TLSA).
A zone under a configured anchor (or a secure loaded zone) but without its own proven DS
is neither provably secure nor provably insecure (that needs the parent's NSEC proof of no
DS, which we do not check): it is refused, failing closed.

Loading never raises into the node: a missing or broken file is logged and its zone is not
served. `reload()` re-reads every file and swaps the new state in at once; lookups see the
old state or the new one, never a mix. Measured on a loaded 2-core box: a 2 MB zone (2,000
hosts, 4,000 RRsets) parses in ~5 s and validates in ~3.5 s; a lookup is ~10 µs.
Keeping the evidence (below) costs ~5% more at load and ~2 µs per lookup (5 µs vs 3 µs
for a TLSA); it is 450-1,040 bytes per answer (one zone, or a child under its parent's DS).
Wildcards are not synthesised (only literal owners are answered) and names at or below a delegation inside a zone are not served (the data
there is not the zone's to sign).

Evidence: a secure answer carries what a light client needs to redo the validation itself
(light/dane.py), as one DNS message in wire format (RFC 1035 §4): the answer section holds the
answer RRsets with their RRSIGs, the authority section the chain from the trust anchor down,
i.e. per zone its DNSKEY RRset (+RRSIGs) and, below an anchored zone, the DS RRset the parent
signed for it (+RRSIGs). Every piece is serialised once at load (uncompressed, so the pieces
concatenate); a lookup only joins bytes under a 12-byte header.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import dns.dnssec
import dns.exception
import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone
import dns.zonefile

from core.names.dvalue import Record

from core.dane_evidence import (SERVED, DANEConfigError, anchored_keys, evidence_message, parse_anchors,
                                 rdata_text, rrset_wire)
from core.sources import SourceAnswer

log = logging.getLogger("dotbit.resolver.dane")

_SERVED_TYPES = {dns.rdatatype.from_text(t): t for t in SERVED}
IN = dns.rdataclass.IN
DNSKEY, DS, NS, RRSIG = dns.rdatatype.DNSKEY, dns.rdatatype.DS, dns.rdatatype.NS, dns.rdatatype.RRSIG
SEP, REVOKE = dns.dnssec.Flag.SEP, dns.dnssec.Flag.REVOKE

SECURE, INSECURE, BOGUS = "secure", "insecure", "bogus"


@dataclass(frozen=True, slots=True)
class ServedRRset:
    records: tuple[Record, ...]
    expires: int | None            # latest expiration of a valid RRSIG (None: insecure zone)
    wire: tuple[bytes, int] = (b"", 0)   # the RRset and its RRSIGs as DNS wire, and how many RRs


@dataclass(slots=True)
class ZoneState:
    origin: str
    path: str
    status: str                    # SECURE | INSECURE | BOGUS
    reason: str = ""
    rrsets: dict = field(default_factory=dict)    # (owner, type) -> ServedRRset
    dropped: list = field(default_factory=list)   # "owner TYPE: why" of bogus RRsets
    child_ds: dict = field(default_factory=dict)  # child apex -> (validated DS rdatas, their expiry, DS wire)
    chain: tuple = ()              # (wire, count) pieces from the anchor down to this zone's DNSKEYs

    @property
    def secure(self) -> bool:
        return self.status == SECURE


# --- files --------------------------------------------------------------------------------------

def read_anchors(path: str) -> dict[dns.name.Name, list]:
    """The trust-anchor file at `path` (see dane_evidence.parse_anchors)."""
    try:
        with open(path, encoding="utf-8") as f:
            return parse_anchors(f.read(), path)
    except OSError as e:
        raise DANEConfigError(f"cannot read trust anchors {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise DANEConfigError(f"bad trust-anchor file {path}: {e}") from None


def read_zone(path: str) -> dns.zone.Zone:
    """A BIND zone file. Its origin is its $ORIGIN or, failing that, the owner of its first
    record (the SOA, written absolute as dnssec-signzone does)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return dns.zone.from_text(text, origin=_first_owner(text), relativize=False, filename=path)
    except OSError as e:
        raise DANEConfigError(f"cannot read zone {path}: {e.strerror}") from None
    except dns.zone.UnknownOrigin:
        raise DANEConfigError(f"bad zone file {path}: no $ORIGIN and its first owner name is not "
                              f"absolute (end it with a dot)") from None
    except (dns.exception.DNSException, UnicodeDecodeError, ValueError, KeyError) as e:
        raise DANEConfigError(f"bad zone file {path}: {e}") from None


def _first_owner(text: str) -> str | None:
    for line in text.splitlines():
        token = line.split(";", 1)[0].split()
        if not token or line[0].isspace():
            continue
        if token[0].upper() == "$ORIGIN":
            return None            # the zone reader takes it from there
        if token[0].startswith("$"):
            continue               # $TTL, $INCLUDE
        return token[0] if token[0].endswith(".") else None
    return None


# --- validation (pure: a parsed zone, anchors and a time in, a verdict out) -----------------------

def _verify(name, rdataset, sigs, keys: dict, now: float) -> tuple[int | None, str]:
    """The latest expiration among RRSIGs that verify (None if none does) and why not."""
    best, why = None, "no RRSIG"
    for sig in sigs or ():
        try:
            dns.dnssec.validate_rrsig((name, rdataset), sig, keys, now=now)
        except dns.exception.DNSException as e:
            why = str(e) or type(e).__name__
            continue
        best = sig.expiration if best is None else max(best, sig.expiration)
    return best, why


def _cut_above(name: dns.name.Name, origin: dns.name.Name, cuts: set) -> dns.name.Name | None:
    """The delegation at or above `name` inside the zone, if any (walks up: O(depth))."""
    while len(name) > len(origin):
        if name in cuts:
            return name
        name = name.parent()
    return None


def evaluate_zone(zone: dns.zone.Zone, path: str, anchors: list | None, anchors_expire: int | None = None,
                  chain: tuple = (), *, now: float) -> ZoneState:
    """The zone's verdict and what may be served from it. `anchors` None: no anchor applies
    (insecure); a list: the DS/DNSKEY rdatas the apex must match (an empty list: bogus).
    `anchors_expire`: when a DS taken from a parent zone stops being valid, which bounds
    everything below it. `chain`: the evidence pieces from the anchor down to that DS."""
    origin = zone.origin
    state = ZoneState(origin.to_text().lower(), path, INSECURE if anchors is None else SECURE)
    apex = zone.get_node(origin)
    keys = None
    dnskey_expires = None
    if anchors == []:
        return _bogus(state, "a trust anchor covers it but nothing proves its keys (no validated DS "
                             "for it in a loaded parent, and no anchor of its own)")
    if anchors is not None:
        dnskeys = apex.get_rdataset(IN, DNSKEY) if apex is not None else None
        if dnskeys is None:
            return _bogus(state, "no DNSKEY at the apex")
        trusted = anchored_keys(origin, dnskeys, anchors)
        if not trusted:
            return _bogus(state, "no apex DNSKEY matches a trust anchor")
        sigs = apex.get_rdataset(IN, RRSIG, DNSKEY)
        dnskey_expires, why = _verify(origin, dnskeys, sigs, {origin: dns.rdataset.from_rdata_list(0, trusted)},
                                      now)
        if dnskey_expires is None:
            return _bogus(state, f"apex DNSKEY RRset not validly signed by an anchored key: {why}")
        if anchors_expire is not None:
            dnskey_expires = min(dnskey_expires, anchors_expire)
        keys = {origin: dnskeys}
        state.chain = tuple(chain) + (rrset_wire(origin, dnskeys, sigs),)
    _collect(zone, state, keys, dnskey_expires, now=now)
    return state


def _collect(zone: dns.zone.Zone, state: ZoneState, keys: dict | None, dnskey_expires: int | None, *,
             now: float) -> None:
    """Fills state with the zone's servable RRsets and its children's validated DS, each checked
    against the apex `keys` when the zone is secure (None: insecure, nothing to check)."""
    origin = zone.origin
    cuts = {n for n, node in zone.items() if n != origin and node.get_rdataset(IN, NS) is not None}
    for name, node in zone.items():
        owner = name.to_text().lower()
        if name.is_wild():
            continue
        cut = _cut_above(name, origin, cuts) if cuts else None
        if cut is not None:
            if keys is not None and name == cut and node.get_rdataset(IN, DS) is not None:
                ds = node.get_rdataset(IN, DS)
                ds_sigs = node.get_rdataset(IN, RRSIG, DS)
                exp, why = _verify(name, ds, ds_sigs, keys, now)
                if exp is not None:
                    state.child_ds[name] = (list(ds), min(exp, dnskey_expires), rrset_wire(name, ds, ds_sigs))
                else:
                    state.dropped.append(f"{owner} DS: {why}")
            continue
        for rdataset in node:
            rtype = _SERVED_TYPES.get(rdataset.rdtype)
            if rtype is None or rdataset.rdclass != IN:
                continue
            expires, wire = None, (b"", 0)
            if keys is not None:
                sigs = node.get_rdataset(IN, RRSIG, rdataset.rdtype)
                expires, why = _verify(name, rdataset, sigs, keys, now)
                if expires is None:
                    state.dropped.append(f"{owner} {rtype}: {why}")
                    continue
                expires = min(expires, dnskey_expires)
                wire = rrset_wire(name, rdataset, sigs)
            records = tuple(sorted((Record(owner, rtype, rdata_text(rtype, rd)) for rd in rdataset),
                                   key=lambda r: r.rdata))
            state.rrsets[(owner, rtype)] = ServedRRset(records, expires, wire)


def _bogus(state: ZoneState, reason: str) -> ZoneState:
    state.status, state.reason = BOGUS, reason
    return state


# --- the source ---------------------------------------------------------------------------------

class DANESource:
    """RecordSource "dane". `clock` is injected so signature windows are testable."""
    name = "dane"

    def __init__(self, zone_paths: Iterable[str] = (), anchor_path: str | None = None,
                 clock: Callable[[], float] = time.time):
        self.zone_paths = list(zone_paths)
        self.anchor_path = anchor_path
        self.clock = clock
        self.zones: dict[str, ZoneState] = {}
        self._reloading = threading.Lock()
        self.reload()

    def reload(self) -> list[str]:
        """Re-read the anchors and every zone; returns the problems found (also logged).
        Safe to run in a worker thread (parsing a big zone takes seconds): reloads run one at
        a time and the new state replaces the old in one assignment."""
        with self._reloading:
            return self._reload()

    def _reload(self) -> list[str]:
        problems: list[str] = []
        anchors: dict = {}
        if self.anchor_path:
            try:
                anchors = read_anchors(self.anchor_path)
            except DANEConfigError as e:
                # Without the anchors every zone would look insecure: a downgrade. Serve nothing.
                problems.append(f"{e}; no DANE zone is served")
                self.zones = {}
                return self._report(problems)
        parsed = []
        for path in self.zone_paths:
            try:
                parsed.append((path, read_zone(path)))
            except DANEConfigError as e:
                problems.append(str(e))
        parsed.sort(key=lambda pz: len(pz[1].origin))        # parents before their children
        now = self.clock()
        zones: dict[str, ZoneState] = {}
        for path, zone in parsed:
            key = zone.origin.to_text().lower()
            if key in zones:
                problems.append(f"zone {key} from {path} ignored: already loaded from {zones[key].path}")
                continue
            try:
                state = evaluate_zone(zone, path, *self._anchors_for(zone.origin, anchors, zones), now=now)
            except Exception as e:  # noqa: BLE001 — one odd zone must not take the node down
                problems.append(f"zone {key} ({path}) not served: cannot evaluate it: {type(e).__name__}: {e}")
                continue
            if state.status == BOGUS:
                problems.append(f"zone {key} ({path}) is BOGUS, not served: {state.reason}")
            problems += [f"zone {key}: bogus RRset dropped: {d}" for d in state.dropped]
            zones[key] = state
            log.info("dane zone %s (%s): %s, %d RRsets served, %d dropped", key, path, state.status,
                     len(state.rrsets), len(state.dropped))
        self.zones = zones
        return self._report(problems)

    @staticmethod
    def _report(problems: list[str]) -> list[str]:
        for p in problems:
            log.error("dane: %s", p)
        return problems

    @staticmethod
    def _anchors_for(origin: dns.name.Name, configured: dict, loaded: dict) -> tuple[list | None, int | None, tuple]:
        """(anchors for evaluate_zone, when those taken from a parent's DS expire, the evidence
        chain down to that DS: empty when the zone has an anchor of its own)."""
        own = list(configured.get(origin, ()))
        expires, chain = None, ()
        for state in loaded.values():
            if state.secure and origin in state.child_ds:
                ds, exp, ds_wire = state.child_ds[origin]
                own += ds
                expires = exp if expires is None else min(expires, exp)
                chain = chain or state.chain + (ds_wire,)
        if own:
            return own, *((None, ()) if origin in configured else (expires, chain))
        above = [n for n in configured if origin.is_subdomain(n)]
        above += [dns.name.from_text(s.origin) for s in loaded.values() if s.secure]
        if any(origin.is_subdomain(n) for n in above):
            return [], None, ()  # an anchor covers it but nothing proves its keys: refuse
        return None, None, ()

    def zone_for(self, fqdn: str) -> ZoneState | None:
        labels = fqdn.lower().rstrip(".").split(".")
        for i in range(len(labels) + 1):
            z = self.zones.get(".".join(labels[i:]) + ".")
            if z is not None:
                return z
        return None

    def lookup(self, fqdn: str, qtype: str) -> SourceAnswer | None:
        owner = fqdn.lower().rstrip(".") + "."
        zone = self.zone_for(owner)
        if zone is None or zone.status == BOGUS:
            return None
        qtype = qtype.upper()
        types = SERVED if qtype == "ANY" else (tuple(dict.fromkeys((qtype, "CNAME"))) if qtype in SERVED else ())
        now = self.clock()
        records: list[Record] = []
        wires = []
        for t in types:
            rr = zone.rrsets.get((owner, t))
            if rr is None:
                continue
            if rr.expires is not None and now > rr.expires:
                log.warning("dane: %s %s not served: its signatures expired (re-sign and reload)", owner, t)
                continue
            records += rr.records
            wires.append(rr.wire)
        if not records:
            return None
        evidence = evidence_message(wires, zone.chain) if zone.secure else None
        return SourceAnswer(self.name, tuple(records), zone.secure, (), evidence)
