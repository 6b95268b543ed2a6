"""A lying resolver (a real proxy that alters answers and re-signs them with the resolver's
own key) is caught for each lie, by a one-line error naming the failed check and exit 2; a
wrong pin is refused; and the local DNS stub answers dig with verified data, SERVFAIL once
the resolver lies."""
from __future__ import annotations

import time
import urllib.request

import msgpack
import pytest

from support.light import caught, light_dir, resolve, running_stub
from support.resolver import OTHER, OWNER, tool_query
from core.names.proof import EMPTY
from core.names.rules import NameRecord, tree_key
from core.names.tree import NameTree
from node.resolver.ekeys import make_update
from core.envelope import open_envelope


@pytest.fixture
def proxy(module_proxy):
    """Every test starts with an honest proxy, whatever lie the previous test left set."""
    module_proxy.lie = None
    return module_proxy


@pytest.fixture(scope="module")
def ldir():
    return light_dir()


@pytest.fixture
def cli(proxy, key, ldir):
    def run(*args, pin=key.fingerprint):
        return resolve(*args, url=proxy.url, pin=pin, light_dir=ldir)
    proxy.lie = None
    yield run
    proxy.lie = None


def honest(node, key, path: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{node.http_port}{path}",
                                 headers={"Accept": "application/msgpack"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return open_envelope(r.read(), key.public_key)


def test_honest_through_the_proxy(cli):
    r = cli("light.bit")
    assert r.returncode == 0 and "198.51.100.7" in r.stdout, r.stderr


def test_changed_value(cli, proxy):
    def lie(body):
        body["answer"]["records"] = [["light.bit.", "A", "203.0.113.66"]]
        return body
    proxy.lie = lie
    caught(cli("light.bit"), "records")


def test_changed_record_inside_the_proof(cli, proxy):
    def lie(body):
        p = body["proofs"][0]
        rec = NameRecord.from_obj(msgpack.unpackb(p["record"]))
        p["record"] = NameRecord(rec.name, b'{"ip":["203.0.113.66"]}', rec.address, rec.height,
                                 rec.txid, rec.vout).to_bytes()
        return body
    proxy.lie = lie
    caught(cli("light.bit"), "proof")


def test_fake_absence(cli, proxy):
    def lie(body):
        body.update(kind="error", answer=None, error="not-found: the domain does not exist")
        return body
    proxy.lie = lie
    caught(cli("light.bit"), "fake-absence")

    def lie_proof(body):
        lie(body)
        body["proofs"] = [dict(p, record=None) for p in body["proofs"]]
        return body
    proxy.lie = lie_proof
    caught(cli("light.bit"), "proof")


def test_wrong_header(cli, proxy, node):
    """A forged name tree holding a forged record: the proofs match its root, but no header
    of our chain commits to that root."""
    def lie(body):
        rec = NameRecord(b"d/light", b'{"ip":["203.0.113.66"]}', OWNER.address, body["tip"]["height"],
                         bytes(32), 0)
        nodes: dict = {}
        tree = NameTree(nodes.get)
        root, new = tree.update(EMPTY, {tree_key(rec.name): rec.leaf_hash})
        nodes.update(new)
        body["tip"]["name_root"] = root
        body["proofs"] = [{"name": rec.name, "record": rec.to_bytes(),
                           "proof": tree.prove(root, tree_key(rec.name)).to_bytes()}]
        body["answer"]["records"] = [["light.bit.", "A", "203.0.113.66"]]
        return body
    proxy.lie = lie
    caught(cli("light.bit"), "wrong-header")

    def lie_hash(body):
        body["tip"]["hash"] = bytes.fromhex(node.call("getblockhash", body["tip"]["height"] - 1))
        return body
    proxy.lie = lie_hash
    caught(cli("light.bit"), "wrong-header")


def test_question_and_signature(cli, proxy, key):
    def other_question(body):
        body["question"]["name"] = "example.bit."
        return body
    proxy.lie = other_question
    caught(cli("light.bit"), "question")
    proxy.sign = lambda m: bytes(64)
    try:
        proxy.lie = lambda body: body
        caught(cli("light.bit"), "signature")
    finally:
        proxy.sign = key.sign


def test_forged_ephemeral_key(cli, proxy):
    attacker = bytes([66] * 32)

    def signed_by_other(body):
        m = body["answer"]["minimalt"][0]
        m["eph_key"] = attacker
        m["eph_update"] = make_update(b"d/light", attacker, 99, int(time.time()) + 600,
                                      OTHER.secret, OTHER.pubkey).to_bytes()
        return body
    proxy.lie = signed_by_other
    caught(cli("light.bit", "minimalt"), "ekey")

    def unsigned(body):
        body["answer"]["minimalt"][0]["eph_key"] = attacker
        return body
    proxy.lie = unsigned
    caught(cli("light.bit", "minimalt"), "ekey")


def test_wrong_pin(cli):
    r = cli("light.bit", pin="ab" * 32)
    caught(r, "pin")


def test_hidden_update_and_old_tip(cli, proxy, node, key):
    """The resolver keeps serving d/stale as it was before an update: with the current tip
    its proof fails; with the old tip, once more than 6 blocks passed, the tip is too old."""
    old = honest(node, key, "/v1/domain/stale.bit.?type=A")
    assert old["answer"]["records"] == [["stale.bit.", "A", "198.51.100.1"]]
    node.update(b"d/stale", {"ip": ["198.51.100.2"]})
    r = cli("stale.bit")
    assert r.returncode == 0 and "198.51.100.2" in r.stdout, r.stderr

    def stale_proof(body):
        return dict(old, tip=body["tip"], served=body["served"], valid_until=body["valid_until"])
    proxy.lie = stale_proof
    caught(cli("stale.bit"), "proof")

    def old_tip(body):
        return dict(old, served=body["served"], valid_until=body["valid_until"])
    proxy.lie = old_tip
    assert cli("stale.bit").returncode == 0          # 1 block behind: within the bound
    node.mine(7)
    caught(cli("stale.bit"), "stale-tip")
    r = cli("stale.bit", "--max-behind", "10")
    assert r.returncode == 0 and "198.51.100.1" in r.stdout   # a looser bound lets it through


def test_stub_answers_dig_and_servfails_on_lies(proxy, key, ldir):
    with running_stub(proxy.url, key.fingerprint, ldir) as (port, proc):
        out = tool_query("dig", port, "light.bit", "A")
        assert "status: NOERROR" in out and "198.51.100.7" in out, out
        out = tool_query("kdig", port, "light.bit", "AAAA", "+tcp")
        assert "NOERROR" in out and "2001:db8::7" in out
        assert "status: NXDOMAIN" in tool_query("dig", port, "nobody-registered-this.bit", "A")
        assert "status: REFUSED" in tool_query("dig", port, "example.com", "A")
        txt = tool_query("dig", port, "light.bit", "TXT")
        assert "light client" in txt

        def lie(body):
            body["answer"]["records"] = [[r[0], r[1], "203.0.113.66"] for r in body["answer"]["records"]]
            return body
        proxy.lie = lie
        out = tool_query("dig", port, "www.light.bit", "A")
        assert "status: SERVFAIL" in out and "203.0.113.66" not in out
        assert "198.51.100.7" in tool_query("dig", port, "light.bit", "A")   # cached, verified earlier
        proxy.lie = None
    assert proc.returncode == 0
    assert "SERVFAIL www.light.bit. A: records:" in proc.stderr.read()
