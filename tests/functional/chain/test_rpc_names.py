"""Name RPCs against a real node process: the regtest lifecycle seen through name_show,
name_history, name_scan, name_pending, getnameproof (verified with only the proof module and
the header), Namecoin's error codes, and bad encodings (-1000). The replays of Namecoin Core's
name_* functional tests are in test_namecoin_compat.py."""
from __future__ import annotations

import pytest

from support.chain import Key
from support.name_txs import Funds, firstupdate, name_new, update
from core.primitives import Header
from core.names.proof import verify_proof
from core.names.rules import NameRecord, tree_key
from wallet.nodeclient import NodeError
from core.params import REGTEST

ALICE, BOB = Key.from_seed(41), Key.from_seed(42)
NAME = "d/rpc-example"


def rpc_funds(node, key) -> Funds:
    utxos = node.call("getaddressutxos", key.addr_text())
    return Funds(key, [(bytes.fromhex(u["txid"]), u["outputIndex"], u["value_sat"])
                       for u in utxos if u["covenant"]["type"] == "none" and u["height"] <= node.call("getblockcount") - 100][:30])


def send(node, tx) -> str:
    return node.call("sendrawtransaction", tx.to_bytes().hex())


def error_of(fn, *a):
    with pytest.raises(NodeError) as e:
        fn(*a)
    return e.value


def test_name_lifecycle_over_rpc(node):
    node.call("generatetoaddress", 30, ALICE.addr_text())
    node.call("generatetoaddress", 30, BOB.addr_text())
    node.call("generatetoaddress", 140, Key.from_seed(43).addr_text())   # height 200
    alice, bob = rpc_funds(node, ALICE), rpc_funds(node, BOB)
    name = NAME.encode()

    e = error_of(node.call, "name_show", NAME)
    assert e.code == -4 and "never existed" in e.message

    new = name_new(alice, name, b"\x07" * 20)
    send(node, new)
    assert node.call("name_pending") == []       # as Namecoin: a name_new shows no name
    node.call("generatetoaddress", 1, ALICE.addr_text())          # name_new at 201
    first = firstupdate(alice, new, name, b"\x07" * 20, b'{"ip":"10.0.0.1"}', REGTEST, 213)
    e = error_of(send, node, first)                                # block 202 may not hold it
    assert e.code == -26 and "tx-firstupdate-immature" in e.message
    node.call("generatetoaddress", 11, ALICE.addr_text())          # 212: the next block may
    assert error_of(node.call, "name_show", NAME).code == -4
    send(node, first)
    assert node.call("name_pending", NAME)[0]["op"] == "name_firstupdate"
    node.call("generatetoaddress", 1, ALICE.addr_text())          # 213
    rec = node.call("name_show", NAME)
    assert rec["height"] == 213 and rec["expires_in"] == 30 and rec["expired"] is False
    assert rec["value"] == '{"ip":"10.0.0.1"}' and rec["address"] == ALICE.addr_text()
    assert rec["txid"] == first.txid.hex() and rec["vout"] == 0
    assert node.call("name_pending") == []

    # a second name_new with the same commitment is refused while the first is pending
    dup = name_new(bob, b"d/other", b"\x08" * 20)
    send(node, dup)
    dup2 = name_new(bob, b"d/other", b"\x08" * 20)
    e = error_of(send, node, dup2)
    assert "namenew-duplicate" in e.message

    # update and transfer, seen in history in order
    upd = update(alice, first, 0, name, b'{"ip":"10.0.0.2"}', ALICE, to=BOB)
    send(node, upd)
    node.call("generatetoaddress", 1, ALICE.addr_text())
    rec = node.call("name_show", NAME)
    assert rec["address"] == BOB.addr_text() and rec["value"] == '{"ip":"10.0.0.2"}'
    hist = node.call("name_history", NAME)
    assert [h["value"] for h in hist] == ['{"ip":"10.0.0.1"}', '{"ip":"10.0.0.2"}']
    assert [h["height"] for h in hist] == [213, 214]

    # encodings
    hexed = node.call("name_show", name.hex(), {"nameEncoding": "hex", "valueEncoding": "hex"})
    assert hexed["name"] == name.hex() and bytes.fromhex(hexed["value"]) == b'{"ip":"10.0.0.2"}'
    assert error_of(node.call, "name_show", "zz", {"nameEncoding": "hex"}).code == -1000
    assert error_of(node.call, "name_show", "d/\u00e9", {"nameEncoding": "ascii"}).code == -1000
    # an unknown encoding name falls back to the default, as in Namecoin (which only logs it)
    assert node.call("name_show", NAME, {"nameEncoding": "base64"})["name_encoding"] == "ascii"

    # scan: length-first order, prefix and regexp filters
    scan = node.call("name_scan", "", 10)
    assert [s["name"] for s in scan] == [NAME]
    assert node.call("name_scan", "", 10, {"prefix": "x/"}) == []
    assert node.call("name_scan", "", 10, {"regexp": "rpc-ex"})[0]["name"] == NAME
    assert error_of(node.call, "name_scan", "", 10, {"regexp": "("}).code == -8

    # proof against the header: a light client needs only the header and the proof module
    p = node.call("getnameproof", NAME)
    header = Header.from_bytes(bytes.fromhex(p["header"]))
    assert header.hash.hex() == p["blockhash"] == node.call("getbestblockhash")
    record = NameRecord.from_obj(__import__("msgpack").unpackb(bytes.fromhex(p["record"]), raw=False))
    assert verify_proof(header.name_root, tree_key(name), bytes.fromhex(p["proof"])) == record.leaf_hash
    absent = node.call("getnameproof", "d/nothing-here")
    assert absent["record"] is None
    assert verify_proof(header.name_root, tree_key(b"d/nothing-here"), bytes.fromhex(absent["proof"])) is None
    # an older block's proof shows the older record
    old = node.call("getnameproof", NAME, node.call("getblockhash", 213))
    old_rec = NameRecord.from_obj(__import__("msgpack").unpackb(bytes.fromhex(old["record"]), raw=False))
    assert old_rec.value == b'{"ip":"10.0.0.1"}'
    old_header = Header.from_bytes(bytes.fromhex(old["header"]))
    assert verify_proof(old_header.name_root, tree_key(name), bytes.fromhex(old["proof"])) == old_rec.leaf_hash

    # expiry: 30 blocks after the update (height 214) the name is expired
    node.call("generatetoaddress", 214 + 30 - node.call("getblockcount") - 1, ALICE.addr_text())
    rec = node.call("name_show", NAME)
    assert rec["expires_in"] == 1 and rec["expired"] is False
    node.call("generatetoaddress", 1, ALICE.addr_text())
    e = error_of(node.call, "name_show", NAME)
    assert e.code == -4 and "expired" in e.message
    rec = node.call("name_show", NAME, {"allowExpired": True})
    assert rec["expired"] is True and rec["expires_in"] == 0
    assert [(s["name"], s["expired"]) for s in node.call("name_scan", "", 10)] == [(NAME, True)]
    assert node.call("name_checkdb") is True


def test_bad_name_transactions_get_reasons(node):
    if node.call("getblockcount") < 200:
        node.call("generatetoaddress", 30, ALICE.addr_text())
        node.call("generatetoaddress", 170, Key.from_seed(43).addr_text())
    bob = rpc_funds(node, BOB)
    # oversize name and value are refused with their reasons, the node stays up
    new = name_new(bob, b"d/x", b"\x09" * 20)
    send(node, new)
    node.call("generatetoaddress", 12, BOB.addr_text())
    long_value = firstupdate(bob, new, b"d/x", b"\x09" * 20, b"x" * 1024, REGTEST, node.call("getblockcount") + 1)
    e = error_of(send, node, long_value)     # the decoder's item bound catches it first
    assert e.code == -22 and "longer than 1023" in e.message
    long_name = name_new(rpc_funds(node, BOB), b"d/" + b"n" * 300, b"\x09" * 20)
    send(node, long_name)                    # a commitment does not reveal the length...
    node.call("generatetoaddress", 12, BOB.addr_text())
    too_long = firstupdate(rpc_funds(node, BOB), long_name, b"d/" + b"n" * 300, b"\x09" * 20, b"{}",
                           REGTEST, node.call("getblockcount") + 1)
    assert "tx-name-too-long" in error_of(send, node, too_long).message   # ...the reveal does
    wrong_rand = firstupdate(rpc_funds(node, BOB), new, b"d/x", b"\x0a" * 20, b"{}", REGTEST,
                             node.call("getblockcount") + 1)
    assert "tx-firstupdate-commitment-mismatch" in error_of(send, node, wrong_rand).message
    assert "tx-firstupdate-bad-rand" in error_of(
        send, node, firstupdate(rpc_funds(node, BOB), new, b"d/x", b"\x09" * 19, b"{}", REGTEST,
                                node.call("getblockcount") + 1)).message
    assert node.call("getblockcount") > 0
