"""Does a server's certificate chain match a verified TLSA row? RFC 6698 with the usage
rules of RFC 7671:

- DANE-EE (3): the server's own certificate (selector 0) or key (selector 1) matches; no
  name, expiry or issuer checks (§5.1: the TLSA row is the whole binding).
- DANE-TA (2): some certificate of the chain the server sent matches and acts as the only
  trust anchor: the chain must validate up to it, for the .bit name, at the current time
  (§5.2), here with cryptography's X.509 path validation and a store holding only that
  certificate.
- PKIX-TA/EE (0, 1) need the system CA store, which this tool never trusts: unusable
  (§4.1 lets a client treat such rows so), and said.

Pure: DER bytes, rows and a time in; the matched row's description or CheckFailed out.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.verification import DNSName, PolicyBuilder, Store, VerificationError

from connect.target import CheckFailed

DANE_TA, DANE_EE = 2, 3
USAGE_NAMES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}
MAX_CHAIN = 10           # certificates we look at: a server cannot make us parse without end


@dataclass(frozen=True, slots=True)
class TLSARow:
    usage: int
    selector: int
    mtype: int
    data: bytes

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex().upper()[:16]}..."


def parse_row(rdata: str) -> TLSARow | None:
    """A TLSA rdata in presentation form ("3 1 1 HEX"); None for one we cannot use (unknown
    selector or matching type, a digest of the wrong length): RFC 7671 §4.1 says skip it."""
    parts = rdata.split()
    try:
        usage, selector, mtype = (int(p) for p in parts[:3])
        data = bytes.fromhex("".join(parts[3:]))
    except ValueError:
        return None
    if selector not in (0, 1) or mtype not in (0, 1, 2) or not data:
        return None
    if (mtype == 1 and len(data) != 32) or (mtype == 2 and len(data) != 64):
        return None
    return TLSARow(usage, selector, mtype, data)


def usable_rows(rdatas) -> list[TLSARow]:
    rows = [r for r in (parse_row(x) for x in rdatas) if r is not None]
    return [r for r in rows if r.usage in (DANE_TA, DANE_EE)]


def _selected(cert: x509.Certificate, selector: int) -> bytes:
    if selector == 0:
        return cert.public_bytes(Encoding.DER)
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def matches(row: TLSARow, cert: x509.Certificate) -> bool:
    blob = _selected(cert, row.selector)
    digest = {0: lambda b: b, 1: lambda b: hashlib.sha256(b).digest(), 2: lambda b: hashlib.sha512(b).digest()}
    return digest[row.mtype](blob) == row.data


def check_chain(chain_der: list[bytes], rdatas: list[str], host: str, now: float) -> str:
    """One line saying which row the chain matched and how; CheckFailed("tls", ...) if none."""
    rows = usable_rows(rdatas)
    if not rows:
        raise CheckFailed("tls", f"no usable TLSA row for {host} (only PKIX usages 0/1 or unknown types, "
                                 f"which would need the system CA store this tool never trusts)")
    if not chain_der:
        raise CheckFailed("tls", "the server sent no certificate")
    try:
        chain = [x509.load_der_x509_certificate(d) for d in chain_der[:MAX_CHAIN]]
    except ValueError as e:
        raise CheckFailed("tls", f"the server sent an unreadable certificate ({e})") from None
    for row in rows:
        if row.usage == DANE_EE and matches(row, chain[0]):
            return f"server certificate matches TLSA {row} (DANE-EE: the row is the whole binding)"
    why = ""
    for row in rows:
        if row.usage != DANE_TA:
            continue
        for anchor in chain[1:] + chain[:1]:
            if matches(row, anchor):
                try:
                    return _ta_path(row, anchor, chain, host, now)
                except CheckFailed as e:
                    why = f" ({e.detail})"
    raise CheckFailed("tls", f"no TLSA row matches the server certificate{why}")


def _ta_path(row: TLSARow, anchor: x509.Certificate, chain: list, host: str, now: float) -> str:
    """The leaf must chain up to `anchor` alone, be valid now and name `host` (RFC 7671 §5.2)."""
    when = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    verifier = PolicyBuilder().store(Store([anchor])).time(when).build_server_verifier(DNSName(host))
    try:
        verifier.verify(chain[0], [c for c in chain[1:] if c is not anchor])
    except (VerificationError, ValueError) as e:
        raise CheckFailed("tls", f"TLSA {row} matches a certificate of the chain, but the chain does not "
                                 f"validate to it for {host}: {e}") from None
    subject = anchor.subject.rfc4514_string() or "(empty subject)"
    return (f"server chain validates to the trust anchor {subject:.80} that TLSA {row} matches "
            f"(DANE-TA: path, validity and the name {host} checked)")
