"""CA test helpers shared by the resolver's CA tests and the light client's lie suite: a CA
made by `dotbit-node ca init` in a node's data dir, CSRs, issuance over the node's HTTP API
with a real proof of control, the CA certificate as served, and leaves signed with a CA's
own key the way the node never would (expired ones, say) for lies to carry."""
from __future__ import annotations

import datetime as dt
import http.client as httplib
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support.chain import Key
from support.harness import run_cli, running
from support.light import resolver_key
from support.resolver import OTHER, OWNER, TLS_DIGEST_B64, ResolverNode, new_datadir
from core.ca_evidence import owner_extension
from core.ca_proof import sign_issue, sign_revoke
from core.envelope import open_envelope
from core.params import REGTEST

PASSPHRASE = "ca test passphrase"
NAMES = {
    b"d/example": {"ip": ["192.0.2.1"], "map": {"www": {"ip": ["192.0.2.3"]}}},
    b"d/own": {"ip": ["192.0.2.10"], "map": {"_tcp": {"map": {"_443": {"tls": [[3, 1, 1, TLS_DIGEST_B64]]}}}}},
    b"d/spare": {"ip": ["192.0.2.11"]},
    b"d/walletname": {"ip": ["192.0.2.12"]},
    b"d/deleg": {"ns": ["ns.elsewhere.net."]},
    b"d/theirs": {"ip": ["192.0.2.20"]},
}


def init_ca(datadir: str) -> str:
    """`dotbit-node ca init` in datadir; the passphrase file the node then starts with."""
    passfile = os.path.join(datadir, "ca-pass")
    with open(passfile, "w") as f:
        f.write(PASSPHRASE + "\n")
    r = run_cli("--network", "regtest", "--datadir", datadir, "ca", "init", "--ca-passphrase-file", passfile)
    assert r.returncode == 0, r.stderr
    return passfile


def log(msg: str) -> None:
    print(f"-- {msg}", file=sys.stderr)


def ca_node():
    """The CA test node for a module-scoped fixture (`yield from ca_node()`): a CA, funded
    owners and NAMES registered (d/theirs to OTHER)."""
    datadir = new_datadir()
    passfile = init_ca(datadir)

    def setup(n):
        n.fund(blocks=112)
        n.register({k: v for k, v in NAMES.items() if k != b"d/theirs"})
        n.register({b"d/theirs": NAMES[b"d/theirs"]}, owner=OTHER)
    yield from running(ResolverNode(datadir, "--ca-passphrase-file", passfile), setup)


def make_csr(*hosts: str, key=None) -> tuple[object, str]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "x")]))
    if hosts:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
    return key, b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def http(node, method: str, path: str, body: bytes | None = None, ctype: str = "application/json"):
    conn = httplib.HTTPConnection("127.0.0.1", node.http_port, timeout=30)
    try:
        conn.request(method, path, body, {"Content-Type": ctype} if body is not None else {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


def signed(node, data: bytes) -> dict:
    return open_envelope(data, resolver_key(node).public_key)


def issue(node, name: str, csr_pem: str, signer: Key = OWNER, pubkey: bytes | None = None,
          block: bytes | None = None, proof_for: str | None = None, magic: bytes = REGTEST.magic) -> tuple[int, dict]:
    """POSTs an issue request for `name` with a proof signed over `proof_for` (default: name)."""
    from cryptography.hazmat.primitives.serialization import Encoding
    block = block or bytes.fromhex(node.call("getbestblockhash"))
    der = x509.load_pem_x509_csr(csr_pem.encode()).public_bytes(Encoding.DER)
    sig = sign_issue(signer.secret, magic, proof_for or name, der, block)
    body = json.dumps({"name": name, "csr": csr_pem, "block_hash": block.hex(),
                       "pubkey33": (pubkey or signer.pubkey).hex(), "sig64": sig.hex()}).encode()
    status, _, data = http(node, "POST", "/v1/ca/issue", body)
    return status, signed(node, data)


def revoke(node, name: str, serial_hex: str, signer: Key = OWNER, proof_for: str | None = None) -> tuple[int, dict]:
    block = bytes.fromhex(node.call("getbestblockhash"))
    serial = bytes.fromhex(serial_hex)
    sig = sign_revoke(signer.secret, REGTEST.magic, proof_for or name, serial, block)
    status, _, data = http(node, "POST", "/v1/ca/revoke", json.dumps(
        {"name": name, "serial": serial_hex, "block_hash": block.hex(), "pubkey33": signer.pubkey.hex(),
         "sig64": sig.hex()}).encode())
    return status, signed(node, data)


def ca_cert(node) -> x509.Certificate:
    status, _, data = http(node, "GET", "/v1/ca/cert")
    assert status == 200
    return x509.load_pem_x509_certificate(data)


def self_signed_ca(common_name: str = "other") -> tuple[object, x509.Certificate]:
    """(key, certificate) of a CA nobody pinned."""
    k = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key())
         .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
         .sign(k, hashes.SHA256()))
    return k, c


def forged_leaf(ca_key, ca_cert_: x509.Certificate, host: str, owner: bytes, *, days_from: float = -1,
                days_to: float = 30) -> bytes:
    """DER of a leaf for `host` bound to `owner`, signed with `ca_key` and valid from/to the
    given days around now (negative `days_to`: already expired)."""
    now = dt.datetime.now(dt.timezone.utc)
    k = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_cert_.subject).public_key(k.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + dt.timedelta(days=days_from)).not_valid_after(now + dt.timedelta(days=days_to))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(owner_extension(owner), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def refused(node, name, csr_pem, reason: str, status: int, **kw) -> None:
    got, body = issue(node, name, csr_pem, **kw)
    assert (got, body["kind"]) == (status, "error") and body["error"].startswith(reason + ":"), (got, body)


def tlsa_http(node, fqdn: str) -> tuple[int, dict]:
    status, _, data = http(node, "GET", f"/v1/domain/{fqdn}?type=TLSA")
    return status, signed(node, data)


def crl(node) -> x509.CertificateRevocationList:
    status, ctype, data = http(node, "GET", "/v1/ca/crl")
    assert status == 200 and ctype == "application/pkix-crl"
    c = x509.load_der_x509_crl(data)
    assert c.is_signature_valid(ca_cert(node).public_key())
    assert c.next_update_utc > dt.datetime.now(dt.timezone.utc)
    return c
