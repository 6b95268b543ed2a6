"""A name without TLS rows of its own whose TLSA comes from the node's .bit CA (a leaf issued
on the owner's proof of control): dotbit-connect accepts the server presenting that leaf only
with --ca-cert naming the CA (the light client checks the CA's evidence), and refuses it
without, since then the TLSA rows are the resolver's word."""
from __future__ import annotations

import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from support import tls_server as T
from support.connect import connect, refused
from support.ca import ca_cert, init_ca, issue, make_csr
from support.harness import free_port, running
from support.light import light_dir, resolver_key
from support.resolver import ResolverNode, new_datadir


@pytest.fixture(scope="module")
def canode():
    datadir = new_datadir()
    passfile = init_ca(datadir)

    def setup(n):
        n.fund(blocks=112)
        n.register({b"d/caissued": {"ip": ["127.0.0.1"]}})
    yield from running(ResolverNode(datadir, "--ca-passphrase-file", passfile), setup)


@pytest.fixture(scope="module")
def served(canode):
    """(port, CA PEM file) of an HTTPS server presenting the CA's leaf for caissued.bit."""
    key, csr = make_csr("caissued.bit")
    status, body = issue(canode, "d/caissued", csr)
    assert status == 200, body
    leaf = x509.load_pem_x509_certificate(body["answer"]["cert"].encode())
    ca = ca_cert(canode)
    ca_file = os.path.join(canode.datadir, "ca-cert.pem")
    with open(ca_file, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    port = free_port()
    with T.HTTPSServer(port, key, leaf, ca, label="ca-leaf"):
        yield port, ca_file


def _run(canode, *args):
    return connect(*args, resolver=f"http://127.0.0.1:{canode.http_port}", pin=resolver_key(canode).fingerprint,
                   ldir=light_dir())


def test_ca_tlsa_is_used_with_ca_cert(canode, served):
    port, ca_file = served
    r = _run(canode, "--ca-cert", ca_file, f"https://caissued.bit:{port}/")
    err = r.stderr.decode()
    assert r.returncode == 0 and r.stdout.startswith(b"hello from ca-leaf for caissued.bit"), err
    assert "ca source" in err and "DANE-EE" in err, err


def test_ca_tlsa_is_refused_without_ca_cert(canode, served):
    port, _ = served
    refused(_run(canode, f"https://caissued.bit:{port}/"), "resolve", "TLSA")
