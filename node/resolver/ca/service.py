"""The CA as a record source: issuance and revocation rules, and TLSA answers from leaves.

Issuance needs a proof of control (core/ca_proof.py) by the name's CURRENT owner key over the
network, the name, the CSR and a recent main-chain block; the leaf names the name's fqdn and
any subdomains the CSR asks for under it (each a valid DNS name), and lives at most
min(90 days, the name's remaining life). A name's owner has at most MAX_LIVE_LEAVES unrevoked,
unexpired leaves: one more is refused rather than an old one revoked, since a leaf in use by a
server must never disappear behind its operator's back; and at most MAX_UNEXPIRED_LEAVES
unexpired ones, revoked or not, so issue-and-revoke churn cannot grow the CRL without bound.
Leaves are revoked when the owner asks (signed the same way over the serial), and
automatically when the chain says the name changed hands or expired (name events), or a reorg
undid the registration they were issued under; the CRL is re-made on the next fetch (OCSP and
the status endpoint are current at once). Revocation is final even if a reorg later restores
the owner: a relying party may already have seen the CRL.

TLSA answers (`lookup`) are `3 1 1` of each current leaf whose SAN covers the host, only while
the name is live and still owned by the address the leaf was issued to: so a missed event can
never keep a transferred name's old key in DNS.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from core.crypto import hash160, verify_digest
from core.names.dvalue import Record
from core.names.dnsname import MAX_HOSTNAME, is_hostname
from core.names.rules import expires_in, is_expired
from core.records import domain_of
from core.sources import SourceAnswer
from node.resolver.ca.authority import Authority, CAError
from core.ca_evidence import names_host, tlsa_owner, tlsa_rdata
from core.ca_proof import SERIAL_LEN, fqdn_of, issue_digest, revoke_digest
from node.resolver.ca.store import CertRecord, CertStore

log = logging.getLogger("dotbit.resolver.ca")

MAX_LIFETIME = 90 * 86400
RECENT_BLOCKS = 12            # a proof's block hash must be one of the last this many
MAX_SANS = 50
MAX_LIVE_LEAVES = 8           # unrevoked, unexpired leaves per name and owner
MAX_UNEXPIRED_LEAVES = 64     # revoked ones too: bounds a name's share of the CRL against churn
CRL_LIFETIME = 86400          # nextUpdate; the CRL is re-signed when half of it has passed
MIN_RSA_BITS = 2048
EC_CURVES = (ec.SECP256R1, ec.SECP384R1)


class CAService:
    name = "ca"

    def __init__(self, authority: Authority, db, get_record: Callable, height: Callable[[], int],
                 recent_hashes: Callable[[int], list[bytes]], params, *,
                 clock: Callable[[], float] = time.time, on_change: Callable[[str], None] | None = None):
        self.authority = authority
        self.store = CertStore(db, clock())
        self.get_record = get_record
        self.height = height
        self.recent_hashes = recent_hashes
        self.params = params
        self.clock = clock
        self.on_change = on_change
        self._parsed: dict[bytes, tuple[x509.Certificate, str]] = {}
        self._crl: tuple[int, bytes, float] | None = None      # number, der, next_update
        self._crl_stale = True        # re-made on the first fetch: revocations since the last one

    # --- record source --------------------------------------------------------------------

    def lookup(self, fqdn: str, qtype: str) -> SourceAnswer | None:
        if qtype != "TLSA":
            return None
        live = self.current(fqdn)
        if not live:
            return None
        records = tuple(sorted({Record(fqdn, "TLSA", rdata) for _, _, rdata in live}, key=lambda r: r.rdata))
        return SourceAnswer("ca", records, True, (live[0][0].name.decode(),))

    def current(self, fqdn: str) -> list[tuple[CertRecord, x509.Certificate, str]]:
        """The unrevoked, unexpired leaves whose SAN covers the host of `_PORT._tcp.HOST.`
        (any port: a leaf certifies the host, not a service), while its owner still holds it."""
        parsed = tlsa_owner(fqdn.lower())
        name = domain_of(parsed[1]) if parsed else None
        if name is None:
            return []
        recs = self.store.of_name(name.encode())
        if not recs:
            return []
        rec = self.get_record(name.encode())
        if rec is None or is_expired(rec, self.height(), self.params):
            return []
        now = self.clock()
        out = []
        for r in sorted(recs, key=lambda r: (r.issued_at, r.serial)):
            if r.revoked or r.not_after <= now or r.owner != rec.address:
                continue
            cert, rdata = self._leaf(r)
            if names_host(cert, parsed[1]):
                out.append((r, cert, rdata))
        return out

    def _leaf(self, r: CertRecord) -> tuple[x509.Certificate, str]:
        hit = self._parsed.get(r.serial)
        if hit is None:
            cert = x509.load_der_x509_certificate(r.der)
            hit = self._parsed[r.serial] = (cert, tlsa_rdata(cert))
        return hit

    # --- issuance -------------------------------------------------------------------------

    def issue(self, name: str, csr_pem: str, block_hash: bytes, pubkey: bytes, sig: bytes) -> CertRecord:
        fqdn = fqdn_of(name)
        if fqdn is None:
            raise CAError("bad-name", "the CA certifies d/ names that are valid DNS labels (d/example)")
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
            csr_der = csr.public_bytes(serialization.Encoding.DER)
            ok = csr.is_signature_valid
            pub = csr.public_key()
        except (ValueError, TypeError, UnicodeError, x509.UnsupportedGeneralNameType):
            raise CAError("bad-csr", "the CSR is not a PEM certificate request with a supported key") from None
        if not ok:
            raise CAError("bad-csr", "the CSR's self-signature does not verify")
        _check_key(pub)
        self._check_block(block_hash)
        if not verify_digest(pubkey, sig, issue_digest(self.params.magic, name, csr_der, block_hash)):
            raise CAError("bad-proof", f"the signature does not verify over {name}, this CSR and block on {self.params.name}")
        rec = self._live_owner(name, pubkey)
        hosts = _hosts(csr, fqdn)
        now = int(self.clock())
        for gone in self.store.forget_expired(name.encode(), now):     # memory stays bounded by live leaves
            self._parsed.pop(gone, None)
        live, unexpired = self.store.counts(name.encode(), now, rec.address)
        if live >= MAX_LIVE_LEAVES:
            raise CAError("too-many-leaves", f"{name} already has {MAX_LIVE_LEAVES} live certificates, the most "
                                             "one name may have: revoke one (dotbit-wallet cert revoke) first")
        if unexpired >= MAX_UNEXPIRED_LEAVES:
            raise CAError("too-many-leaves", f"{name} has had {MAX_UNEXPIRED_LEAVES} certificates that have not "
                                             "expired yet (revoked ones count until they expire): wait for one to expire")
        life = expires_in(rec, self.height(), self.params) * self.params.spacing
        not_after = now + min(MAX_LIFETIME, life)
        serial = _new_serial()
        cert = self.authority.issue(csr, hosts, serial, now, not_after, rec.address)
        out = CertRecord(serial, name.encode(), cert.public_bytes(serialization.Encoding.DER), now, not_after,
                         rec.address)
        self.store.add(out)
        log.info("issued %s for %s (%s) until %d", serial.hex(), name, ",".join(hosts), not_after)
        self._changed(name)
        return out

    def _check_block(self, block_hash: bytes) -> None:
        if block_hash not in self.recent_hashes(RECENT_BLOCKS):
            raise CAError("stale-block", f"the proof's block is not one of the last {RECENT_BLOCKS} main-chain blocks")

    def _live_owner(self, name: str, pubkey: bytes):
        rec = self.get_record(name.encode())
        if rec is None:
            raise CAError("unknown-name", f"{name} is not registered")
        if is_expired(rec, self.height(), self.params):
            raise CAError("name-expired", f"{name} has expired")
        if hash160(pubkey) != rec.address:
            raise CAError("not-owner", f"the signing key does not own {name}")
        return rec

    # --- revocation -----------------------------------------------------------------------

    def revoke_request(self, name: str, serial: bytes, block_hash: bytes, pubkey: bytes, sig: bytes) -> CertRecord:
        """The holder (the address it was issued to) or the name's current owner revokes."""
        rec = self.store.get(serial) if len(serial) == SERIAL_LEN else None
        if rec is None or rec.name != name.encode():
            raise CAError("unknown-serial", f"no certificate {serial.hex()} for {name}")
        self._check_block(block_hash)
        if not verify_digest(pubkey, sig, revoke_digest(self.params.magic, name, serial, block_hash)):
            raise CAError("bad-proof", f"the signature does not verify over {name}, this serial and block on {self.params.name}")
        owner = self.get_record(name.encode())
        allowed = {rec.owner}
        if owner is not None and not is_expired(owner, self.height(), self.params):
            allowed.add(owner.address)
        if hash160(pubkey) not in allowed:
            raise CAError("not-owner", f"the signing key neither holds {serial.hex()} nor owns {name}")
        if rec.revoked:
            raise CAError("already-revoked", f"{serial.hex()} was revoked ({rec.reason})")
        return self._revoke([rec], "owner-request")[0]

    def name_changed(self, kind: str, name: bytes | None, record, height: int) -> None:
        """chain.names listener: revoke on transfer, expiry, or a reorg that undid the owner."""
        if name is None:
            return
        live = [r for r in self.store.of_name(name) if not r.revoked]
        if not live:
            return
        if kind == "expire":
            self._revoke(live, "expired")
        elif kind == "connect":
            self._revoke([r for r in live if r.owner != record.address], "transferred")
        elif kind == "disconnect":
            self._revoke([r for r in live if record is None or r.owner != record.address], "reorg")

    def reconcile(self) -> None:
        """At start: events missed while the node was down (a transfer or expiry processed by
        reindex, say) are caught up from the current name state."""
        for name in list(self.store.by_name):
            rec = self.get_record(name)
            live = [r for r in self.store.of_name(name) if not r.revoked]
            if rec is None or is_expired(rec, self.height(), self.params):
                self._revoke(live, "expired")
            else:
                self._revoke([r for r in live if r.owner != rec.address], "transferred")

    def _revoke(self, recs: list[CertRecord], reason: str) -> list[CertRecord]:
        if not recs:
            return []
        done = self.store.revoke(recs, int(self.clock()), reason)
        self._crl_stale = True
        for r in done:
            log.info("revoked %s for %s: %s", r.serial.hex(), r.name.decode("utf-8", "replace"), reason)
        self._changed(recs[0].name.decode("utf-8", "surrogateescape"))
        return done

    def crl(self) -> bytes:
        """The current CRL: re-made on the first fetch after a start or a revocation, and once
        half its lifetime has passed (nextUpdate stays ahead), without the serials of expired
        leaves. Revoking only marks it stale, so a revocation costs the same however many
        came before it; the CRL number keeps rising across restarts."""
        now = self.clock()
        if self._crl_stale or self._crl is None or self._crl[2] - now < CRL_LIFETIME / 2:
            self._crl_stale = False           # before the snapshot: a revocation during it re-stales
            for name in list(self.store.by_name):         # expired leaves leave memory as they leave the CRL
                for gone in self.store.forget_expired(name, now):
                    self._parsed.pop(gone, None)
            prev = self._crl[0] if self._crl else (self.store.crl() or (0,))[0]
            entries = [(r.serial, r.revoked_at, r.reason) for r in self.store.revoked(now)]
            der = self.authority.crl(entries, prev + 1, now, now + CRL_LIFETIME)
            self.store.put_crl(prev + 1, der)
            self._crl = (prev + 1, der, now + CRL_LIFETIME)
        return self._crl[1]

    def status(self, serial: bytes) -> tuple[str, CertRecord | None]:
        rec = self.store.get(serial) if len(serial) == SERIAL_LEN else None
        if rec is None:
            return "unknown", None
        return ("revoked" if rec.revoked else "good"), rec

    def ocsp(self, request_der: bytes) -> bytes:
        def status_of(serial: bytes):
            st, rec = self.status(serial)
            return None if rec is None else (st, rec.revoked_at, rec.reason)
        now = self.clock()
        return self.authority.ocsp(request_der, status_of, now, now + 3600)

    def _changed(self, name: str) -> None:
        if self.on_change is not None:
            self.on_change(name)


def _check_key(pub) -> None:
    if isinstance(pub, rsa.RSAPublicKey):
        if pub.key_size < MIN_RSA_BITS:
            raise CAError("weak-key", f"RSA keys need at least {MIN_RSA_BITS} bits")
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        if not isinstance(pub.curve, EC_CURVES):
            raise CAError("weak-key", "EC keys must be on P-256 or P-384")
    else:
        raise CAError("weak-key", "the CSR's key must be RSA or EC (P-256, P-384)")


def _hosts(csr: x509.CertificateSigningRequest, fqdn: str) -> list[str]:
    """The name's fqdn first, then the CSR's other SAN DNS names, each under it."""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [fqdn]
    except (ValueError, TypeError, UnicodeError, x509.UnsupportedGeneralNameType):
        raise CAError("bad-csr", "the CSR's extensions do not parse") from None
    hosts = [fqdn]
    for gn in san:
        if not isinstance(gn, x509.DNSName):
            raise CAError("san-outside-name", f"only DNS names under {fqdn} can be certified")
        h = gn.value.lower().rstrip(".")
        if not is_hostname(h, wildcard=True):
            raise CAError("bad-san", f"a SAN of {len(h)} characters is not a DNS name: at most "
                                     f"{MAX_HOSTNAME} characters, labels of 1-63 letters, digits and inner hyphens")
        if h != fqdn and not h.endswith("." + fqdn):
            raise CAError("san-outside-name", f"{h} is not {fqdn} or a name under it")
        if h not in hosts:
            hosts.append(h)
    if len(hosts) > MAX_SANS:
        raise CAError("bad-csr", f"at most {MAX_SANS} names per certificate")
    return hosts


def _new_serial() -> bytes:
    """128 random bits, positive and non-zero as RFC 5280 asks (top bit clear)."""
    while True:
        s = bytearray(os.urandom(SERIAL_LEN))
        s[0] &= 0x7F
        if any(s):
            return bytes(s)
