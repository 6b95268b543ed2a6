"""`dotbit-wallet serve` as a daemon: non-ASCII and non-UTF-8 names through it (and the CLI
on the same wallet afterwards), cookie auth, Namecoin's error codes for bad params, a locked
wallet (-13), bounds, and a daemon killed mid name_register that finishes after a restart."""
from __future__ import annotations

import base64
import http.client
import json
import logging
import time
from decimal import Decimal

import pytest
from bitcoinrpc.authproxy import JSONRPCException

from support.harness import NodeProcess, running
from support.namecoin_rpc import assert_rpc_error
from support.wallet_cli import DEPTH, PASS, mature, mine, new_wallet, register_wait
from support.wallet_rpc import WalletDaemon

log = logging.getLogger("test.wallet_rpc")
BYTES_NAME = bytes([0x78, 0x2F, 0xFF, 0x00, 0xC3])      # "x/", then bytes that are not UTF-8
BYTES_VALUE = bytes([0x00, 0xFF, 0xFE, 0x80])


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    def setup(n):
        n.miner = n.call("getminingaddress")
    yield from running(NodeProcess(str(tmp_path_factory.mktemp("wallet-rpcd-node"))), setup)


@pytest.fixture
def wallet(node, tmp_path):
    w, _ = new_wallet(node, tmp_path, "w", coinbases=2)
    mature(node)
    return w


@pytest.fixture
def daemon(wallet):
    d = WalletDaemon(wallet).start()
    yield d
    try:
        d.stop()
    except Exception:
        d.kill()


def registered(node, rpc, names: set, blocks: int = 40) -> list:
    """Mines one block at a time until name_list shows every name (the daemon sends each
    firstupdate itself); returns name_list in hex."""
    rows = []
    for _ in range(blocks):
        rows = rpc.name_list(None, {"nameEncoding": "hex", "valueEncoding": "hex"})
        if {r["name"] for r in rows} >= names:
            return rows
        mine(node)
        time.sleep(0.3)
    raise AssertionError(f"not registered: {names - {r['name'] for r in rows}}")


def test_non_ascii_names_through_the_daemon_and_the_cli(node, wallet, daemon):
    rpc = daemon.proxy()
    log.info("a UTF-8 name and value as text, a name and value of raw bytes as hex")
    rpc.name_register("d/café", '{"ip":"1.2.3.4","info":"naïve ☃"}')
    rpc.name_register(BYTES_NAME.hex(), BYTES_VALUE.hex(), {"nameEncoding": "hex", "valueEncoding": "hex"})
    rows = registered(node, rpc, {"d/café".encode().hex(), BYTES_NAME.hex()})
    assert {r["name"]: r["value"] for r in rows} == {
        "d/café".encode().hex(): '{"ip":"1.2.3.4","info":"naïve ☃"}'.encode().hex(),
        BYTES_NAME.hex(): BYTES_VALUE.hex()}
    assert [r["value"] for r in rpc.name_list("d/café")] == ['{"ip":"1.2.3.4","info":"naïve ☃"}']
    assert_rpc_error(-1000, "cannot be shown as utf8", rpc.name_list)     # the bytes name has no UTF-8 text

    log.info("update both through the daemon")
    rpc.name_update("d/café", '{"ip":"5.6.7.8"}')
    rpc.name_update(BYTES_NAME.hex(), "ff", {"nameEncoding": "hex", "valueEncoding": "hex"})
    mine(node)
    shown = node.call("name_show", BYTES_NAME.hex(), {"nameEncoding": "hex", "valueEncoding": "hex"})
    assert shown["value"] == "ff"
    assert node.call("name_show", "d/café".encode().hex(), {"nameEncoding": "hex"})["value"] == '{"ip":"5.6.7.8"}'

    log.info("the CLI on the same wallet file once the daemon is gone: register, show, list, update, renew")
    daemon.stop()
    register_wait(wallet, "id/josé", "héllo ☃")
    assert node.call("name_show", "id/josé".encode().hex(), {"nameEncoding": "hex", "valueEncoding": "utf8"})["value"] == "héllo ☃"
    assert json.loads(wallet.run("name", "show", "d/café", "--json").stdout)["value"] == '{"ip":"5.6.7.8"}'
    listed = wallet.run("name", "list").stdout
    assert "d/café" in listed and "x/\ufffd" in listed and "id/josé expires in" in listed
    wallet.run("name", "update", "d/café", "--value", '{"ip":"9.9.9.9"}')
    wallet.run("name", "update", BYTES_NAME.hex(), "--name-encoding", "hex", "--value", "00",
               "--value-encoding", "hex")
    mine(node)
    wallet.run("name", "renew", BYTES_NAME.hex(), "--name-encoding", "hex")
    mine(node)
    shown = node.call("name_show", BYTES_NAME.hex(), {"nameEncoding": "hex", "valueEncoding": "hex"})
    assert shown["value"] == "00" and shown["height"] == node.call("getblockcount")
    assert json.loads(wallet.run("name", "show", "d/café", "--json").stdout)["value"] == '{"ip":"9.9.9.9"}'
    history = json.loads(wallet.run("name", "history", BYTES_NAME.hex(), "--name-encoding", "hex", "--json").stdout)
    assert [r["op"] for r in history] == ["register", "update", "update", "renew"]
    assert [r["value"] for r in history][-1] == "\x00"


def _post(daemon, body: bytes, auth: str | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if auth is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        conn.request("POST", "/", body, headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_auth_bad_params_and_bounds(node, daemon):
    call = json.dumps({"method": "getbalance", "params": [], "id": 1}).encode()
    assert _post(daemon, call, None)[0] == 401
    assert _post(daemon, call, "__cookie__:" + "0" * 64)[0] == 401
    assert _post(daemon, call, daemon.credentials())[0] == 200
    with pytest.raises(JSONRPCException) as e:
        daemon.proxy("__cookie__:wrong").getbalance()
    assert "401" in e.value.error["message"]

    rpc = daemon.proxy()
    log.info("bad params: Namecoin's codes")
    assert_rpc_error(-3, "expected type string", rpc.name_update, 123, "v")
    assert_rpc_error(-3, "expected type object", rpc.name_new, "x/y", "not an object")
    assert_rpc_error(-3, "expected type number", rpc.getbalance, "*", "x")
    assert_rpc_error(-5, "Invalid address", rpc.sendtoaddress, "not-an-address", 1)
    assert_rpc_error(-3, "Amount out of range", rpc.sendtoaddress, rpc.getnewaddress(), -1)
    assert_rpc_error(-3, "Invalid amount", rpc.sendtoaddress, rpc.getnewaddress(), "0.000000001")
    assert_rpc_error(-8, "hexadecimal", rpc.name_firstupdate, "x/y", "zz", "00" * 32, "v")
    assert_rpc_error(-8, "invalid nameEncoding", rpc.name_new, "x/y", {"nameEncoding": "latin1"})
    assert_rpc_error(-1000, "not valid hex", rpc.name_new, "x/y", {"nameEncoding": "hex"})
    assert_rpc_error(-5, "name not found", rpc.sendtoname, "d/nobody", 1)
    assert_rpc_error(-1, "wrong number of arguments", rpc.name_update, "x/y")
    assert_rpc_error(-6, "Insufficient funds", rpc.sendtoaddress, rpc.getnewaddress(), 1_000_000)

    log.info("forwarded: the node's answers and errors unchanged")
    assert rpc.getblockcount() == node.call("getblockcount")
    assert rpc.getblockhash(1) == node.call("getblockhash", 1)
    assert_rpc_error(-32601, "Method not found: 'nosuchmethod'", rpc.nosuchmethod)
    assert_rpc_error(-8, "the name is too long", rpc.name_show, "x" * 256)

    log.info("bounds: a request body over the limit, a batch over its length")
    status, _ = _post(daemon, b"[" + b"1," * (1 << 20) + b"1]", daemon.credentials())
    assert status == 413
    status, body = _post(daemon, json.dumps([{"method": "getblockcount", "id": i} for i in range(1001)]).encode(),
                         daemon.credentials())
    assert status == 400 and json.loads(body)["error"]["code"] == -32600
    assert rpc.batch_([["getblockcount"], ["getbalance"]]) == [node.call("getblockcount"), rpc.getbalance()]


def test_locked_wallet_answers_minus_13(node, wallet):
    d = WalletDaemon(wallet, "--locked").start()
    try:
        rpc = d.proxy()
        assert_rpc_error(-13, "walletpassphrase first", rpc.getbalance)
        assert_rpc_error(-13, "walletpassphrase first", rpc.name_register, "d/locked", "{}")
        assert rpc.getblockcount() == node.call("getblockcount")       # forwarded while locked
        assert_rpc_error(-14, "passphrase entered was incorrect", rpc.walletpassphrase, "wrong", 60)
        assert rpc.walletpassphrase(PASS, 60) is None
        assert rpc.getbalance() >= Decimal("50")
        assert rpc.walletlock() is None
        assert_rpc_error(-13, "walletpassphrase first", rpc.getnewaddress)
        rpc.walletpassphrase(PASS, 1)
        rpc.getbalance()
        time.sleep(1.5)
        assert_rpc_error(-13, "walletpassphrase first", rpc.listunspent)
    finally:
        d.stop()


def test_daemon_killed_mid_name_register_finishes_after_restart(node, wallet):
    d = WalletDaemon(wallet)
    d.start()
    try:
        rpc = d.proxy()
        new_txid = rpc.name_register("d/crash", '{"ip":"10.0.0.1"}')
        d.kill()                       # SIGKILL: no clean stop, the pending registration is in the file
        mine(node, DEPTH)
        d.start()
        rows = registered(node, d.proxy(), {"d/crash".encode().hex()})
        mine(node)
        rpc = d.proxy()
        assert [r["name"] for r in rpc.name_list("d/crash")] == ["d/crash"]
        # the name_new key was kept (the firstupdate spent that very name_new), and no second
        # name_new was paid for
        first = node.call("getrawtransaction", rows[0]["txid"], True)
        assert new_txid in {i["txid"] for i in first["vin"]}
        assert [t["name"] for t in rpc.listtransactions("*", 100) if t.get("name") == "new"] == ["new"]
    finally:
        d.stop()
