"""Connect-area fixtures: certificates, two real HTTPS servers on loopback (a self-signed
DANE-EE one and a CA-issued DANE-TA one), and a real node whose names carry TLSA rows for
them (plus a name without, one with a wrong key and one whose key is later rotated)."""
from __future__ import annotations

import pytest

from support import tls_server as T
from support.harness import free_port
from support.light import light_dir, resolver_key
from support.light_proxy import LyingProxy
from support.resolver import started_resolver_node


class World:
    def __init__(self):
        self.ee_port, self.ta_port = free_port(), free_port()
        self.ee_key, self.ee_cert = T.self_signed("ee311.bit", "ee301.bit", "wrong.bit", "rotated.bit")
        self.ca_key, self.ca_cert = T.ca()
        self.ta_key, self.ta_cert = T.issued(self.ca_key, self.ca_cert, "ta201.bit")
        _, self.other_cert = T.self_signed("mallory.bit")
        ee, ta = self.ee_port, self.ta_port
        self.names = {
            b"d/ee311": T.tls_value(ee, [3, 1, 1, T.spki_sha256(self.ee_cert)]),
            b"d/ee301": T.tls_value(ee, [3, 0, 1, T.cert_sha256(self.ee_cert)]),
            b"d/ta201": T.tls_value(ta, [2, 0, 1, T.cert_sha256(self.ca_cert)]),
            # The CA is right but its leaf names ta201.bit only: RFC 7671 §5.2's name check
            b"d/tahost": T.tls_value(ta, [2, 0, 1, T.cert_sha256(self.ca_cert)]),
            b"d/wrong": T.tls_value(ee, [3, 1, 1, T.spki_sha256(self.other_cert)]),
            b"d/pkix": T.tls_value(ee, [1, 1, 1, T.spki_sha256(self.ee_cert)]),
            b"d/notlsa": {"ip": ["127.0.0.1"]},
            b"d/rotated": T.tls_value(ee, [3, 1, 1, T.spki_sha256(self.ee_cert)]),
        }


@pytest.fixture(scope="module")
def world():
    return World()


@pytest.fixture(scope="module")
def node(world):
    def setup(n):
        n.fund(blocks=112)
        n.register(world.names)
    yield from started_resolver_node(setup)


@pytest.fixture(scope="module")
def servers(world):
    """{"ee": server, "ta": server}."""
    with T.HTTPSServer(world.ee_port, world.ee_key, world.ee_cert, label="ee") as ee, \
            T.HTTPSServer(world.ta_port, world.ta_key, world.ta_cert, world.ca_cert, label="ta") as ta:
        yield {"ee": ee, "ta": ta}


@pytest.fixture(scope="module")
def key(node):
    return resolver_key(node)


@pytest.fixture(scope="module")
def proxy(node, key):
    with LyingProxy(f"http://127.0.0.1:{node.http_port}", key) as p:
        yield p


@pytest.fixture(scope="module")
def ldir():
    return light_dir()
