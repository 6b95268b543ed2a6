"""What the light client's checks conclude: VerifyError for a failed check, Verified for what
an answer proves. The checkers (verify, altrecords, headers, dane) and the reporters (client,
stub, cli) all speak these; they sit in a module of their own so that no checker has to import
another just to agree on them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.names.dvalue import Record


class VerifyError(Exception):
    """One failed check: `check` is a stable word naming it, the message says what was seen."""

    def __init__(self, check: str, message: str):
        super().__init__(f"{check}: {message}")
        self.check = check


@dataclass
class Verified:
    fqdn: str
    qtype: str
    status: str                      # "NOERROR" or "NXDOMAIN" (NOERROR with no records = no data)
    height: int
    block_hash: bytes
    trust: str                       # "proofs" or "pinned"; "dane" for names outside bit.
    records: list = field(default_factory=list)      # [Record]
    tls: list = field(default_factory=list)          # [[owner, rdata]]
    minimalt: list = field(default_factory=list)     # [{owner, ip, port, id_key, eph_key, eph_update}]
    proven: dict = field(default_factory=dict)       # name -> NameRecord | None
    expired: list = field(default_factory=list)      # names whose record is expired at `height`
    source: str = "chain"            # whose TLSA was accepted: chain, ca or dane (set by its checker)
    alt_trust: str = ""              # what checked ca/dane data: ca-cert, dnssec-verified, resolver-says-absent
    alt_detail: str = ""             # one line: what exactly was checked of the ca/dane data


def text_record(owner, rtype, rdata) -> Record:
    """A record row of a signed body; TypeError unless every field is text (a resolver may sign
    anything, and Record would carry it on)."""
    if not all(isinstance(x, str) for x in (owner, rtype, rdata)):
        raise TypeError("record fields must be text")
    return Record(owner, rtype, rdata)
