"""The CA record source end to end, on a real regtest node process with the resolver and a
CA made by `dotbit-node ca init`: issuance against proofs of control, TLSA answers over DNS
(signed) and HTTP, a real TLS server checked by `openssl s_client` with DANE, revocation on
transfer, owner request and expiry (seen in the CRL, the status endpoint and OCSP), the light
client checking CA records, and the wallet's `cert request` / `cert revoke`."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import types

import dns.dnssec
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from support.light_proxy import LyingProxy
from support.light import light_dir, resolve, resolver_key
from support.harness import run_cli
from support.resolver import OTHER, OWNER, ResolverNode, needs_tools
from core.crypto import decode_address
from core.params import REGTEST
from core.ca_evidence import spki_sha256
from core.ca_proof import sign_issue
from support.ca import (NAMES, PASSPHRASE, ca_cert, ca_node, crl, http, issue, log, make_csr, refused,
                        revoke, self_signed_ca, signed, tlsa_http)


@pytest.fixture(scope="module")
def node():
    yield from ca_node()


# --- helpers ---------------------------------------------------------------------------------------

def dns_query(node, qname: str, qtype: str):
    q = dns.message.make_query(qname, qtype, want_dnssec=True)
    return dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5)


def dnskey(node):
    return dns_query(node, "bit.", "DNSKEY").find_rrset(dns.message.ANSWER, dns.name.from_text("bit."),
                                                        dns.rdataclass.IN, dns.rdatatype.DNSKEY)


def validated(resp, section, keys) -> list:
    """Every RRset in `section` with a valid RRSIG by the resolver's DNSKEY."""
    out = []
    sets = [r for r in section if r.rdtype != dns.rdatatype.RRSIG]
    for rrset in sets:
        sig = next(r for r in section if r.rdtype == dns.rdatatype.RRSIG and r.name == rrset.name
                   and r[0].type_covered == rrset.rdtype)
        dns.dnssec.validate(rrset, sig, {dns.name.from_text("bit."): keys})
        out.append(rrset)
    return out


class TLSServer:
    """A real TLS server (python ssl) on a loopback port, in a thread, until closed."""

    def __init__(self, tmp, cert_pem: str, key):
        self.certfile, self.keyfile = os.path.join(tmp, "srv.pem"), os.path.join(tmp, "srv.key")
        with open(self.certfile, "w") as f:
            f.write(cert_pem)
        with open(self.keyfile, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.certfile, self.keyfile)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.done = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.done:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            try:
                conn.settimeout(5)
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello from example.bit\n")
            except (ssl.SSLError, OSError):
                pass
            finally:
                conn.close()

    def close(self):
        self.done = True
        self.thread.join(5)
        self.sock.close()


def s_client(port: int, rrdata: str) -> str:
    # -ign_eof: read until the server closes (its greeting comes after the TLS 1.3 handshake).
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "example.bit",
                        "-dane_tlsa_domain", "example.bit", "-dane_tlsa_rrdata", rrdata, "-verify_return_error",
                        "-ign_eof"], input="", capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


# --- the CA itself ---------------------------------------------------------------------------------

def test_ca_key_is_encrypted_private_and_name_constrained(node, tmp_path):
    directory = os.path.join(node.datadir, "ca")
    key_path = os.path.join(directory, "ca_key.pem")
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    with open(key_path, "rb") as f:
        pem = f.read()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    with pytest.raises(TypeError):                     # no passphrase: does not load
        serialization.load_pem_private_key(pem, None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(pem, b"wrong")
    key = serialization.load_pem_private_key(pem, PASSPHRASE.encode())
    cert = ca_cert(node)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    nc = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical and nc.value.permitted_subtrees == [x509.DNSName("bit")]
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    cert.verify_directly_issued_by(cert)               # self-signed
    # A second init refuses to overwrite. (A node without the passphrase, or with a wrong one,
    # runs without its CA: tests/functional/ops/test_ops_devrun.py.)
    r = run_cli("--network", "regtest", "--datadir", node.datadir, "ca", "init", "--ca-passphrase-file",
                os.path.join(node.datadir, "ca-pass"))
    assert r.returncode == 1 and "already exists" in r.stderr and "Traceback" not in r.stderr
    other = str(tmp_path / "other-node")
    shutil.copytree(directory, os.path.join(other, "ca"))
    env = {k: v for k, v in os.environ.items() if k != "DOTBIT_CA_PASSPHRASE"}
    r = subprocess.run([sys.executable, "-m", "node.cli", "--network", "regtest", "--datadir", other,
                        "--record-sources", "chain,x509"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "record sources" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    log("with --record-sources chain the CA is not opened: no passphrase needed, CA endpoints say so")
    plain = ResolverNode(other, "--record-sources", "chain", "--no-listen")
    plain.start()
    try:
        status, _, body = http(plain, "GET", "/v1/ca/cert")
        assert status == 503 and b"no-ca: the CA source is off here" in body
        assert http(plain, "GET", "/v1/resolver")[0] == 200
    finally:
        plain.stop()


# --- issuance ----------------------------------------------------------------------------------------

def test_issuance_refusals(node):
    _, csr = make_csr("example.bit")
    log("no valid owner proof: signature by another key under the owner's pubkey")
    refused(node, "d/example", csr, "bad-proof", 403, signer=OTHER, pubkey=OWNER.pubkey)
    log("a signature over a different CSR")
    _, other_csr = make_csr("example.bit")
    from cryptography.hazmat.primitives.serialization import Encoding
    block = bytes.fromhex(node.call("getbestblockhash"))
    sig = sign_issue(OWNER.secret, REGTEST.magic, "d/example",
                     x509.load_pem_x509_csr(other_csr.encode()).public_bytes(Encoding.DER), block)
    status, _, data = http(node, "POST", "/v1/ca/issue", json.dumps(
        {"name": "d/example", "csr": csr, "block_hash": block.hex(), "pubkey33": OWNER.pubkey.hex(),
         "sig64": sig.hex()}).encode())
    assert status == 403 and signed(node, data)["error"].startswith("bad-proof:")
    log("a requester that does not own the name (valid signature, wrong key)")
    refused(node, "d/example", csr, "not-owner", 403, signer=OTHER)
    refused(node, "d/theirs", make_csr("theirs.bit")[1], "not-owner", 403, signer=OWNER)
    log("an unregistered name, a name that is not a d/ DNS label")
    refused(node, "d/nobody", make_csr("nobody.bit")[1], "unknown-name", 404)
    refused(node, "id/example", csr, "bad-name", 400)
    log("a block hash that is not among the last 12 main-chain blocks")
    old = bytes.fromhex(node.call("getblockhash", node.call("getblockcount") - 12))
    refused(node, "d/example", csr, "stale-block", 400, block=old)
    refused(node, "d/example", csr, "stale-block", 400, block=bytes(32))
    log("a proof made for another network")
    refused(node, "d/example", csr, "bad-proof", 403, magic=bytes.fromhex("d07b1701"))
    log("SANs outside the name")
    for hosts in (("example.bit", "evil.bit"), ("example.bit", "example.bit.evil.com"), ("notexample.bit",),
                  ("www.example.bit", "*.bit")):
        refused(node, "d/example", make_csr(*hosts)[1], "san-outside-name", 400)
    log("malformed bodies: one signed 4xx each, never a crash")
    for body in (b"", b"[]", b'{"name": 1}', json.dumps({"name": "d/example", "csr": "junk", "block_hash": "00" * 32,
                                                          "pubkey33": "02" * 33, "sig64": "00" * 64}).encode(),
                 json.dumps({"name": "d/example", "csr": csr, "block_hash": "zz", "pubkey33": "", "sig64": ""}).encode()):
        status, _, data = http(node, "POST", "/v1/ca/issue", body)
        assert 400 <= status < 500 and signed(node, data)["kind"] == "error", (body, status)
    status, _, _ = http(node, "GET", "/v1/ca/issue")
    assert status == 405
    # Nothing above was issued.
    assert tlsa_http(node, "_443._tcp.example.bit")[0] == 404


def test_issued_leaf_names_and_validity_bound(node):
    key, csr = make_csr("example.bit", "www.example.bit", "*.example.bit")
    now = time.time()
    status, body = issue(node, "d/example", csr)
    assert status == 200 and body["kind"] == "ca-issue", body
    ans = body["answer"]
    leaf = x509.load_pem_x509_certificate(ans["cert"].encode())
    leaf.verify_directly_issued_by(ca_cert(node))
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["example.bit", "www.example.bit", "*.example.bit"]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    assert leaf.serial_number == int(ans["serial"], 16)
    rec = node.call("name_show", "d/example")
    bound = min(90 * 86400, rec["expires_in"] * REGTEST.spacing)
    life = leaf.not_valid_after_utc.timestamp() - now
    assert 0 < life <= bound + 5 and bound - life < 60, (life, bound)
    assert ans["tlsa"] == "3 1 1 " + spki_sha256(leaf).hex().upper()
    status, _, data = http(node, "GET", f"/v1/ca/status/{ans['serial']}")
    assert status == 200 and signed(node, data)["answer"]["status"] == "good"
    status, _, data = http(node, "GET", "/v1/ca/status/" + "00" * 16)
    assert signed(node, data)["answer"]["status"] == "unknown"
    # The TLSA answer covers subdomains in the SAN (wildcard too) and any port; not other hosts.
    for fqdn in ("_443._tcp.example.bit", "_25._tcp.www.example.bit", "_8443._tcp.mail.example.bit"):
        st, env = tlsa_http(node, fqdn)
        assert st == 200 and env["answer"]["source"] == "ca", (fqdn, env)
        assert [fqdn + ".", "TLSA", ans["tlsa"]] in env["answer"]["alt"][0]["records"]
    assert tlsa_http(node, "_443._tcp.a.b.example.bit")[0] == 404       # a wildcard covers one label
    revoke(node, "d/example", ans["serial"])           # keep the next tests' answers to one leaf


def test_owner_revokes_on_request(node):
    _, csr = make_csr("spare.bit")
    _, body = issue(node, "d/spare", csr)
    serial = body["answer"]["serial"]
    assert tlsa_http(node, "_443._tcp.spare.bit")[0] == 200
    status, env = revoke(node, "d/spare", serial, signer=OTHER)
    assert status == 403 and env["error"].startswith("not-owner:")
    status, env = revoke(node, "d/spare", serial)
    assert status == 200 and env["answer"]["status"] == "revoked"
    status, env = revoke(node, "d/spare", serial)
    assert status == 409 and env["error"].startswith("already-revoked:")
    assert crl(node).get_revoked_certificate_by_serial_number(int(serial, 16)) is not None
    assert tlsa_http(node, "_443._tcp.spare.bit")[0] == 404
    # OCSP says so too (a real RFC 6960 responder).
    leaf = x509.load_pem_x509_certificate(body["answer"]["cert"].encode())
    req = ocsp.OCSPRequestBuilder().add_certificate(leaf, ca_cert(node), hashes.SHA1()).build()
    st, ctype, data = http(node, "POST", "/v1/ca/ocsp", req.public_bytes(serialization.Encoding.DER),
                           "application/ocsp-request")
    resp = ocsp.load_der_ocsp_response(data)
    assert st == 200 and resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificate_status == ocsp.OCSPCertStatus.REVOKED and resp.serial_number == leaf.serial_number
    ca_cert(node).public_key().verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))


def test_the_names_own_tls_comes_first(node):
    _, body = issue(node, "d/own", make_csr("own.bit")[1])
    assert body["kind"] == "ca-issue"
    status, env = tlsa_http(node, "_443._tcp.own.bit")
    assert status == 200 and env["answer"]["source"] == "chain" and env["answer"]["alt"] == []
    assert [r[2] for r in env["answer"]["records"] if r[1] == "TLSA"] == ["3 1 1 " + bytes(range(32)).hex().upper()]
    status, env = tlsa_http(node, "_8443._tcp.own.bit")        # no own tls there: the CA answers
    assert status == 200 and env["answer"]["source"] == "ca"
    log("a delegated name: the CA may certify it, but the chain's zone cut wins in DNS and HTTP")
    _, body = issue(node, "d/deleg", make_csr("deleg.bit")[1])
    assert body["kind"] == "ca-issue"
    status, env = tlsa_http(node, "_443._tcp.deleg.bit")
    assert status == 200 and env["answer"]["source"] == "chain" and env["answer"]["alt"] == []
    resp = dns_query(node, "_443._tcp.deleg.bit.", "TLSA")
    assert not resp.answer and any(r.rdtype == dns.rdatatype.NS for r in resp.authority)


# --- TLS with DANE, and revocation on transfer --------------------------------------------------------

@needs_tools("openssl")
def test_dane_tls_server_accepted_then_refused_after_transfer(node, tmp_path):
    key, csr = make_csr("example.bit")
    status, body = issue(node, "d/example", csr)
    assert status == 200, body
    serial = int(body["answer"]["serial"], 16)
    server = TLSServer(str(tmp_path), body["answer"]["cert"], key)
    try:
        log("the TLSA data over HTTP (signed envelope) and DNS (RRSIG validated with the bit. DNSKEY)")
        _, env = tlsa_http(node, "_443._tcp.example.bit")
        alt = env["answer"]["alt"][0]
        assert env["answer"]["source"] == "ca" and alt["source"] == "ca" and len(alt["records"]) == 1
        rrdata = alt["records"][0][2]
        keys = dnskey(node)
        resp = dns_query(node, "_443._tcp.example.bit.", "TLSA")
        assert resp.rcode() == dns.rcode.NOERROR
        (tlsa,) = validated(resp, resp.answer, keys)
        assert [rd.to_text().upper() for rd in tlsa] == [rrdata.upper()]
        log("NODATA for another type there lists TLSA in a signed NSEC; _tcp is an empty non-terminal")
        resp = dns_query(node, "_443._tcp.example.bit.", "A")
        assert resp.rcode() == dns.rcode.NOERROR and not resp.answer
        nsec = [r for r in validated(resp, resp.authority, keys) if r.rdtype == dns.rdatatype.NSEC]
        assert "TLSA" in nsec[0][0].to_text().split()[1:], nsec
        status, _, data = http(node, "GET", "/v1/domain/_443._tcp.example.bit?type=A")     # HTTP agrees
        env = signed(node, data)
        assert status == 200 and env["answer"]["records"] == [] and env["answer"]["alt"] == []
        resp = dns_query(node, "_tcp.example.bit.", "A")
        assert resp.rcode() == dns.rcode.NOERROR and not resp.answer
        resp = dns_query(node, "x._443._tcp.example.bit.", "A")
        assert resp.rcode() == dns.rcode.NXDOMAIN
        validated(resp, resp.authority, keys)

        log("openssl s_client checks the server against the resolver's TLSA data")
        out = s_client(server.port, rrdata)
        assert "Verification: OK" in out and "Verified peername: example.bit" in out, out
        assert "hello from example.bit" in out

        log("the name is transferred: its leaf is revoked, the TLSA answer drops it")
        node.update(b"d/example", NAMES[b"d/example"], OWNER, to=OTHER)
        revoked = crl(node).get_revoked_certificate_by_serial_number(serial)
        assert revoked is not None
        assert revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason \
            == x509.ReasonFlags.affiliation_changed
        status, _, data = http(node, "GET", f"/v1/ca/status/{serial:032x}")
        assert signed(node, data)["answer"]["status"] == "revoked"
        assert tlsa_http(node, "_443._tcp.example.bit")[0] == 404
        assert dns_query(node, "_443._tcp.example.bit.", "TLSA").rcode() == dns.rcode.NXDOMAIN
        log("the new owner gets a leaf for a new key; the old server no longer verifies")
        _, csr2 = make_csr("example.bit")
        status, body2 = issue(node, "d/example", csr2, signer=OTHER)
        assert status == 200, body2
        _, env = tlsa_http(node, "_443._tcp.example.bit")
        rows = env["answer"]["alt"][0]["records"]
        assert [r[2] for r in rows] == [body2["answer"]["tlsa"]]
        out = s_client(server.port, rows[0][2])
        assert "Verification: OK" not in out and "hello from example.bit" not in out, out
        # ...and the old owner cannot get a new one.
        refused(node, "d/example", make_csr("example.bit")[1], "not-owner", 403)
        node.update(b"d/example", NAMES[b"d/example"], OTHER, to=OWNER)    # give it back for later tests
    finally:
        server.close()


# --- the light client ------------------------------------------------------------------------------

def test_light_client_checks_ca_records(node, tmp_path):
    _, body = issue(node, "d/example", make_csr("example.bit")[1])
    assert body["kind"] == "ca-issue", body
    pin = resolver_key(node).fingerprint
    url = f"http://127.0.0.1:{node.http_port}"
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca_cert(node).public_bytes(serialization.Encoding.PEM))
    d = light_dir()
    try:
        r = resolve("_443._tcp.example.bit", "TLSA", "--json", "--ca-cert", str(ca_file), url=url, pin=pin, light_dir=d)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["source"] == "ca" and out["source_trust"] == "ca-cert"
        assert out["tls"] == [["_443._tcp.example.bit.", body["answer"]["tlsa"]]]
        log("without --ca-cert the CA records are refused, never taken on the resolver's word")
        r = resolve("_443._tcp.example.bit", "TLSA", "--json", url=url, pin=pin, light_dir=d)
        assert r.returncode == 2 and "ca:" in r.stderr and "--ca-cert" in r.stderr, r.stderr
        log("a client that trusts another CA refuses the records")
        other = tmp_path / "other.pem"
        other.write_bytes(self_signed_ca()[1].public_bytes(serialization.Encoding.PEM))
        r = resolve("_443._tcp.example.bit", "TLSA", "--ca-cert", str(other), url=url, pin=pin, light_dir=d)
        assert r.returncode == 2 and "ca:" in r.stderr, (r.stdout, r.stderr)
        log("a resolver that lies (valid signature) about CA records or the chain's")
        with LyingProxy(url, resolver_key(node)) as proxy:
            forged = "3 1 1 " + "AB" * 32

            def swap_ca_record(body):
                body["answer"]["alt"][0]["records"][0][2] = forged
                return body
            proxy.lie = swap_ca_record
            r = resolve("_443._tcp.example.bit", "TLSA", "--ca-cert", str(ca_file), url=proxy.url, pin=pin,
                        light_dir=d)
            assert r.returncode == 2 and "ca:" in r.stderr and "not backed by a leaf" in r.stderr, r.stderr

            def ca_for_a_dead_name(body):        # CA records must be for a name the proofs show live
                body["proofs"] = [p for p in body["proofs"] if p["name"] != b"d/example"]
                return body
            proxy.lie = ca_for_a_dead_name
            r = resolve("_443._tcp.example.bit", "TLSA", url=proxy.url, pin=pin, light_dir=d)
            assert r.returncode == 2, r.stderr

            def source_on_a_type_it_cannot_answer(body):
                body["answer"]["source"] = "ca"
                body["answer"]["alt"] = [{"source": "ca", "secure": True, "evidence": {},
                                          "records": [["example.bit.", "A", "192.0.2.66"]]}]
                return body
            proxy.lie = source_on_a_type_it_cannot_answer
            r = resolve("example.bit", "A", url=proxy.url, pin=pin, light_dir=d)
            assert r.returncode == 2 and "records:" in r.stderr, r.stderr
        log("chain records are still checked as before")
        r = resolve("example.bit", "A", "--json", "--ca-cert", str(ca_file), url=url, pin=pin, light_dir=d)
        assert r.returncode == 0 and json.loads(r.stdout)["source"] == "chain"
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --- the wallet ------------------------------------------------------------------------------------

def test_wallet_cert_request_and_revoke(node, tmp_path):
    wallet = str(tmp_path / "w.json")
    env = dict(os.environ, DOTBIT_WALLET_PASSPHRASE="pw", DOTBIT_NETWORK="regtest",
               DOTBIT_RPC_URL=f"http://127.0.0.1:{node.rpc_port}", DOTBIT_RPC_COOKIE=os.path.join(node.datadir, ".cookie"),
               DOTBIT_RESOLVER_URL=f"http://127.0.0.1:{node.http_port}")

    def wallet_cli(*args):
        return subprocess.run([sys.executable, "-m", "wallet.cli", "--wallet", wallet, *args], capture_output=True,
                              text=True, env=env, timeout=120)

    assert wallet_cli("create").returncode == 0
    address = wallet_cli("address").stdout.strip()
    to = types.SimpleNamespace(address=decode_address(REGTEST.address_version, address))
    node.update(b"d/walletname", NAMES[b"d/walletname"], OWNER, to=to)
    key, csr = make_csr("walletname.bit", "www.walletname.bit")
    (tmp_path / "req.csr").write_text(csr)
    r = wallet_cli("cert", "request", "d/walletname", "--csr", str(tmp_path / "req.csr"), "--out",
                   str(tmp_path / "cert.pem"), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    leaf = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    leaf.verify_directly_issued_by(ca_cert(node))
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    assert res["serial"] == f"{leaf.serial_number:032x}"
    assert tlsa_http(node, "_443._tcp.www.walletname.bit")[0] == 200
    log("a name the wallet does not own: one line, exit 1")
    r = wallet_cli("cert", "request", "d/theirs", "--csr", str(tmp_path / "req.csr"), "--out", str(tmp_path / "x.pem"))
    assert r.returncode == 1 and r.stderr.startswith("dotbit-wallet: error: not your name") and \
        r.stderr.count("\n") == 1, r.stderr
    log("SAN outside the name, refused by the CA, reported on one line")
    (tmp_path / "bad.csr").write_text(make_csr("walletname.bit", "example.bit")[1])
    r = wallet_cli("cert", "request", "d/walletname", "--csr", str(tmp_path / "bad.csr"), "--out", str(tmp_path / "x.pem"))
    assert r.returncode == 1 and "san-outside-name" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = wallet_cli("cert", "revoke", "d/walletname", "--serial", res["serial"])
    assert r.returncode == 0, r.stderr
    assert crl(node).get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    assert tlsa_http(node, "_443._tcp.www.walletname.bit")[0] == 404
    log("the text output gives the certificate's end as a UTC date, not an epoch")
    r = wallet_cli("cert", "request", "d/walletname", "--csr", str(tmp_path / "req.csr"), "--out",
                   str(tmp_path / "cert2.pem"))
    assert r.returncode == 0 and re.search(r" until 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC ", r.stdout), r.stdout


def test_restart_keeps_certificates_and_crl(node):
    _, before = tlsa_http(node, "_443._tcp.example.bit")
    revoked = {r.serial_number for r in crl(node)}
    assert before["answer"]["source"] == "ca" and revoked
    node.stop()
    node.start()
    _, after = tlsa_http(node, "_443._tcp.example.bit")
    assert after["answer"]["alt"][0]["records"] == before["answer"]["alt"][0]["records"]
    assert {r.serial_number for r in crl(node)} == revoked


# --- expiry (last: it lets every name of this module expire) ---------------------------------------

def test_expiry_revokes_and_refuses(node):
    _, body = issue(node, "d/spare", make_csr("spare.bit")[1])
    serial = int(body["answer"]["serial"], 16)
    rec = node.call("name_show", "d/spare")
    node.mine(rec["expires_in"])
    assert node.call("name_show", "d/spare", {"allowExpired": True})["expired"]
    revoked = crl(node).get_revoked_certificate_by_serial_number(serial)
    assert revoked is not None
    assert revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason \
        == x509.ReasonFlags.cessation_of_operation
    refused(node, "d/spare", make_csr("spare.bit")[1], "name-expired", 403)
    assert tlsa_http(node, "_443._tcp.spare.bit")[0] == 404
