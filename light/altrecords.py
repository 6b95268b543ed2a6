"""TLSA records from a source other than the chain (sources.Policy: the CA, DANE), as a light
client checks them. They come apart from the chain's, with their source named, and replace the
chain's TLSA at the asked name. CA records are accepted only for a name the proofs show live;
a client that knows the CA certificate (`ca_certs`) also checks each record is the SPKI hash
of a leaf, carried in the envelope, that the CA signed for that host and that is valid now.

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


def take_alt(out: Verified, answer: dict, trust_of: Callable[[str, dict, list], str]) -> None:
    """If another source answered out's question, its TLSA replaces the chain's at the name (the
    policy put it first), with the trust `trust_of(source, group, records)` gives it."""
    source, group = _alt_group(answer, out.fqdn, out.qtype)
    if group is None:
        return
    records = _alt_records(group, out.fqdn)
    alt_trust = trust_of(source, group, records)
    out.records = [r for r in out.records if not (r.owner == out.fqdn and r.rtype == "TLSA")] + records
    out.tls = [t for t in out.tls if t[0] != out.fqdn] + [[r.owner, r.rdata] for r in records]
    out.source, out.alt_trust = source, alt_trust


def _alt_group(answer: dict, fqdn: str, qtype: str):
    """(source, its group or None) after shape checks; the chain answering means no group."""
    source, groups = answer.get("source", "chain"), answer.get("alt", [])
    if source not in ("chain", "ca", "dane") or not isinstance(groups, list):
        raise VerifyError("shape", "malformed record source")
    if source == "chain":
        if groups:
            raise VerifyError("shape", "records from another source while the chain answered")
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


def check_ca(group: dict, records: list[Record], fqdn: str, proven: dict, height: int, params, now: float,
             ca_certs) -> str:
    """The trust CA records earn: "ca-cert" when each is backed by a leaf one of `ca_certs`
    issued, "resolver" when we know no CA certificate; VerifyError otherwise."""
    from core.ca_evidence import EvidenceError, check_leaf, tlsa_owner
    owner = tlsa_owner(fqdn)
    name = domain_of(owner[1]) if owner else None
    if name is None:
        raise VerifyError("ca", f"{fqdn} is not a TLSA owner under bit.")
    rec = proven.get(name.encode())
    if rec is None or is_expired(rec, height, params):
        raise VerifyError("ca", f"CA records for {name}, which the proofs show is not live")
    if not ca_certs:
        return "resolver"
    evidence = group.get("evidence")
    certs = evidence.get("certs") if isinstance(evidence, dict) else None
    if not isinstance(certs, list) or any(type(c) is not bytes for c in certs):
        raise VerifyError("ca", "the CA records come without their certificates")
    vouched = set()
    for der in certs:
        for ca in ca_certs:
            try:
                vouched.add(check_leaf(der, ca, owner[1], now))
                break
            except EvidenceError:
                continue
    missing = [r.rdata for r in records if r.rdata.upper() not in vouched]
    if missing:
        raise VerifyError("ca", f"{missing[0]} at {fqdn} is not backed by a leaf our CA issued for {owner[1]}")
    return "ca-cert"
