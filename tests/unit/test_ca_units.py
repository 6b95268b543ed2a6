"""The record-source policy and the CA's parts in-process: source order, the order flag's
parsing, certificate records in both stores, CA keys surviving reindex/checkdb, the
authority's CRL and OCSP answers, SAN rules and TLSA owner parsing."""
from __future__ import annotations

import base64
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from support.chain import Key, mine
from support.resolver import needs_tools
from node.chain import layout as L
from node.ops.maintenance import checkdb
from core.names.dvalue import Record
from node.resolver.ca.authority import CAError, init_ca, load_ca
from core.ca_evidence import EvidenceError, check_crl, check_leaf, tlsa_owner, tlsa_rdata
from core.ca_proof import fqdn_of, issue_digest, revoke_digest
from core.params import MAIN, REGTEST
from node.resolver.ca.service import CAService, _hosts
from node.resolver.ca.store import CertRecord, CertStore
from core.sources import Policy, SourceAnswer, parse_order

FQDN = "_443._tcp.example.bit."


class Fixed:
    """A record source with fixed TLSA records (how DANE or the CA look to the policy)."""

    def __init__(self, name: str, rdata: str | None):
        self.name = name
        self.rdata = rdata
        self.asked = 0

    def lookup(self, fqdn: str, qtype: str) -> SourceAnswer | None:
        self.asked += 1
        if self.rdata is None or qtype != "TLSA":
            return None
        return SourceAnswer(self.name, (Record(fqdn, "TLSA", self.rdata),), self.name != "dane", ("d/example",))


def test_policy_order_first_with_records_wins():
    chain, ca, dane = Fixed("chain", None), Fixed("ca", "3 1 1 AA"), Fixed("dane", "3 1 1 BB")
    p = Policy([chain, ca, dane])
    assert p.lookup(FQDN, "TLSA").source == "ca" and dane.asked == 0
    assert p.alternative(FQDN, "TLSA").records == (Record(FQDN, "TLSA", "3 1 1 AA"),)
    assert p.lookup(FQDN, "A") is None                          # only TLSA is the policy's
    chain.rdata = "3 1 1 CC"
    assert p.lookup(FQDN, "TLSA").source == "chain" and p.alternative(FQDN, "TLSA") is None
    p = Policy([chain, ca, dane], parse_order("dane,ca"))        # the chain not consulted at all
    assert p.lookup(FQDN, "TLSA").source == "dane" and not p.lookup(FQDN, "TLSA").secure
    assert Policy([chain], ("chain", "ca")).lookup(FQDN, "TLSA").source == "chain"   # absent source skipped
    # alternative() asks the chain only when another source has something.
    chain, ca = Fixed("chain", "3 1 1 CC"), Fixed("ca", None)
    assert Policy([chain, ca]).alternative(FQDN, "TLSA") is None and chain.asked == 0
    ca.rdata = "3 1 1 AA"
    assert Policy([chain, ca]).alternative(FQDN, "TLSA") is None and chain.asked == 1
    chain.rdata = None
    assert Policy([chain, ca]).alternative(FQDN, "TLSA").source == "ca"


@pytest.mark.parametrize("text,ok", [("chain,ca,dane", True), ("ca", True), (" dane , chain ", True),
                                     ("", False), ("chain,chain", False), ("chain,x509", False)])
def test_parse_order(text, ok):
    if ok:
        assert set(parse_order(text)) <= {"chain", "ca", "dane"}
    else:
        with pytest.raises(ValueError):
            parse_order(text)


def test_cert_records_round_trip_and_persist(db):
    rec = CertRecord(bytes(range(16)), b"d/example", b"\x30\x03der", 100, 200, bytes(20))
    assert CertRecord.from_bytes(rec.to_bytes()) == rec
    store = CertStore(db)
    store.add(rec)
    (done,) = store.revoke([rec], 150, "transferred")
    assert done.revoked and done.reason == "transferred"
    again = CertStore(db)
    assert again.get(rec.serial) == done and again.of_name(b"d/example") == [done]
    assert again.revoked(150) == [done] and again.revoked(200) == []      # expired: off the CRL
    with pytest.raises(Exception):
        CertRecord.from_bytes(rec.to_bytes()[:-3])
    # Expired leaves are not held in memory (loaded or forgotten), but stay readable by serial.
    assert CertStore(db, now=200).of_name(b"d/example") == [] and CertStore(db, now=200).get(rec.serial) == done
    assert again.forget_expired(b"d/example", 200) == [rec.serial] and again.of_name(b"d/example") == []


def test_crl_prunes_expired_serials_and_revoking_does_not_resign_it(db, tmp_path):
    """A revocation writes its record only (the cost of one, whatever came before); the next
    CRL fetch re-makes the CRL with it, numbers keep rising across a restart, and a serial
    leaves the CRL once its certificate has expired."""
    now = [1_800_000_000.0]
    authority = init_ca(str(tmp_path), "pw", "regtest", now[0])

    def service():
        return CAService(authority, db, lambda name: None, lambda: 0, lambda n: [], REGTEST, clock=lambda: now[0])
    ca = service()
    short = CertRecord(bytes([1] * 16), b"d/a", b"der", int(now[0]), int(now[0]) + 3600, bytes(20))
    long = CertRecord(bytes([2] * 16), b"d/a", b"der", int(now[0]), int(now[0]) + 86400 * 30, bytes(20))
    for r in (short, long):
        ca.store.add(r)
    first = x509.load_der_x509_crl(ca.crl())
    assert len(first) == 0
    ca.name_changed("expire", b"d/a", None, 5)
    assert ca.store.crl()[0] == first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    crl = x509.load_der_x509_crl(ca.crl())
    assert {r.serial_number for r in crl} == {int.from_bytes(r.serial, "big") for r in (short, long)}
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    now[0] += 7200                                  # `short` has expired; a restart
    crl = x509.load_der_x509_crl(service().crl())
    assert [r.serial_number for r in crl] == [int.from_bytes(long.serial, "big")]
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == number + 1


def test_ca_keys_survive_reindex_and_checkdb(chain, mempool, clock):
    """They are not projections: reindex keeps them and checkdb does not count them."""
    mine(chain, mempool, Key.from_seed(1).address, 3, clock)
    rec = CertRecord(bytes(16), b"d/x", b"der", 1, 2, bytes(20))
    store = CertStore(chain.db)
    store.add(rec)
    store.put_crl(1, b"crl")
    tip = chain.tip.hash
    chain.reindex()
    assert chain.tip.hash == tip and checkdb(chain) == []
    again = CertStore(chain.db)
    assert again.get(rec.serial) == rec and again.crl() == (1, b"crl")
    assert chain.db.get(L.ca_name_key(b"d/x", rec.serial)) == b""


def _csr(*hosts, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
    if hosts:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
    return b.sign(key, hashes.SHA256())


def test_authority_issue_crl_ocsp(tmp_path):
    now = time.time()
    ca = init_ca(str(tmp_path / "ca"), "pw", "regtest", now)
    with pytest.raises(CAError) as e:
        load_ca(str(tmp_path / "ca"), "nope")
    assert e.value.reason == "bad-passphrase"
    with pytest.raises(CAError):
        init_ca(str(tmp_path / "ca"), "pw", "regtest", now)
    ca = load_ca(str(tmp_path / "ca"), "pw")
    owner = bytes([7] * 20)
    leaf = ca.issue(_csr("example.bit"), ["example.bit", "www.example.bit"], bytes([1] * 16), now, now + 3600, owner)
    der = leaf.public_bytes(serialization.Encoding.DER)
    assert check_leaf(der, ca.cert, "www.example.bit.", now) == tlsa_rdata(leaf)
    assert check_leaf(der, ca.cert, "www.example.bit.", now, owner) == tlsa_rdata(leaf)
    with pytest.raises(EvidenceError):       # the name changed hands since: the leaf is not the owner's
        check_leaf(der, ca.cert, "www.example.bit.", now, bytes([8] * 20))
    for host, when in (("other.bit", now), ("example.bit", now + 7200)):
        with pytest.raises(EvidenceError):
            check_leaf(leaf.public_bytes(serialization.Encoding.DER), ca.cert, host, when)
    crl_der = ca.crl([(bytes([1] * 16), now, "expired")], 7, now, now + 60)
    revoked = check_crl(crl_der, ca.cert, now)
    assert revoked == {leaf.serial_number}
    with pytest.raises(EvidenceError, match="revoked"):
        check_leaf(der, ca.cert, "www.example.bit.", now, owner, revoked)
    with pytest.raises(EvidenceError, match="not current"):      # past nextUpdate: a replay
        check_crl(crl_der, ca.cert, now + 61)
    stranger = init_ca(str(tmp_path / "other"), "pw", "regtest", now)
    with pytest.raises(EvidenceError, match="not signed"):
        check_crl(crl_der, stranger.cert, now)
    crl = x509.load_der_x509_crl(crl_der)
    assert crl.is_signature_valid(ca.cert.public_key())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None

    def ask(cert, issuer):
        req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
        return ocsp.load_der_ocsp_response(ca.ocsp(req.public_bytes(serialization.Encoding.DER),
                                                   lambda s: ("good", 0, "") if s == bytes([1] * 16) else None,
                                                   now, now + 60))
    assert ask(leaf, ca.cert).certificate_status == ocsp.OCSPCertStatus.GOOD
    other = ca.issue(_csr("example.bit"), ["example.bit"], bytes([2] * 16), now, now + 60, owner)
    assert ask(other, ca.cert).certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    assert ask(leaf, leaf).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED      # not our issuer
    bad = ocsp.load_der_ocsp_response(ca.ocsp(b"junk", lambda s: None, now, now + 60))
    assert bad.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.mark.parametrize("sans,ok", [
    ((), ["example.bit"]), (("example.bit",), ["example.bit"]),
    (("www.example.bit", "EXAMPLE.BIT."), ["example.bit", "www.example.bit"]),
    (("*.example.bit", "a.b.example.bit"), ["example.bit", "*.example.bit", "a.b.example.bit"]),
    (("evil.bit",), "san-outside-name"), (("xexample.bit",), "san-outside-name"),
    (("example.bit.com",), "san-outside-name"), (("*.bit",), "san-outside-name"),
    (("a.*.example.bit",), "bad-san"), (("bad_label!.example.bit",), "bad-san"),
    (("a..example.bit",), "bad-san"), (("-a.example.bit",), "bad-san"),
    (("x" * 64 + ".example.bit",), "bad-san"),
    # DNS's 253-character limit, with every label valid: 4 x 63 + 61 + dots = 329 characters
    ((".".join(["a" * 63] * 4) + "." + "b" * 61 + ".example.bit",), "bad-san"),
    ((".".join(["a" * 63] * 3) + "." + "a" * 49 + ".example.bit",), None)])
def test_san_rules(sans, ok):
    csr = _csr(*sans)
    if isinstance(ok, str):
        with pytest.raises(CAError) as e:
            _hosts(csr, "example.bit")
        assert e.value.reason == ok
    elif ok is None:
        assert len(_hosts(csr, "example.bit")[1]) == 253
    else:
        assert _hosts(csr, "example.bit") == ok


def test_names_and_owners():
    assert tlsa_owner("_443._tcp.www.example.bit.") == (443, "www.example.bit.")
    assert tlsa_owner("_0._tcp.example.bit.") is None and tlsa_owner("_0443._tcp.x.bit.") is None
    assert tlsa_owner("_443._udp.example.bit.") is None and tlsa_owner("_70000._tcp.x.bit.") is None
    assert fqdn_of("d/example") == "example.bit" and fqdn_of("d/Example") is None and fqdn_of("id/x") is None
    assert fqdn_of("d/") is None and fqdn_of("d/a.b") is None
    # Distinct tags: an issue proof can never be a revoke proof for the same bytes.
    m = REGTEST.magic
    assert issue_digest(m, "d/a", bytes(16), bytes(32)) != revoke_digest(m, "d/a", bytes(16), bytes(32))
    # The name and the network are bound: no proof for one name or network serves another,
    # and the length prefix keeps "d/a" + data from reading as "d/ab" + the rest.
    base = issue_digest(m, "d/a", bytes(16), bytes(32))
    assert base != issue_digest(m, "d/b", bytes(16), bytes(32))
    assert base != issue_digest(MAIN.magic, "d/a", bytes(16), bytes(32))
    assert issue_digest(m, "d/a", b"b" + bytes(15), bytes(32)) != issue_digest(m, "d/ab", bytes(15), bytes(32))


@needs_tools("openssl")
def test_key_file_is_standard_pkcs8_with_a_strong_kdf(tmp_path):
    init_ca(str(tmp_path / "ca"), "s3cret", "regtest", time.time())
    path = tmp_path / "ca" / "ca_key.pem"
    pem = path.read_bytes()
    der = base64.b64decode(b"".join(pem.splitlines()[1:-1]))
    assert bytes.fromhex("02030927c0") in der                  # PBKDF2 iterationCount 600000
    key = serialization.load_pem_private_key(pem, b"s3cret")
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(pem, b"s3cre")
    r = subprocess.run(["openssl", "pkey", "-in", str(path), "-passin", "pass:s3cret", "-pubout"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    r = subprocess.run(["openssl", "pkey", "-in", str(path), "-passin", "pass:wrong", "-noout"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
