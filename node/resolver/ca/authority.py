"""The issuing CA: its key (encrypted at rest) and self-signed certificate, and what it signs.

`init_ca` makes an EC P-256 key and a certificate that can only certify names under `bit`
(NameConstraints permitted DNSName "bit", critical), so even a leaked CA key is worthless for
any other name; relying parties that honour name constraints enforce that for us. The key is
PKCS#8 encrypted with the passphrase (keyfile.py: PBES2, PBKDF2-HMAC-SHA256 at 600,000 rounds,
AES-256-CBC) and written 0600; without the passphrase it does not load.

Everything here takes the time as an argument and does no I/O beyond the two files, so
issuance rules can be tested alone.
"""
from __future__ import annotations

import datetime as dt
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.ca_evidence import owner_extension
from node.resolver.ca.keyfile import encrypt_pem
from node.secretfile import fsync_dir

KEY_FILE = "ca_key.pem"
CERT_FILE = "ca_cert.pem"
CA_YEARS = 10
BACKDATE = dt.timedelta(minutes=5)       # tolerate relying parties whose clocks run a little slow
REASONS = {"transferred": x509.ReasonFlags.affiliation_changed,
           "expired": x509.ReasonFlags.cessation_of_operation,
           "owner-request": x509.ReasonFlags.unspecified,
           "reorg": x509.ReasonFlags.cessation_of_operation}


class CAError(Exception):
    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


def ca_dir(datadir: str) -> str:
    return os.path.join(datadir, "ca")


def _when(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(ts), dt.timezone.utc)


def _write(path: str, data: bytes, mode: int) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    fsync_dir(path)                 # the CA key cannot be re-made: the rename must stick


def init_ca(directory: str, passphrase: str, network: str, now: float) -> "Authority":
    if not passphrase:
        raise CAError("no-passphrase", "the CA key needs a non-empty passphrase")
    key_path, cert_path = os.path.join(directory, KEY_FILE), os.path.join(directory, CERT_FILE)
    if os.path.exists(key_path) or os.path.exists(cert_path):
        raise CAError("exists", f"a CA already exists in {directory}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dotbit"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"dotbit .bit issuing CA ({network})")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    start = _when(now) - BACKDATE
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.NameConstraints(permitted_subtrees=[x509.DNSName("bit")], excluded_subtrees=None),
                           critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    _write(key_path, encrypt_pem(key, passphrase), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return Authority(key, cert)


def load_ca(directory: str, passphrase: str) -> "Authority":
    key_path, cert_path = os.path.join(directory, KEY_FILE), os.path.join(directory, CERT_FILE)
    try:
        with open(key_path, "rb") as f:
            key_pem = f.read()
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except FileNotFoundError:
        raise CAError("no-ca", f"no CA in {directory} (run `dotbit-node ca init`)") from None
    try:
        key = serialization.load_pem_private_key(key_pem, passphrase.encode("utf-8"))
    except (ValueError, TypeError):
        raise CAError("bad-passphrase", f"cannot decrypt the CA key in {directory}: wrong passphrase?") from None
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        raise CAError("mismatch", f"the CA key and certificate in {directory} do not belong together")
    return Authority(key, cert)


def has_ca(directory: str) -> bool:
    return os.path.exists(os.path.join(directory, KEY_FILE))


class Authority:
    def __init__(self, key, cert: x509.Certificate):
        self.key = key
        self.cert = cert
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self._aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())

    def issue(self, csr: x509.CertificateSigningRequest, hosts: list[str], serial: bytes,
              now: float, not_after: float, owner: bytes) -> x509.Certificate:
        """A leaf for `hosts` (already checked to lie under the name) with the CSR's key, bound
        to the `owner` address that proved control (ca_evidence.OWNER_OID). Only the CSR's key
        is taken from it: the CA decides every name and extension."""
        pub = csr.public_key()
        key_enc = not isinstance(pub, ec.EllipticCurvePublicKey)      # RSA key transport
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
                   .issuer_name(self.cert.subject).public_key(pub)
                   .serial_number(int.from_bytes(serial, "big"))
                   .not_valid_before(_when(now) - BACKDATE).not_valid_after(_when(not_after))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=key_enc, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(self._aki, critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
                   .add_extension(owner_extension(owner), critical=False))
        return builder.sign(self.key, hashes.SHA256())

    def crl(self, revoked: list[tuple[bytes, float, str]], number: int, now: float, next_update: float) -> bytes:
        """DER CRL of (serial, revoked_at, reason) entries."""
        b = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
             .last_update(_when(now)).next_update(_when(next_update))
             .add_extension(x509.CRLNumber(number), critical=False)
             .add_extension(self._aki, critical=False))
        for serial, at, reason in revoked:
            entry = (x509.RevokedCertificateBuilder().serial_number(int.from_bytes(serial, "big"))
                     .revocation_date(_when(at)))
            flag = REASONS.get(reason, x509.ReasonFlags.unspecified)
            if flag is not x509.ReasonFlags.unspecified:      # RFC 5280: omit rather than say unspecified
                entry = entry.add_extension(x509.CRLReason(flag), critical=False)
            b = b.add_revoked_certificate(entry.build())
        return b.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def ocsp(self, request_der: bytes, status_of, now: float, next_update: float) -> bytes:
        """A signed OCSP response (RFC 6960) to a DER request. `status_of(serial16)` gives
        None (unknown) or (status, revoked_at, reason)."""
        try:
            req = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST) \
                .public_bytes(serialization.Encoding.DER)
        algo = req.hash_algorithm
        ours_name = _hash(algo, self.cert.subject.public_bytes())
        ours_key = _hash(algo, _spk_bits(self.cert))
        if (req.issuer_name_hash, req.issuer_key_hash) != (ours_name, ours_key) or req.serial_number < 0 \
                or req.serial_number.bit_length() > 8 * 16:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED) \
                .public_bytes(serialization.Encoding.DER)
        st = status_of(req.serial_number.to_bytes(16, "big"))
        revoked_at = reason = None
        if st is None:
            cert_status = ocsp.OCSPCertStatus.UNKNOWN
        elif st[0] == "revoked":
            cert_status = ocsp.OCSPCertStatus.REVOKED
            revoked_at = _when(st[1])
            flag = REASONS.get(st[2], x509.ReasonFlags.unspecified)
            reason = None if flag is x509.ReasonFlags.unspecified else flag
        else:
            cert_status = ocsp.OCSPCertStatus.GOOD
        b = ocsp.OCSPResponseBuilder().add_response_by_hash(
            req.issuer_name_hash, req.issuer_key_hash, req.serial_number, algo, cert_status,
            _when(now), _when(next_update), revoked_at, reason)
        b = b.responder_id(ocsp.OCSPResponderEncoding.HASH, self.cert)
        return b.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _hash(algo, data: bytes) -> bytes:
    h = hashes.Hash(algo)
    h.update(data)
    return h.finalize()


def _spk_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING contents (what OCSP's issuerKeyHash hashes): for an EC
    key that is the uncompressed point."""
    return cert.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
