"""A name stops resolving at the block it expires at, even when its answers were cached the
block before (when the name index already dropped its coin and told the resolver): DNS and the
signed HTTP API alike. Found by the README walk: a light client refused the stale answer
("the TLSA data ... differs from what the proven names hold")."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import dns.message
import dns.query
import dns.rcode
import pytest

from support.resolver import started_resolver_node

NAME = b"d/fading"


def setup(node):
    node.fund(blocks=102)
    node.register({NAME: {"ip": "192.0.2.77"}})


node = pytest.fixture(scope="module")(lambda: (yield from started_resolver_node(setup)))


def dns_a(node) -> tuple[int, list[str]]:
    r = dns.query.udp(dns.message.make_query("fading.bit.", "A"), "127.0.0.1", port=node.dns_port, timeout=5)
    return r.rcode(), [rd.address for rrset in r.answer for rd in rrset]


def http_status(node) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/v1/domain/fading.bit?type=A",
                                    timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_an_expired_name_stops_resolving_at_its_expiry_height(node):
    rec = node.call("name_show", NAME.decode())
    expiry = node.call("getblockcount") + rec["expires_in"]
    node.mine(expiry - 1 - node.call("getblockcount"))
    assert node.call("getblockcount") == expiry - 1
    # The last block the name lives at: answers are built and cached now.
    for _ in range(2):
        assert dns_a(node) == (dns.rcode.NOERROR, ["192.0.2.77"])
        assert http_status(node) == 200
    node.mine(1)
    assert node.call("name_show", NAME.decode(), json.loads('{"allowExpired": true}'))["expired"]
    assert dns_a(node) == (dns.rcode.NXDOMAIN, [])
    assert http_status(node) == 404
