"""What a light client checks of an answer for a name outside `bit.` (the DANE source,
dane.py): the resolver's records are accepted as DNSSEC-secure only if the client itself
validates them from its own trust anchors, so a resolver holding a valid signing key still
cannot swap a TLSA digest, pass an unsigned or expired RRset, leave out part of a signed
RRset, or downgrade an anchored zone to "insecure".

The evidence is one DNS message (dane.evidence_message): answer RRsets with their RRSIGs,
and, in the authority section, each zone's DNSKEY RRset (+RRSIGs) from an anchored zone down,
with the DS RRset (+RRSIGs) its parent signed for every zone below that. Validation follows
RFC 4035 §5: an anchor (DS digest or DNSKEY, as in dane.read_anchors) vouches for apex keys;
those must sign the zone's DNSKEY RRset; a child's DS must be signed by its parent's keys
and vouch for the child's keys; the answer RRsets must be signed by a zone key of a zone at
or above their owner, inside the anchor; every RRSIG's window must hold `now`.

Records are accepted only as "dnssec-verified" (Verified.alt_trust): validated here from our
anchors. Without an anchor at or above the name (none configured, or none covering it) the
answer is refused, whether the resolver calls it secure or insecure: either would be its word
alone. Denials ("not-found") come without NSEC proofs: they stay the resolver's word (it can
always refuse to answer), and are printed as such.

Pure: bytes and a time in, a verdict out (no I/O, no clock).
"""
from __future__ import annotations

import dns.dnssec
import dns.exception
import dns.message
import dns.name
import dns.rdataset
import dns.rdatatype

from core.names.dvalue import Record

from core.dane_evidence import SERVED, anchored_keys, rdata_text
from light.verdict import VerifyError

DNSKEY, DS, RRSIG = dns.rdatatype.DNSKEY, dns.rdatatype.DS, dns.rdatatype.RRSIG
ZONE_FLAG, REVOKE = dns.dnssec.Flag.ZONE, dns.dnssec.Flag.REVOKE
MAX_EVIDENCE = 65535                 # one DNS message
VERIFIED = "dnssec-verified"


def covering_anchor(fqdn: str, anchors: dict) -> dns.name.Name | None:
    """The deepest anchor name at or above fqdn."""
    try:
        name = dns.name.from_text(fqdn)
    except dns.exception.DNSException:
        return None
    best = None
    for a in anchors:
        if name.is_subdomain(a) and (best is None or len(a) > len(best)):
            best = a
    return best


def check_answer(answer: dict, fqdn: str, qtype: str, anchors: dict, now: float) -> tuple[list[Record], str, str]:
    """(records, trust word, one line saying how they were checked) for a "dane" answer body;
    VerifyError("dane" or "shape", why) for anything a client must refuse."""
    records = _records(answer, fqdn, qtype)
    group = answer["alt"][0]
    secure = group.get("secure")
    if type(secure) is not bool or answer.get("secure", secure) is not secure:
        raise VerifyError("shape", "the DANE answer does not say consistently whether it is secure")
    anchor = covering_anchor(fqdn, anchors)
    if anchor is None:        # all we would have is the resolver's word ("secure" or not): refused
        why = "no --dane-anchors given" if not anchors else "none of your --dane-anchors covers it"
        raise VerifyError("dane", f"records for {fqdn} and {why}, so their DNSSEC cannot be checked here: refused")
    if not secure:
        raise VerifyError("dane", f"the resolver marks {fqdn} insecure, but our trust anchor for "
                                  f"{anchor.to_text()} covers it (a downgrade)")
    evidence = group.get("evidence")
    wire = evidence.get("dnssec") if isinstance(evidence, dict) else None
    if type(wire) is not bytes:
        raise VerifyError("dane", f"the records for {fqdn} come without their DNSSEC evidence")
    zone, valid, why = validate(wire, anchors, now)
    for r in records:
        if (r.owner, r.rtype, r.rdata) not in valid:
            raise VerifyError("dane", f"{r.owner} {r.rtype} {r.rdata:.80} is not in an RRset DNSSEC validates "
                                      f"({why or 'no such RRset in the evidence'})")
    allowed = SERVED if qtype == "ANY" else (qtype, "CNAME")
    held_back = {v for v in valid if v[0] == fqdn and v[1] in allowed} - {(r.owner, r.rtype, r.rdata) for r in records}
    if held_back:         # a signed RRset comes whole: leaving out a (new) TLSA key is a lie too
        owner, rtype, rdata = sorted(held_back)[0]
        raise VerifyError("dane", f"the answer leaves out {owner} {rtype} {rdata:.80}, which its own evidence signs")
    return records, VERIFIED, f"DNSSEC validated here from our anchor for {anchor.to_text()} (zone {zone})"


def _records(answer: dict, fqdn: str, qtype: str) -> list[Record]:
    """The answer's records after shape checks: one dane group that repeats them, all at
    fqdn, of the asked type (or CNAME), no chain data."""
    groups = answer.get("alt")
    if answer.get("source") != "dane" or not isinstance(groups, list) or len(groups) != 1 \
            or not isinstance(groups[0], dict) or groups[0].get("source") != "dane":
        raise VerifyError("shape", f"{fqdn} is outside bit. but the answer is not the DANE source's")
    rows, alt_rows = answer.get("records"), groups[0].get("records")
    if not isinstance(rows, list) or not rows or not isinstance(alt_rows, list):
        raise VerifyError("shape", "a DANE answer without records")
    try:
        records = [Record(*_texts(row)) for row in rows]
        alt = {tuple(_texts(row)) for row in alt_rows}
    except (TypeError, ValueError):
        raise VerifyError("shape", "malformed record") from None
    if alt != {(r.owner, r.rtype, r.rdata) for r in records}:
        raise VerifyError("records", "the DANE group and the answer's records differ")
    allowed = SERVED if qtype == "ANY" else (qtype, "CNAME")
    if any(r.owner != fqdn or r.rtype not in allowed for r in records):
        raise VerifyError("records", f"the DANE source may only answer {fqdn} {qtype} "
                                     f"with {', '.join(allowed)} at {fqdn}")
    tls = answer.get("tls")
    if not isinstance(tls, list) or sorted(map(tuple, tls)) != sorted((r.owner, r.rdata) for r in records
                                                                        if r.rtype == "TLSA"):
        raise VerifyError("records", "the DANE answer's TLSA data differs from its records")
    if answer.get("minimalt") != []:
        raise VerifyError("records", "MinimaLT data for a name outside bit.")
    return records


def _texts(row) -> list[str]:
    if not (isinstance(row, list) and len(row) == 3 and all(isinstance(x, str) for x in row)):
        raise TypeError("record fields must be three texts")
    return row


def validate(wire: bytes, anchors: dict, now: float) -> tuple[str, set, str]:
    """(the answer's zone(s), {(owner, type, rdata text)} of every answer RRset of the evidence
    message that validates from `anchors` at `now`, why the last one that did not failed)."""
    if len(wire) > MAX_EVIDENCE:
        raise VerifyError("dane", "the DNSSEC evidence is too large")
    try:
        msg = dns.message.from_wire(wire)
    except Exception as e:  # noqa: BLE001 — dnspython raises many kinds on hostile bytes
        raise VerifyError("dane", f"undecodable DNSSEC evidence: {type(e).__name__}") from None
    chain = _Chain(msg.authority, anchors, now)
    sigs = {(s.name, s.covers): s for s in msg.answer if s.rdtype == RRSIG}
    valid: set = set()
    why = ""
    zones = set()
    for rrset in msg.answer:
        rtype = dns.rdatatype.to_text(rrset.rdtype)
        if rrset.rdtype == RRSIG or rtype not in SERVED:
            continue
        rrsigs = sigs.get((rrset.name, rrset.rdtype))
        if rrsigs is None:
            why = f"{rrset.name} {rtype} has no RRSIG"
            continue
        for signer in sorted({s.signer for s in rrsigs}, key=len, reverse=True):
            try:
                if not rrset.name.is_subdomain(signer):
                    raise VerifyError("dane", f"{rrset.name} {rtype} is signed by {signer}, not a zone above it")
                _validate(rrset, rrsigs, signer, chain.zone_keys(signer), now)
            except VerifyError as e:
                why = str(e).removeprefix("dane: ")
                continue
            zones.add(signer.to_text())
            owner = rrset.name.to_text().lower()
            for rd in rrset:
                valid.add((owner, rtype, rdata_text(rtype, rd)))
            break
    return ", ".join(sorted(zones)) or "-", valid, why


class _Chain:
    """Zone keys proven from the anchors through the evidence's DNSKEY and DS RRsets."""

    def __init__(self, authority, anchors: dict, now: float):
        self.rrsets = {(r.name, r.rdtype, r.covers): r for r in authority}
        self.anchors = anchors
        self.now = now
        self.proven: dict = {}

    def zone_keys(self, zone: dns.name.Name):
        if zone not in self.proven:
            self.proven[zone] = self._prove(zone)
        return self.proven[zone]

    def _prove(self, zone: dns.name.Name):
        if not any(zone.is_subdomain(a) for a in self.anchors):
            raise VerifyError("dane", f"{zone} is not under any of our trust anchors")
        dnskeys = self.rrsets.get((zone, DNSKEY, 0))
        if dnskeys is None:
            raise VerifyError("dane", f"the evidence has no DNSKEY RRset for {zone}")
        if zone in self.anchors:
            vouch, by = self.anchors[zone], "our trust anchor"
        else:
            ds = self.rrsets.get((zone, DS, 0))
            ds_sigs = self.rrsets.get((zone, RRSIG, DS))
            if ds is None or ds_sigs is None:
                raise VerifyError("dane", f"the evidence has no signed DS for {zone} (and we have no anchor for it)")
            parents = sorted({s.signer for s in ds_sigs if zone.is_subdomain(s.signer) and zone != s.signer},
                             key=len, reverse=True)
            if not parents:
                raise VerifyError("dane", f"the DS for {zone} is not signed by a zone above it")
            _validate(ds, ds_sigs, parents[0], self.zone_keys(parents[0]), self.now)
            vouch, by = list(ds), f"the DS {parents[0]} signed"
        trusted = anchored_keys(zone, dnskeys, vouch)
        if not trusted:
            raise VerifyError("dane", f"no DNSKEY of {zone} matches {by}")
        sigs = self.rrsets.get((zone, RRSIG, DNSKEY))
        if sigs is None:
            raise VerifyError("dane", f"the DNSKEY RRset of {zone} has no RRSIG")
        _validate(dnskeys, sigs, zone, dns.rdataset.from_rdata_list(0, trusted), self.now)
        return dnskeys


def _validate(rrset, rrsigs, signer: dns.name.Name, keys, now: float) -> None:
    """rrset signed, at `now`, by one of `keys` (zone keys of `signer`, not revoked)."""
    usable = [k for k in keys if k.flags & ZONE_FLAG and not k.flags & REVOKE and k.protocol == 3]
    if not usable:
        raise VerifyError("dane", f"{signer} has no usable zone key")
    try:
        dns.dnssec.validate(rrset, rrsigs, {signer: dns.rdataset.from_rdata_list(0, usable)}, now=now)
    except dns.dnssec.ValidationFailure as e:
        raise VerifyError("dane", f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}: "
                                  f"{_why(rrsigs, signer, now) or e}") from None
    except dns.exception.DNSException as e:
        raise VerifyError("dane", f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}: {e}") from None


def _why(rrsigs, signer, now: float) -> str:
    """dnspython says only "no RRSIGs validated"; name the window problem when there is one."""
    mine = [s for s in rrsigs if s.signer == signer]
    if mine and all(s.expiration < now for s in mine):
        return "its signatures have expired"
    if mine and all(s.inception > now for s in mine):
        return "its signatures are not valid yet"
    return ""


def absence() -> tuple[str, str]:
    return "resolver-says-absent", "no NSEC proof is carried: the absence is the resolver's word"
