"""The signed HTTP API on a real node: envelopes verify with only the resolver's public key
(taken from the printed trust anchor), any changed byte breaks them, proofs check against the
header chain the API serves, and MinimaLT ephemeral-key updates are checked, served over
HTTP and DNS, and survive a restart."""
from __future__ import annotations

import base64
import hashlib
import json
import random
import time
import urllib.error
import urllib.request

import dns.message
import dns.query
import pytest

from support.harness import run_cli
from support.resolver import EPH_KEY, ID_KEY, OTHER, OWNER
from core.crypto import sha256d
from core.names.proof import verify_proof
from core.names.rules import record_hash, tree_key
from node.resolver.ekeys import make_update
from core.envelope import EnvelopeError, open_envelope


@pytest.fixture(scope="module")
def pubkey(node):
    out = run_cli("--network", "regtest", "--datadir", node.datadir, "dnssec-anchor", timeout=60)
    return base64.b64decode("".join(out.stdout.splitlines()[0].split()[7:]))


def get(node, path, fmt="json", data=None, ctype="application/msgpack"):
    url = f"http://127.0.0.1:{node.http_port}{path}"
    req = urllib.request.Request(url, data=data, headers={"Accept": f"application/{fmt}", "Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def check_proofs(body):
    root = body["tip"]["name_root"]
    for p in body["proofs"]:
        got = verify_proof(root, tree_key(p["name"]), p["proof"])
        assert got == (record_hash(p["record"]) if p["record"] is not None else None)


def test_resolver_info_and_headers(node, pubkey):
    import os
    assert os.stat(os.path.join(node.datadir, "resolver_key")).st_mode & 0o777 == 0o600
    for fmt in ("json", "msgpack"):
        status, data = get(node, "/v1/resolver", fmt)
        assert status == 200 and data[:1] == (b"{" if fmt == "json" else b"\x93")
        body = open_envelope(data, pubkey, now=time.time())
        ans = body["answer"]
        assert ans["public_key"] == pubkey and ans["fingerprint"] == hashlib.sha256(pubkey).hexdigest()
        assert ans["network"] == "regtest" and body["tip"]["height"] == node.call("getblockcount")
    # a light client checks the tip against headers it links itself
    status, data = get(node, f"/v1/headers?from=0&count={body['tip']['height'] + 1}", "msgpack")
    headers = open_envelope(data, pubkey)["answer"]["headers"]
    assert len(headers) == body["tip"]["height"] + 1
    for prev, h in zip(headers, headers[1:]):
        assert h[4:36] == sha256d(prev)
    assert sha256d(headers[-1]) == body["tip"]["hash"] and headers[-1][68:100] == body["tip"]["name_root"]
    assert get(node, "/v1/headers?from=0&count=0")[0] == 400


def test_name_with_proof_and_signed_absence(node, pubkey):
    status, data = get(node, "/v1/name/d/example")
    body = open_envelope(data, pubkey)
    assert status == 200 and body["answer"]["name"] == b"d/example" and not body["answer"]["expired"]
    assert body["proofs"][0]["record"] is not None
    check_proofs(body)
    status, data = get(node, "/v1/name/d/nobody-has-this", "msgpack")
    body = open_envelope(data, pubkey)
    assert status == 404 and body["kind"] == "error" and body["error"].startswith("not-found")
    assert body["proofs"][0]["record"] is None
    check_proofs(body)                                   # a proven absence


def test_domain_answer(node, pubkey):
    status, data = get(node, "/v1/domain/www.example.bit?type=A")
    body = open_envelope(data, pubkey)
    assert status == 200 and body["answer"]["records"] == [["www.example.bit.", "A", "192.0.2.3"]]
    assert body["question"] == {"name": "www.example.bit.", "type": "A"}
    assert [p["name"] for p in body["proofs"]] == [b"d/example"]
    check_proofs(body)
    body = open_envelope(get(node, "/v1/domain/example.bit", "msgpack")[1], pubkey)
    assert body["answer"]["tls"] and body["answer"]["tls"][0][0] == "_443._tcp.example.bit."
    (mlt,) = body["answer"]["minimalt"]
    assert mlt["port"] == 7000 and mlt["eph_key"] == base64.b64decode(EPH_KEY)
    (shown,) = json.loads(get(node, "/v1/domain/example.bit")[1])["view"]["answer"]["minimalt"]
    assert shown["eph_key"] == EPH_KEY and shown["id_key"] == ID_KEY      # base64, as in the d/ value
    status, data = get(node, "/v1/domain/nothing-here.bit")
    body = open_envelope(data, pubkey)
    assert status == 404 and body["proofs"][0]["record"] is None
    check_proofs(body)
    assert get(node, "/v1/domain/example.com")[0] == 400
    status, data = get(node, "/v1/domain/example.bit?type=BOGUS")          # a typo is not "no records"
    assert status == 400 and open_envelope(data, pubkey)["error"].startswith("bad-type: unknown record type BOGUS")


def test_ca_endpoints_without_a_ca_say_how_to_start_one(node, pubkey):
    status, data = get(node, "/v1/ca/cert")
    error = open_envelope(data, pubkey)["error"]
    assert status == 503 and error.startswith("no-ca: ") and "dotbit-node ca init" in error


def test_any_changed_byte_breaks_the_envelope(node, pubkey):
    rng = random.Random(5)
    for fmt in ("json", "msgpack"):
        _, data = get(node, "/v1/domain/www.example.bit?type=A", fmt)
        open_envelope(data, pubkey)
        for i in range(len(data)):
            bad = bytearray(data)
            bad[i] = (bad[i] + rng.randrange(1, 256)) % 256
            with pytest.raises(EnvelopeError):
                open_envelope(bytes(bad), pubkey)
        with pytest.raises(EnvelopeError):
            open_envelope(data, bytes(32))                    # another key
        with pytest.raises(EnvelopeError):
            open_envelope(data[:-1], pubkey)
        with pytest.raises(EnvelopeError):
            open_envelope(data, pubkey, now=time.time() + 3600)   # past valid_until


def minimalt_txt(node):
    q = dns.message.make_query("_minimalt._udp.example.bit.", "TXT")
    r = dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5)
    return b"".join(r.answer[0][0].strings).decode()


def test_ephemeral_keys(node, pubkey):
    name = b"d/example"
    now = int(time.time())
    eph1, eph2 = bytes([7] * 32), bytes([8] * 32)

    def post(update):
        status, data = get(node, "/v1/ekey", "json", update.to_bytes())
        return status, open_envelope(data, pubkey)

    status, body = post(make_update(name, eph1, 5, now + 3600, OWNER.secret, OWNER.pubkey))
    assert status == 200 and body["answer"]["accepted"], body
    assert "eph_key=" + base64.b64encode(eph1).decode() in minimalt_txt(node)
    dom = open_envelope(get(node, "/v1/domain/example.bit")[1], pubkey)["answer"]["minimalt"][0]
    assert dom["eph_key"] == eph1 and dom["eph_update"]

    refusals = {
        "ekey-wrong-signer": make_update(name, eph2, 6, now + 3600, OTHER.secret, OTHER.pubkey),
        "ekey-old-seq": make_update(name, eph2, 5, now + 3600, OWNER.secret, OWNER.pubkey),
        "ekey-expired": make_update(name, eph2, 7, now - 1, OWNER.secret, OWNER.pubkey),
        "ekey-no-name": make_update(b"d/unregistered", eph2, 1, now + 3600, OWNER.secret, OWNER.pubkey),
    }
    forged = make_update(name, eph2, 8, now + 3600, OWNER.secret, OWNER.pubkey)
    refusals["ekey-bad-signature"] = type(forged)(name, eph1, 8, forged.expires, forged.pubkey, forged.sig)
    for reason, update in refusals.items():
        status, body = post(update)
        assert status == 400 and body["error"].startswith(reason + ":"), (reason, body)
    status, data = get(node, "/v1/ekey", "json", b"\xc1garbage")
    assert status == 400 and open_envelope(data, pubkey)["error"].startswith("ekey-malformed")
    assert "eph_key=" + base64.b64encode(eph1).decode() in minimalt_txt(node)

    status, body = post(make_update(name, eph2, 6, now + 3600, OWNER.secret, OWNER.pubkey))
    assert status == 200
    assert "eph_key=" + base64.b64encode(eph2).decode() in minimalt_txt(node)
    node.stop()                                           # the latest key survives a restart
    node.start()
    assert "eph_key=" + base64.b64encode(eph2).decode() in minimalt_txt(node)
    status, body = post(make_update(name, eph1, 6, now + 3600, OWNER.secret, OWNER.pubkey))
    assert status == 400 and body["error"].startswith("ekey-old-seq")


def raw_http(node, data: bytes) -> bytes:
    import socket
    with socket.create_connection(("127.0.0.1", node.http_port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                c = s.recv(65536)
            except socket.timeout:
                break
            if not c:
                break
            chunks.append(c)
        return b"".join(chunks)


def test_http_edge_cases(node, pubkey):
    two = raw_http(node, b"GET /v1/resolver HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/name/d/example?format=msgpack HTTP/1.1\r\n"
                         b"Connection: close\r\n\r\n")
    assert two.count(b"HTTP/1.1 200 OK") == 2 and b"Connection: close" in two          # pipelined
    assert raw_http(node, b"GET /v1/resolver HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200")  # 1.0 closes
    assert raw_http(node, b"BLAH\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw_http(node, b"GET /v1/resolver HTTP/1.1\r\nbad header\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw_http(node, b"POST /v1/ekey HTTP/1.1\r\nContent-Length: 99999\r\n\r\n").startswith(b"HTTP/1.1 413")
    assert raw_http(node, b"POST /v1/ekey HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").startswith(b"HTTP/1.1 501")
    assert raw_http(node, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 431")
    bad = raw_http(node, b"GET //[ HTTP/1.1\r\nConnection: close\r\n\r\n")    # urllib cannot split it
    assert bad.startswith(b"HTTP/1.1 400")
    assert open_envelope(bad.split(b"\r\n\r\n", 1)[1], pubkey)["error"].startswith("bad-target")
    status, data = get(node, "/v1/nothing")
    assert status == 404 and open_envelope(data, pubkey)["kind"] == "error"
    status, data = get(node, "/v1/ekey")
    assert status == 405 and open_envelope(data, pubkey)["error"].startswith("bad-method")
    status, data = get(node, "/v1/name/d%2Fexample")                                      # percent-encoded
    assert status == 200 and open_envelope(data, pubkey)["answer"]["name"] == b"d/example"


def test_http_odd_urls_get_signed_errors(node, pubkey):
    for path, status in [("/v1/domain/%ff%fe.bit", 400), ("/v1/%ff", 404), ("/v1/name/%ff", 404),
                         ("/v1/domain/example.bit?type=%ff", 400), ("/v1/domain/" + "a" * 300 + ".bit", 400),
                         ("/v1/headers?from=x", 400), ("/v1/headers?from=-1", 400), ("/v1/name/" + "a" * 300, 400),
                         ("/v1/domain/.bit", 400), ("/v1/domain/a..bit", 400), ("/v1/domain/x.nothing.bit", 404)]:
        got, data = get(node, path)
        assert got == status, (path, got, data[:200])
        assert open_envelope(data, pubkey)["kind"] == "error"
