"""Record sources and the policy that picks one (DESIGN §5 "Record sources").

A source answers (fqdn, qtype) with records, or None when it has nothing there. The chain
(the names' own d/ values) is one source; the CA (node/resolver/ca/) and DANE zones
(dane.py) are others. The policy answers TLSA questions with the first source, in the
configured order, that has records — by default the name's own `tls` items, then the CA,
then DANE — and leaves every other type to the chain alone: only TLSA has a meaning that
does not depend on who published it (it pins a key; the client checks the key itself).

DNS (dns_answer.py) and the HTTP API (http_api.py) both ask the same Policy, so the two
never disagree about which source answered.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.names.dvalue import Record

SOURCE_NAMES = ("chain", "ca", "dane")
DEFAULT_ORDER = SOURCE_NAMES
POLICY_TYPES = ("TLSA",)


@dataclass(frozen=True, slots=True)
class SourceAnswer:
    source: str                      # "chain" | "ca" | "dane"
    records: tuple[Record, ...]      # core.names.dvalue.Record(owner, rtype, rdata), owner fqdn with dot
    secure: bool = True              # False only for DNSSEC-insecure DANE data
    names_used: tuple[str, ...] = () # chain names read (for proofs and cache invalidation)
    evidence: bytes | None = None    # DANE: DNSSEC evidence, a DNS message (dane.evidence_message)


class RecordSource(Protocol):
    name: str

    def lookup(self, fqdn: str, qtype: str) -> SourceAnswer | None: ...   # None: nothing here


def parse_order(text: str) -> tuple[str, ...]:
    """ "chain,ca,dane" -> ("chain", "ca", "dane"); ValueError on unknown or repeated names."""
    order = tuple(s.strip().lower() for s in text.split(",") if s.strip())
    bad = [s for s in order if s not in SOURCE_NAMES]
    if not order or bad or len(set(order)) != len(order):
        raise ValueError(f"record sources must be distinct names from {','.join(SOURCE_NAMES)}"
                         + (f" (unknown: {','.join(bad)})" if bad else ""))
    return order


class ChainSource:
    """The names' own records, through the resolver's read-only name view (records.NameSource)."""
    name = "chain"

    def __init__(self, names):
        self.names = names

    def lookup(self, fqdn: str, qtype: str) -> SourceAnswer | None:
        ans = self.names.resolve(fqdn)
        records = tuple(r for r in ans.records if r.owner == fqdn and r.rtype == qtype)
        return SourceAnswer("chain", records, True, ans.names_used) if records else None


class Policy:
    def __init__(self, sources=(), order: tuple[str, ...] = DEFAULT_ORDER):
        self.order = tuple(order)
        self.sources: dict[str, RecordSource] = {}
        for s in sources:
            self.add(s)

    def add(self, source: RecordSource) -> None:
        """Sources not named in the order are kept but never asked."""
        self.sources[source.name] = source

    def lookup(self, fqdn: str, qtype: str) -> SourceAnswer | None:
        """The first configured source with records for a policy type; None otherwise (the
        chain alone answers every other type)."""
        if qtype not in POLICY_TYPES:
            return None
        for name in self.order:
            src = self.sources.get(name)
            ans = src.lookup(fqdn, qtype) if src is not None else None
            if ans is not None and ans.records:
                return ans
        return None

    def alternative(self, fqdn: str, qtype: str) -> SourceAnswer | None:
        """The policy's answer when it is not the chain's (which callers already have). The
        chain is asked only once another source has records: DNS asks this for every name it
        answers, and most names have nothing elsewhere."""
        if qtype not in POLICY_TYPES:
            return None
        chain_first = False
        for name in self.order:
            src = self.sources.get(name)
            if src is None:
                continue
            if name == "chain":
                chain_first = True
                continue
            ans = src.lookup(fqdn, qtype)
            if ans is not None and ans.records:
                if chain_first:
                    mine = self.sources["chain"].lookup(fqdn, qtype)
                    if mine is not None and mine.records:
                        return None
                return ans
        return None
