"""The CA's owner proofs and limits on a real regtest node with a CA: a proof serves only the
name (and network and purpose) it was signed for, SANs must be DNS names, and a name's live
leaves are limited (docs/operator.md "The CA")."""
from __future__ import annotations

import json

import pytest

from support.ca import ca_node, crl, http, issue, log, make_csr, refused, revoke, signed


@pytest.fixture(scope="module")
def node():
    yield from ca_node()


def test_a_sans_length_is_checked_as_dns_does(node):
    log("a SAN of 329 characters (DNS allows 253), every label valid")
    long = ".".join(["a" * 63] * 4) + "." + "b" * 61 + ".example.bit"
    assert len(long) == 329
    status, body = issue(node, "d/example", make_csr("example.bit", long)[1])
    assert status == 400 and body["error"].startswith("bad-san: a SAN of 329 characters is not a DNS name"), body


def test_a_proof_for_one_name_serves_no_other(node):
    """The owner of d/example and d/spare shows a proof for d/example (a CSR without SANs,
    so nothing in it names the name): it gets nothing for d/spare, issued or revoked."""
    _, csr = make_csr()
    refused(node, "d/spare", csr, "bad-proof", 403, proof_for="d/example")
    status, body = issue(node, "d/example", csr)
    assert status == 200, body
    serial = body["answer"]["serial"]
    status, body = revoke(node, "d/example", serial, proof_for="d/spare")
    assert status == 403 and body["error"].startswith("bad-proof:"), body
    status, body = revoke(node, "d/example", serial)
    assert status == 200, body


def test_live_leaves_per_name_are_limited(node):
    """The 9th live leaf of a name is refused (nothing revoked behind the owner's back); a
    revocation makes room; the limit is per name."""
    serials = []
    for _ in range(8):
        status, body = issue(node, "d/spare", make_csr("spare.bit")[1])
        assert status == 200, body
        serials.append(body["answer"]["serial"])
    status, body = issue(node, "d/spare", make_csr("spare.bit")[1])
    assert status == 409 and body["error"].startswith("too-many-leaves: d/spare already has 8 live"), body
    for s in serials:
        st, _, data = http(node, "GET", f"/v1/ca/status/{s}")
        assert signed(node, data)["answer"]["status"] == "good"
    assert revoke(node, "d/spare", serials.pop())[0] == 200
    status, body = issue(node, "d/spare", make_csr("spare.bit")[1])
    assert status == 200, body
    serials.append(body["answer"]["serial"])
    for s in serials:
        assert revoke(node, "d/spare", s)[0] == 200
    assert {int(s, 16) for s in serials} <= {r.serial_number for r in crl(node)}


def test_a_name_that_is_not_text_is_a_bad_request(node):
    """JSON lets a name be a lone surrogate, which no encoding takes: a signed 400, not a crash."""
    status, body = issue(node, "d/example", make_csr("example.bit")[1])
    assert status == 200, body
    serial = body["answer"]["serial"]
    for path, fields in (("/v1/ca/revoke", {"serial": serial}), ("/v1/ca/issue", {"csr": make_csr()[1]})):
        raw = json.dumps({"name": "d/\ud800", "block_hash": "00" * 32, "pubkey33": "02" * 33, "sig64": "00" * 64,
                          **fields}).encode()
        status, _, data = http(node, "POST", path, raw)
        assert status == 400 and signed(node, data)["error"].startswith("bad-request:"), (path, status)
    assert revoke(node, "d/example", serial)[0] == 200


def test_issue_and_revoke_churn_is_bounded(node):
    """Revoked leaves count until they expire (they are on the CRL until then): the 65th
    unexpired leaf of a fresh name is refused, so churn cannot grow the CRL without bound."""
    for i in range(64):
        status, body = issue(node, "d/deleg", make_csr("deleg.bit")[1])
        assert status == 200, (i, body)
        assert revoke(node, "d/deleg", body["answer"]["serial"])[0] == 200
    status, body = issue(node, "d/deleg", make_csr("deleg.bit")[1])
    assert status == 409 and body["error"].startswith("too-many-leaves: d/deleg has had 64 certificates"), body
    assert len([r for r in crl(node)]) >= 64
