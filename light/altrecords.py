"""TLSA records from a source other than the chain (sources.Policy: the CA, DANE), as a light
client checks them. Under bit. the chain is authoritative: DANE records are refused there, CA
records only stand where the chain has no TLSA of its own, and only once the client has checked
each is the SPKI hash of a leaf, carried in the envelope, that a CA certificate the user pinned
(`--ca-cert`) signed for that host, valid now, not on that CA's current CRL (carried in the
envelope), issued to the owner the proofs show for a live name. Without a pinned CA they are refused: the resolver's word is never enough.

Names outside bit. are the DANE source's alone (no chain data, no proofs): light/dane.py
checks them, against the client's DNSSEC trust anchors when it has them.
"""
from __future__ import annotations

from typing import Callable

from core.names.dvalue import Record
from core.names.rules import is_expired
from core.records import domain_of
from light.verdict import Verified, VerifyError, text_record


def verify_dane(body: dict, fqdn: str, qtype: str, anchors: dict, now: float) -> Verified:
    """A name outside bit.: the chain, its headers and proofs say nothing about it."""
    from light.dane import absence, check_answer      # dnspython loads only for such names
    tip = body["tip"]
    out = Verified(fqdn, qtype, "NOERROR", tip["height"], tip["hash"], "dane", source="dane")
    answer = body.get("answer") if body["kind"] == "domain" else None     # .get: as for bit. names
    if body["kind"] == "domain" and not isinstance(answer, dict):
        raise VerifyError("shape", "malformed answer")
    if answer is None:
        out.status = "NXDOMAIN"
        out.alt_trust, out.alt_detail = absence()
        return out
    out.records, out.alt_trust, out.alt_detail = check_answer(answer, fqdn, qtype, anchors, now)
    out.tls = [[r.owner, r.rdata] for r in out.records if r.rtype == "TLSA"]
    return out


def take_alt(out: Verified, answer: dict, chain_has_tlsa: bool,
             check_ca: Callable[[dict, list], str]) -> None:
    """If another source answered out's question, its TLSA replaces the chain's at the name, but
    only where the policy (protocol.md §5) lets it: never DANE under bit., the CA only where
    the chain has nothing for that TLSA owner (`chain_has_tlsa`, from what we checked of the
    chain), and only once `check_ca(group, records)` has checked the CA's evidence itself and
    said, in one line, what it checked. The resolver's "source" label is never taken on its
    word: it only says which of these checks must pass."""
    source, group = _alt_group(answer, out.fqdn, out.qtype)
    if group is None:
        return
    if source == "dane":
        raise VerifyError("source", f"DANE records for {out.fqdn}, a name under bit., where the chain is "
                                    f"authoritative")
    if chain_has_tlsa:
        raise VerifyError("source", f"CA records for {out.fqdn}, which has its own TLSA (tls) on chain")
    records = _alt_records(group, out.fqdn)
    detail = check_ca(group, records)
    out.records = [r for r in out.records if not (r.owner == out.fqdn and r.rtype == "TLSA")] + records
    out.tls = [t for t in out.tls if t[0] != out.fqdn] + [[r.owner, r.rdata] for r in records]
    out.source, out.alt_trust, out.alt_detail = "ca", "ca-cert", detail


def _alt_group(answer: dict, fqdn: str, qtype: str):
    """(source, its group or None) after shape checks; the chain answering means no group."""
    source, groups = answer.get("source", "chain"), answer.get("alt", [])
    if source not in ("chain", "ca", "dane") or not isinstance(groups, list):
        raise VerifyError("shape", "malformed record source")
    if source == "chain":
        if groups:
            raise VerifyError("source", "records from another source while the chain answered")
        return source, None
    if len(groups) != 1 or not isinstance(groups[0], dict) or groups[0].get("source") != source:
        raise VerifyError("shape", f"the {source} records are missing or malformed")
    if qtype not in ("TLSA", "ANY"):
        raise VerifyError("records", f"a {source} source answered a {qtype} question (only TLSA is theirs)")
    return source, groups[0]


def _alt_records(group: dict, fqdn: str) -> list[Record]:
    rows = group.get("records")
    if not isinstance(rows, list) or not rows:
        raise VerifyError("shape", "an alternative source without records")
    try:
        records = [text_record(*r) for r in rows]
    except (TypeError, ValueError):
        raise VerifyError("shape", "malformed record") from None
    if any(r.owner != fqdn or r.rtype != "TLSA" for r in records):
        raise VerifyError("records", f"another source may only give TLSA at {fqdn}")
    return records


def check_ca(group: dict, records: list[Record], fqdn: str, proven: dict | None, height: int, params,
             now: float, ca_certs) -> str:
    """What was checked of CA records, in one line, once each is the key of a leaf that one of
    `ca_certs` (the user's pinned CA certificates) signed for the host, valid now, not on that
    CA's current CRL, issued to the owner the proofs show for a live name; VerifyError("ca")
    otherwise, and when there is no pinned CA to check against. `proven` None (trust
    pinned): the owner is not checked."""
    from core.ca_evidence import tlsa_owner
    if not ca_certs:
        raise VerifyError("ca", f"CA records for {fqdn} and no --ca-cert to check them against: refused")
    owner = tlsa_owner(fqdn)
    name = domain_of(owner[1]) if owner else None
    if name is None:
        raise VerifyError("ca", f"{fqdn} is not a TLSA owner under bit.")
    address = None
    if proven is not None:
        rec = proven.get(name.encode())
        if rec is None or is_expired(rec, height, params):
            raise VerifyError("ca", f"CA records for {name}, which the proofs show is not live")
        address = rec.address
    evidence = group.get("evidence")
    certs = evidence.get("certs") if isinstance(evidence, dict) else None
    crl = evidence.get("crl") if isinstance(evidence, dict) else None
    if not isinstance(certs, list) or any(type(c) is not bytes for c in certs) or type(crl) is not bytes:
        raise VerifyError("ca", "the CA records come without their certificates and CRL")
    vouched, why = _vouched(certs, crl, ca_certs, owner[1], now, address)
    missing = [r.rdata for r in records if r.rdata.upper() not in vouched]
    if missing:
        raise VerifyError("ca", f"{missing[0]} at {fqdn} is not backed by a leaf our CA issued for {owner[1]} "
                                f"({why})")
    whose = f"to {name}'s proven owner at height {height}" if proven is not None else "(owner NOT checked: trust pinned)"
    return (f"each record is the key of a leaf signed by your --ca-cert, naming {owner[1]}, valid now, not on "
            f"its current CRL, issued {whose}")


def _vouched(certs: list, crl: bytes, ca_certs, host: str, now: float, address) -> tuple[set, str]:
    """The TLSA rdatas the leaves vouch for under one of our CAs, and why the last one failed."""
    from core.ca_evidence import EvidenceError, check_crl, check_leaf
    vouched, why = set(), "no certificate given"
    for ca in ca_certs:
        try:
            revoked = check_crl(crl, ca, now)
        except EvidenceError as e:
            why = str(e)
            continue
        for der in certs:
            try:
                vouched.add(check_leaf(der, ca, host, now, address, revoked))
            except EvidenceError as e:
                why = str(e)
    return vouched, why
