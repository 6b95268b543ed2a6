"""`dotbit-wallet ekey rotate|show` as real subprocesses against a real regtest node serving
DNS and the signed HTTP API: a name owner rotates the MinimaLT ephemeral key of a name its
wallet registered, and the DNS TXT answer and the signed envelope carry the new key."""
from __future__ import annotations

import base64
import json
import os
import time
import urllib.request

import dns.message
import dns.query
import nacl.public
import pytest

from core.crypto import decode_address, hash160
from core.ekey import EKeyUpdate
from core.params import REGTEST
from core.envelope import open_envelope
from support.harness import free_port, run_cli, running
from support.resolver import ResolverNode, new_datadir
from support.wallet_cli import EXPIRY, PASS, mature, mine, new_wallet, register_wait
from wallet import ekeys, storage
from wallet.nodeclient import NodeClient
from wallet.wallet import Wallet

ID_KEY = base64.b64encode(bytes([1] * 32)).decode()
CHAIN_EPH = base64.b64encode(bytes([2] * 32)).decode()
VALUE = json.dumps({"ip": "192.0.2.1", "minimalT": {"port": 7000, "id_key": ID_KEY, "eph_key": CHAIN_EPH}})


@pytest.fixture(scope="module")
def node():
    def setup(n):
        n.miner = n.call("getminingaddress")
    yield from running(ResolverNode(new_datadir()), setup)


@pytest.fixture(scope="module")
def resolver_key(node):
    out = run_cli("--network", "regtest", "--datadir", node.datadir, "dnssec-anchor", timeout=60)
    return base64.b64decode("".join(out.stdout.splitlines()[0].split()[7:]))


def dns_eph_key(node) -> str:
    q = dns.message.make_query("_minimalt._udp.example.bit.", "TXT")
    r = dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5)
    (txt,) = [rr for rrset in r.answer for rr in rrset]
    fields = dict(s.decode().split("=", 1) for s in txt.strings[1:])
    assert txt.strings[0] == b"v=minimalt1" and fields["id_key"] == ID_KEY and fields["port"] == "7000"
    return fields["eph_key"]


def http_minimalt(node, pubkey) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/v1/domain/example.bit?format=msgpack",
                                timeout=10) as r:
        body = open_envelope(r.read(), pubkey, now=time.time())
    (m,) = body["answer"]["minimalt"]
    return m


def test_owner_rotates_and_others_are_refused(node, resolver_key, tmp_path):
    a, _ = new_wallet(node, tmp_path, "a")
    b, _ = new_wallet(node, tmp_path, "b")
    mature(node)
    register_wait(a, "d/example", VALUE)
    for w in (a, b):
        w.env["DOTBIT_RESOLVER_URL"] = f"http://127.0.0.1:{node.http_port}"
    owner = a.json("name", "show", "d/example")["address"]

    # before any rotation: the on-chain key, and no secret for it in the wallet
    shown = a.json("ekey", "show", "d/example")
    assert shown["source"] == "chain" and shown["eph_key"] == CHAIN_EPH and shown["id_key"] == ID_KEY
    assert shown["secret_held"] is False and shown["mine"] is True
    assert dns_eph_key(node) == CHAIN_EPH

    # rotate: a fresh key is served over DNS and in the signed HTTP envelope
    r1 = a.json("ekey", "rotate", "d/example")
    assert r1["eph_key"] != CHAIN_EPH and r1["secret_held"] is True
    assert r1["expires"] - time.time() == pytest.approx(86400, abs=120)
    assert dns_eph_key(node) == r1["eph_key"]
    m = http_minimalt(node, resolver_key)
    assert base64.b64encode(m["eph_key"]).decode() == r1["eph_key"]
    u1 = EKeyUpdate.from_bytes(m["eph_update"])
    assert u1.seq == r1["seq"] and u1.name == b"d/example"
    assert hash160(u1.pubkey) == decode_address(REGTEST.address_version, owner)

    # the secret saved in the (encrypted) wallet file is the served key's
    doc, _ = storage.load(a.path, PASS)
    (entry,) = doc["ekeys"]["d/example"]
    assert entry["state"] == "published" and entry["seq"] == r1["seq"]
    secret = base64.b64decode(entry["secret"])
    assert bytes(nacl.public.PrivateKey(secret).public_key) == base64.b64decode(r1["eph_key"])
    # shown only on request
    text = a.run("ekey", "show", "d/example").stdout
    assert entry["secret"] not in text and "held by this wallet" in text and f"seq {r1['seq']}" in text
    shown = a.json("ekey", "show", "d/example", "--show-secret")
    assert shown["source"] == "update" and shown["secret_held"] and shown["eph_secret"] == entry["secret"]

    # a second rotation bumps seq and replaces the key everywhere
    r2 = a.json("ekey", "rotate", "d/example", "--ttl", "3600")
    assert r2["seq"] > r1["seq"] and r2["eph_key"] != r1["eph_key"]
    assert dns_eph_key(node) == r2["eph_key"]
    m = http_minimalt(node, resolver_key)
    assert base64.b64encode(m["eph_key"]).decode() == r2["eph_key"]
    assert EKeyUpdate.from_bytes(m["eph_update"]).seq == r2["seq"]
    assert r2["expires"] - time.time() == pytest.approx(3600, abs=120)

    # a key made elsewhere: published, but the wallet says it holds no secret for it
    outside = base64.b64encode(bytes(nacl.public.PrivateKey.generate().public_key)).decode()
    text = a.run("ekey", "rotate", "d/example", "--eph-key", outside).stdout
    assert text.startswith(f"d/example: eph_key {outside} seq ") and dns_eph_key(node) == outside
    shown = a.json("ekey", "show", "d/example")
    assert shown["seq"] > r2["seq"] and shown["eph_key"] == outside and shown["secret_held"] is False
    assert "not in this wallet" in a.run("ekey", "show", "d/example").stdout

    # the non-owner wallet is refused before anything is signed or sent
    b.fails("ekey", "rotate", "d/example", match=f"not your name: d/example belongs to {owner}")
    assert dns_eph_key(node) == outside
    shown = b.json("ekey", "show", "d/example")          # anyone may look
    assert shown["eph_key"] == outside and shown["mine"] is False and shown["secret_held"] is False

    # the node's refusal comes back with its reason; the signed key was kept all the same
    a.fails("ekey", "rotate", "d/example", "--seq", "1", match="the resolver refused the update: ekey-old-seq")
    doc, _ = storage.load(a.path, PASS)
    last = doc["ekeys"]["d/example"][-1]
    assert last["seq"] == 1 and last["state"].startswith("refused: ekey-old-seq") and last["secret"]
    assert dns_eph_key(node) == outside

    # other one-line errors
    a.fails("ekey", "rotate", "d/nobody", match="unknown name: d/nobody was never registered")
    a.fails("ekey", "rotate", "example", match="MinimaLT keys belong to d/ names")
    a.fails("ekey", "rotate", "d/example", "--ttl", str(31 * 86400), match="--ttl must be")
    a.fails("ekey", "rotate", "d/example", "--eph-key", "AAAA", match="32-byte Curve25519")
    dead = f"http://127.0.0.1:{free_port()}"
    before = len(storage.load(a.path, PASS)[0]["ekeys"]["d/example"])
    a.fails("ekey", "rotate", "d/example", "--resolver", dead, match=f"cannot reach the resolver at {dead}")
    assert len(storage.load(a.path, PASS)[0]["ekeys"]["d/example"]) == before   # nothing signed
    a.fails("ekey", "show", "d/example", "--resolver", dead, match="cannot reach the resolver")

    # old secrets are destroyed once their keys are long expired (forward secrecy); the newest
    # stays. In-process, with the clock three days on (the node still checks the update itself).
    w = Wallet.open(a.path, PASS, REGTEST, NodeClient(f"http://127.0.0.1:{node.rpc_port}",
                                                      os.path.join(node.datadir, ".cookie")))
    w.sync()
    later = int(time.time()) + 3 * 86400
    r4 = ekeys.rotate(w, "d/example", f"http://127.0.0.1:{node.http_port}", now=later)
    assert r4["seq"] == later and dns_eph_key(node) == r4["eph_key"]
    (entry,) = storage.load(a.path, PASS)[0]["ekeys"]["d/example"]
    assert entry["eph_key"] == r4["eph_key"] and entry["state"] == "published"

    # a name whose value lost its minimalT item: the update is still accepted, with a warning
    a.run("name", "update", "d/example", "--value", '{"ip":"192.0.2.1"}')
    mine(node)
    r = a.run("ekey", "rotate", "d/example")
    assert "warning: d/example has no minimalT item" in r.stderr and "eph_key" in r.stdout
    a.fails("ekey", "show", "d/example", match="d/example has no minimalT item at example.bit.")

    # once the name expires, its owner can no longer rotate
    mine(node, EXPIRY)
    a.fails("ekey", "rotate", "d/example", match="name expired: d/example")


def test_wallet_file_v2_gains_an_empty_ekey_table(tmp_path):
    v2 = {"version": 2, "network": "regtest", "seed": "11" * 64, "used": {"0": 1, "1": 0, "2": 0},
          "pending": {"d/x": {"state": "new"}}}
    path = str(tmp_path / "w.json")
    storage.save(path, v2, storage.Sealer("pw"))
    doc, _ = storage.load(path, "pw")
    assert doc["version"] == storage.VERSION and doc["ekeys"] == {} and doc["pending"] == v2["pending"]
