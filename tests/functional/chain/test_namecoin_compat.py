"""Namecoin Core's name_scanning, name_pending and name_allowexpired functional tests, replayed
against a real dotbit node through python-bitcoinrpc, with regtest's numbers (a name_new is
mature 12 blocks deep, names expire 30 blocks after their last update). Where dotbit differs
(the node holds no wallet: no ismine, mineOnly refused) the test says so; docs/namecoin-compat.md
lists every difference. The name_encodings replay is test_namecoin_encodings.py."""
from __future__ import annotations

import pytest

from core.consensus import COIN
from core.params import REGTEST
from core.primitives import Header, TxOut
from node.mining.miner import solve_quick
from p2p import messages as M
from support.harness import NodeProcess
from support.name_txs import build
from support.namecoin_rpc import Names, assert_rpc_error
from support.p2p import RawPeer, wait_until


@pytest.fixture
def names(tmp_path):
    node = NodeProcess(str(tmp_path / "node")).start()
    try:
        n = Names(node)
        n.fund()
        yield n
    finally:
        node.stop()


def scanned(rows) -> list[str]:
    return [r["name"] for r in rows]


def test_name_scanning(names):
    rpc = names.rpc
    assert rpc.name_scan() == []
    assert rpc.name_scan("foo", 10) == []

    # d/a, d/aa, d/b at one height; "aa" against "b" checks length-first order
    names.register([(b"d/a", b"wrong value"), (b"d/aa", b"value aa"), (b"d/b", b"value b")])
    names.name_new(b"d/c")                       # matures while the first three age
    names.generate(15)
    names.firstupdate(b"d/c", b"value c")
    names.update(b"d/a", b"value a")
    names.generate(20)

    scan = rpc.name_scan()
    assert [(r["name"], r["value"]) for r in scan] == [
        ("d/a", "value a"), ("d/b", "value b"), ("d/c", "value c"), ("d/aa", "value aa")]
    assert all(r["name_encoding"] == r["value_encoding"] == "ascii" for r in scan)
    assert scanned(rpc.name_scan("", 0)) == []
    assert scanned(rpc.name_scan("", -1)) == []
    assert scanned(rpc.name_scan(None, 2)) == ["d/a", "d/b"]           # start: null is ""
    assert scanned(rpc.name_scan("d/b")) == ["d/b", "d/c", "d/aa"]
    assert scanned(rpc.name_scan("d/zz")) == []
    assert scanned(rpc.name_scan("", 2)) == ["d/a", "d/b"]
    assert scanned(rpc.name_scan("d/b", 1)) == ["d/b"]

    assert scanned(rpc.name_scan("642f63", 10, {"nameEncoding": "hex"})) == ["642f63", "642f6161"]

    # confirmations: d/b and d/aa have 35, d/a and d/c 20
    assert scanned(rpc.name_scan("", 100, {"minConf": 35})) == ["d/b", "d/aa"]
    assert scanned(rpc.name_scan("", 100, {"minConf": 36})) == []
    assert scanned(rpc.name_scan("", 100, {"maxConf": 19})) == []
    assert scanned(rpc.name_scan("", 100, {"maxConf": 20})) == ["d/a", "d/c"]
    assert scanned(rpc.name_scan("", 1, {"maxConf": 20})) == ["d/a"]
    assert scanned(rpc.name_scan("", 2, {"maxConf": 20})) == ["d/a", "d/c"]

    assert_rpc_error(-8, "minConf must be >= 1", rpc.name_scan, "", 100, {"minConf": 0})
    assert_rpc_error(-8, "minConf must be >= 1", rpc.name_scan, "", 100, {"minConf": -42})
    rpc.name_scan("", 100, {"minConf": 1})
    assert_rpc_error(-8, "maxConf must not be negative", rpc.name_scan, "", 100, {"maxConf": -1})
    rpc.name_scan("", 100, {"maxConf": 0})
    assert_rpc_error(-3, "not of expected type number", rpc.name_scan, "", 100, {"minConf": "1"})

    assert scanned(rpc.name_scan("", 100, {"prefix": ""})) == ["d/a", "d/b", "d/c", "d/aa"]
    assert scanned(rpc.name_scan("", 100, {"prefix": "d/a"})) == ["d/a", "d/aa"]
    assert scanned(rpc.name_scan("", 100, {"prefix": "642f61", "nameEncoding": "hex"})) == ["642f61", "642f6161"]
    assert_rpc_error(-1000, "Name/value is invalid for encoding ascii", rpc.name_scan, "", 100, {"prefix": "äöü"})

    assert scanned(rpc.name_scan("", 100, {"regexp": "[ac]"})) == ["d/a", "d/c", "d/aa"]
    assert scanned(rpc.name_scan("", 100, {"prefix": "d/a", "maxConf": 20})) == ["d/a"]

    # Upstream's last step: a name that is not UTF-8 must not break the regexp filter.
    names.register([(b"d/\xff", b"x")])
    names.generate(1)
    assert scanned(rpc.name_scan("", 100, {"regexp": "[ac]"})) == ["d/a", "d/c", "d/aa"]
    rows = rpc.name_scan("", 100)             # length first: d/\xff sorts after d/c, before d/aa
    assert [r.get("name", r.get("name_error")) for r in rows] == [
        "d/a", "d/b", "d/c", "invalid data for ascii", "d/aa"]
    assert rpc.name_scan("642f", 100, {"nameEncoding": "hex"})[3]["name"] == "642fff"


def test_name_scan_lists_expired_names(names):
    """Namecoin lists expired names (expired: true); one with expires_in 1 is still live."""
    rpc = names.rpc
    names.register([(b"d/old", b"v")])
    names.generate(1)
    names.generate(29)                           # tip = registration height + 29
    (row,) = rpc.name_scan()
    assert (row["expires_in"], row["expired"]) == (1, False)
    assert rpc.name_show("d/old")["expires_in"] == 1
    names.generate(1)
    (row,) = rpc.name_scan()
    assert (row["name"], row["expires_in"], row["expired"]) == ("d/old", 0, True)


def test_name_pending(names):
    rpc = names.rpc
    names.register([(b"a", b"old-value-a")])
    names.generate(10)
    names.name_new(b"b")
    names.generate(15)

    txa = names.update(b"a", b"value-a")
    txb = names.firstupdate(b"b", b"value-b")
    names.send(build(names.funds, [TxOut(COIN, names.key.address)]))     # a payment, not shown
    names.name_new(b"c")                         # nor is a name_new

    assert rpc.name_show("a")["value"] == "old-value-a"
    mempool = rpc.getrawmempool()
    assert len(mempool) == 4
    pending = rpc.name_pending()
    assert len(pending) == 2
    for op in pending:
        assert op["txid"] in mempool
        assert op["name_encoding"] == op["value_encoding"] == "ascii"
        assert (op["name"], op["op"], op["value"], op["txid"]) in (
            ("a", "name_update", "value-a", txa), ("b", "name_firstupdate", "value-b", txb))

    assert rpc.name_pending("does not exist") == []
    (obj,) = rpc.name_pending("a")
    assert (obj["op"], obj["name"], obj["value"], obj["txid"]) == ("name_update", "a", "value-a", txa)
    assert "nameOp" in rpc.getrawtransaction(txa, 1)["vout"][obj["vout"]]["scriptPubKey"]

    # No wallet in the node: mineOnly is refused as by a Namecoin built without one
    # (dotbit-wallet serve answers it); a non-boolean is a type error.
    assert_rpc_error(-32601, "mineOnly requires wallet support", rpc.name_pending, None, {"mineOnly": True})
    assert len(rpc.name_pending(None, {"mineOnly": False})) == 2
    assert_rpc_error(-3, "not of expected type bool", rpc.name_pending, None, {"mineOnly": 1})

    names.generate(1)
    assert rpc.getrawmempool() == []
    assert rpc.name_pending() == []
    assert rpc.name_show("a")["vout"] == obj["vout"]


def test_name_allowexpired(names):
    rpc = names.rpc
    names.register([(b"d/active", b"value"), (b"d/expired", b"value")])
    names.generate(1)
    for name in ("d/active", "d/expired"):
        rec = rpc.name_show(name)
        assert (rec["value"], rec["expires_in"], rec["expired"]) == ("value", 30, False)
    names.generate(15)
    names.update(b"d/active", b"renewed")
    names.generate(16)

    # default (Namecoin's -noallowexpired)
    assert_rpc_error(-4, "name expired", rpc.name_show, "d/expired")
    assert_rpc_error(-4, "name expired", rpc.name_show, "d/expired", {"allowExpired": False})
    rec = rpc.name_show("d/expired", {"allowExpired": True})
    assert (rec["name"], rec["value"], rec["expires_in"], rec["expired"]) == ("d/expired", "value", -1, True)
    assert rpc.name_show("d/active")["value"] == "renewed"
    assert_rpc_error(-3, "not of expected type bool", rpc.name_show, "d/expired", {"allowExpired": 1})

    # --allow-expired (Namecoin's -allowexpired): expired names answer unless the call says no
    names.node.stop()
    names.node.extra = ["--allow-expired"]
    names.node.start()
    names.reconnect()
    rpc = names.rpc
    assert rpc.name_show("d/expired")["expires_in"] == -1
    assert rpc.name_show("d/expired", {"allowExpired": True})["expired"] is True
    assert_rpc_error(-4, "name expired", rpc.name_show, "d/expired", {"allowExpired": False})


def test_chain_rpcs_namecoin_shapes(names, tmp_path):
    rpc = names.rpc
    info = rpc.getblockchaininfo()
    assert info["chain"] == "regtest" and info["pruned"] is False
    assert info["verificationprogress"] == 1 and info["size_on_disk"] > 0
    tip = rpc.getbestblockhash()
    assert rpc.getblock(tip, True)["hash"] == tip                      # bitcoind's boolean form
    assert rpc.getblock(tip, False) == rpc.getblock(tip, 0)
    assert_rpc_error(-3, "Expected type int or bool", rpc.getblock, tip, "2")

    names.register([(b"d/hashed", b"v")])
    names.generate(1)
    assert rpc.name_show("d/hashed", {"byHash": "direct"})["name"] == "d/hashed"
    # no name-hash index: refused with Namecoin's words, never silently read as a name
    assert_rpc_error(-1, "-namehashindex is not enabled", rpc.name_show, "00" * 32,
                     {"byHash": "sha256d", "nameEncoding": "hex"})
    assert_rpc_error(-8, "Invalid value for byHash: sha1", rpc.name_history, "d/hashed", {"byHash": "sha1"})

    testnet = NodeProcess(str(tmp_path / "testnet"), network="testnet").start()
    try:
        assert testnet.call("getblockchaininfo")["chain"] == "test"     # bitcoind's name for it
    finally:
        testnet.stop()


def test_name_lookups_refused_while_syncing(names):
    """A node fetching blocks it has headers for would answer stale names as current:
    Namecoin answers RPC_CLIENT_IN_INITIAL_DOWNLOAD (-10) instead, and so does dotbit."""
    rpc = names.rpc
    names.register([(b"d/sync", b"v")])
    names.generate(1)
    tip = Header.from_bytes(bytes.fromhex(rpc.getblockheader(rpc.getbestblockhash(), False)))
    headers, prev = [], tip
    for i in range(10):
        # stamped after the tip: generatetoaddress runs the chain's clock ahead of the wall's
        prev = solve_quick(Header(1, prev.hash, bytes(32), bytes(32), tip.time + 1 + i,
                                  REGTEST.pow_limit_bits, 0), REGTEST.pow_limit)
        headers.append(prev.to_bytes())
    staller = RawPeer(names.node.p2p_port, "127.0.0.9")      # has headers, never serves blocks
    try:
        staller.handshake(height=tip_height(rpc) + 10)

        def stall(peer, msg):
            if msg.command == "getheaders":
                peer.send(M.Headers(tuple(headers)))
            elif msg.command == "ping":
                peer.send(M.Pong(msg.nonce))
        staller.serve_forever_in_thread(stall)
        staller.send(M.Headers(tuple(headers)))              # announced: the node asks for blocks
        wait_until(lambda: rpc.getblockchaininfo()["initialblockdownload"], 20, "the node syncing")
        for method, args in (("name_show", ["d/sync"]), ("name_history", ["d/sync"]), ("name_scan", [])):
            assert_rpc_error(-10, "downloading blocks", getattr(rpc, method), *args)
        assert rpc.getblockchaininfo()["verificationprogress"] < 1
        assert rpc.name_pending() == []                      # the mempool view stays open, as Namecoin
    finally:
        staller.close()


def tip_height(rpc) -> int:
    return rpc.getblockcount()
