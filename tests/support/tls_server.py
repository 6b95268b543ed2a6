"""Real X.509 certificates and a real HTTPS server for the connect tests: self-signed leaves
(what a DANE-EE owner runs), a CA with a leaf it issued (DANE-TA), the TLSA digests of each,
and http.server behind ssl on a loopback port in a thread of the test process."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import shutil
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PEM = serialization.Encoding.PEM


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: str, issuer: x509.Name, key, days: float = 30) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))


def self_signed(*hosts: str):
    """(key, cert) of a self-signed leaf naming `hosts`: a DANE-EE server's certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(hosts[0], _name(hosts[0]), key)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def ca():
    """(key, cert) of a CA that DANE-TA rows can name."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder("dotbit test CA", _name("dotbit test CA"), key, days=365)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def issued(ca_key, ca_cert, *hosts: str):
    """(key, cert) of a leaf for `hosts` that the CA signed, in the shape path validation wants."""
    key = ec.generate_private_key(ec.SECP256R1())
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    cert = (_builder(hosts[0], ca_cert.subject, key)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
            .add_extension(aki, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def spki_sha256(cert) -> str:
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def cert_sha256(cert) -> str:
    return base64.b64encode(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()).decode()


def tls_value(port: int, *rows: list, ip: str = "127.0.0.1") -> dict:
    """A d/ value: the address, and TLSA rows at _PORT._tcp."""
    return {"ip": [ip], "map": {"_tcp": {"map": {f"_{port}": {"tls": [list(r) for r in rows]}}}}}


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.seen.append(self.headers.get("Host"))
        body = f"hello from {self.server.label} for {self.headers.get('Host')} {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class HTTPSServer:
    """http.server on 127.0.0.1:port presenting `key` and `chain` (leaf first), in a thread."""

    def __init__(self, port: int, key, *chain, label: str = "server"):
        self.dir = tempfile.mkdtemp(prefix="dotbit-tls-")
        certfile, keyfile = os.path.join(self.dir, "chain.pem"), os.path.join(self.dir, "key.pem")
        with open(certfile, "wb") as f:
            f.write(b"".join(c.public_bytes(PEM) for c in chain))
        with open(keyfile, "wb") as f:
            f.write(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _Hello)
        self.httpd.label = label
        self.httpd.seen = []          # Host headers of the requests that reached us
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def seen(self) -> list:
        return self.httpd.seen

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
        shutil.rmtree(self.dir, ignore_errors=True)
