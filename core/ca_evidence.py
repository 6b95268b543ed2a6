"""What ties a CA-sourced TLSA record to the CA: shared by the resolver (to build records) and
light clients (to check them without trusting the resolver for it).

A CA record at `_PORT._tcp.HOST.` is `3 1 1 SHA-256(SPKI)` (DANE-EE, public key, SHA-256 —
RFC 7671 §5.1's recommendation: it survives re-issuance with the same key) of a leaf the CA
issued for HOST. A client that knows the CA certificate checks that the leaf the envelope
carries is signed by it, is valid now, names HOST, and hashes to the record.

Each leaf also names the owner address that proved control when it was issued (OWNER_OID), so
a client can see from the name's proven record that the name has not changed hands since: the
CA revokes on transfer, expiry and reorg, and those revocations are thus checkable from the
chain alone, without trusting whoever relays the CRL.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization

# A private extension under the UUID arc (ITU-T X.667 / RFC 4122 §C: no registration needed):
# extnValue is an OCTET STRING holding the 20-byte owner address.
OWNER_OID = x509.ObjectIdentifier("2.25.91813943104983731511846703507382144779")
_TLSA_OWNER = re.compile(r"_([0-9]{1,5})\._tcp\.(.+\.)$")


class EvidenceError(Exception):
    pass


def tlsa_owner(fqdn: str) -> tuple[int, str] | None:
    """ "_443._tcp.www.example.bit." -> (443, "www.example.bit.") """
    m = _TLSA_OWNER.match(fqdn)
    if m is None or not 0 < int(m.group(1)) <= 65535 or str(int(m.group(1))) != m.group(1):
        return None
    return int(m.group(1)), m.group(2)


def spki_sha256(cert: x509.Certificate) -> bytes:
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def tlsa_rdata(cert: x509.Certificate) -> str:
    return "3 1 1 " + spki_sha256(cert).hex().upper()


def dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [n.lower() for n in san.get_values_for_type(x509.DNSName)]


def names_host(cert: x509.Certificate, host: str) -> bool:
    """The leaf's SAN covers `host` (absolute or not): exactly, or by a one-label wildcard."""
    host = host.rstrip(".").lower()
    parent = host.split(".", 1)[1] if "." in host else ""
    return any(n == host or (n.startswith("*.") and n[2:] == parent) for n in dns_names(cert))


def owner_extension(address: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(OWNER_OID, b"\x04\x14" + address)


def leaf_owner(cert: x509.Certificate) -> bytes | None:
    """The owner address the CA bound into the leaf; None if it names none."""
    try:
        value = cert.extensions.get_extension_for_oid(OWNER_OID).value.value
    except (x509.ExtensionNotFound, ValueError, AttributeError):
        return None
    return value[2:] if len(value) == 22 and value[:2] == b"\x04\x14" else None


def check_crl(crl_der: bytes, ca: x509.Certificate, now: float) -> set[int]:
    """The serials a current CRL signed by `ca` revokes. A CRL past its nextUpdate is refused,
    so a replayed old one can hide a revocation for at most one CRL lifetime."""
    try:       # cryptography parses some fields only when read: every read stays in here
        crl = x509.load_der_x509_crl(crl_der)
        ok = crl.issuer == ca.subject and crl.is_signature_valid(ca.public_key())
        window = crl.last_update_utc, crl.next_update_utc
        serials = {r.serial_number for r in crl}
    except (ValueError, TypeError):
        raise EvidenceError("undecodable CRL") from None
    if not ok:
        raise EvidenceError("the CRL is not signed by the CA")
    when = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    if window[1] is None or not window[0] <= when + dt.timedelta(minutes=5) or when > window[1]:
        raise EvidenceError("the CRL is not current")
    return serials


def check_leaf(leaf_der: bytes, ca: x509.Certificate, host: str, now: float,
               owner: bytes | None = None, revoked: set[int] = frozenset()) -> str:
    """The TLSA rdata the leaf vouches for at `host`, after checking it chains to `ca`, is not
    among the `revoked` serials (check_crl) and, given `owner`, that the CA issued it to that
    owner address."""
    try:
        leaf = x509.load_der_x509_certificate(leaf_der)
    except (ValueError, TypeError):
        raise EvidenceError("undecodable leaf certificate") from None
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, Exception) as e:  # InvalidSignature has no common base
        raise EvidenceError(f"the leaf is not signed by the CA ({type(e).__name__})") from None
    when = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    if not leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc:
        raise EvidenceError("the leaf is not valid now")
    if not names_host(leaf, host):
        raise EvidenceError(f"the leaf does not name {host}")
    if leaf.serial_number in revoked:
        raise EvidenceError("the leaf is revoked (the CA's CRL)")
    if owner is not None and leaf_owner(leaf) != owner:
        raise EvidenceError("the leaf was issued to another owner than the name's proven one")
    return tlsa_rdata(leaf)
