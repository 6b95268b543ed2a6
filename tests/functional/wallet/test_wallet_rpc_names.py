"""Namecoin Core's name_registration functional test, replayed step by step through
python-bitcoinrpc against two real `dotbit-wallet serve` daemons (Namecoin's node 0 and
node 1 wallets) and one real node: the same calls, result shapes and error codes, with
regtest numbers (a name_new needs 12 confirmations before the firstupdate is even relayed,
names expire after 30 blocks). Name lookups (name_show, name_history) go through the wallet
URL too: the daemon forwards them to the node."""
from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from support.harness import NodeProcess, running
from support.namecoin_rpc import assert_rpc_error
from support.wallet_cli import DEPTH, EXPIRY, mine, new_wallet
from support.wallet_rpc import WalletDaemon

log = logging.getLogger("test.wallet_rpc")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    yield from running(NodeProcess(str(tmp_path_factory.mktemp("wallet-rpc-node"))))


@pytest.fixture(scope="module")
def daemons(node, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wallet-rpc")
    node.miner = node.call("getminingaddress")
    wa, _ = new_wallet(node, tmp, "a", coinbases=3)
    wb, _ = new_wallet(node, tmp, "b", coinbases=0)
    started = []
    try:
        for w in (wa, wb):
            started.append(WalletDaemon(w).start())
        yield started
    finally:
        for d in started:
            try:
                d.stop()
            except Exception:
                d.kill()


def check_name(rpc, name, value, expires_in, expired):
    data = rpc.name_show(name, {"allowExpired": True})
    assert (data["name"], data["value"], data["expired"]) == (name, value, expired), data
    if expires_in is not None:
        assert data["expires_in"] == expires_in, data
    return data


def check_history(rpc, name, values):
    assert [r["value"] for r in rpc.name_history(name)] == values


def test_name_registration_replay(node, daemons):
    n0, n1 = (d.proxy() for d in daemons)
    other = n1.getnewaddress()

    def generate_to_other(k):        # blocks whose coinbases go to node 1, keeping node 0's balance exact
        mine(node, k, other)

    generate_to_other(150)           # node 0's three coinbases mature; node 1 gets coins of its own

    log.info("name_new: a conflict, an explicit address, the longest name, one too long")
    new_a = n0.name_new("name-0")
    new_a_confl = n0.name_new("name-0")
    addr = n0.getnewaddress()
    new_b = n0.name_new("name-1", {"destAddress": addr})
    n0.name_new("x" * 255)
    assert_rpc_error(-8, "name is too long", n0.name_new, "x" * 256)
    assert len(new_a) == 2 and len(new_a[1]) == 40 and new_a[1] != new_a_confl[1]

    log.info("the name_new with destAddress pays that address (seen in the raw tx, forwarded to the node)")
    outs = [o for o in n0.getrawtransaction(new_b[0], True)["vout"] if o["covenant"]["type"] == "name_new"]
    assert [o["address"] for o in outs] == [addr]
    generate_to_other(DEPTH)

    log.info("firstupdate the names; a too long value; a second registration of name-0 in the mempool")
    addr = n0.getnewaddress()
    txid_a = n0.name_firstupdate("name-0", new_a[1], new_a[0], "value-0", {"destAddress": addr})
    assert_rpc_error(-8, "value is too long", n0.name_firstupdate, "name-1", new_b[1], new_b[0], "x" * 521)
    n0.name_firstupdate("name-1", new_b[1], new_b[0], "x" * 520)
    assert_rpc_error(-25, "is already being registered", n0.name_firstupdate, "name-0", new_a_confl[1],
           new_a_confl[0], "foo")

    log.info("not there before its block; the node's own error passes through the wallet URL unchanged")
    err = assert_rpc_error(-4, "name never existed", n0.name_show, "name-0")
    with pytest.raises(Exception) as direct:
        node.call("name_show", "name-0")
    assert direct.value.code == err["code"] and err["message"] in direct.value.message
    generate_to_other(1)
    data = check_name(n0, "name-0", "value-0", EXPIRY, False)
    assert (data["address"], data["txid"]) == (addr, txid_a)
    assert data["height"] == node.call("getblockcount")
    check_history(n0, "name-0", ["value-0"])
    check_history(n0, "name-1", ["x" * 520])
    _allow_existing(n0)
    _rand_and_foreign_input(n0, n1, generate_to_other)
    _steal_after_expiry(node, n0, generate_to_other)
    _updates(n0, n1, generate_to_other)
    _reregister_and_low_balance(node, n0, n1, generate_to_other)


def _allow_existing(n0):
    log.info("name_new's allowExisting option")
    assert_rpc_error(-25, "exists already", n0.name_new, "name-0")
    assert_rpc_error(-25, "exists already", n0.name_new, "name-0", {"allowExisting": False})
    assert_rpc_error(-3, "is not of expected type bool", n0.name_new, "other", {"allowExisting": 42.5})
    n0.name_new("name-0", {"allowExisting": True})


def _rand_and_foreign_input(n0, n1, generate_to_other):
    log.info("a wrong rand; another wallet's name_new")
    new_a = n0.name_new("test-name")
    generate_to_other(DEPTH)
    assert_rpc_error(-25, "rand value is wrong", n0.name_firstupdate, "test-name-wrong", new_a[1], new_a[0], "value")
    assert_rpc_error(-6, "Not found pre-selected input", n1.name_firstupdate, "test-name", new_a[1], new_a[0], "value")
    n0.name_firstupdate("test-name", new_a[1], new_a[0], "test-value")


def _steal_after_expiry(node, n0, generate_to_other):
    log.info("no firstupdate of an active name; anyone's after it expires")
    steal = n0.name_new("name-0", {"allowExisting": True})
    steal2 = n0.name_new("name-0", {"allowExisting": True})
    left = n0.name_show("name-0")["expires_in"]
    generate_to_other(left - 1)
    check_name(n0, "name-0", "value-0", 1, False)
    assert_rpc_error(-25, "this name is already active", n0.name_firstupdate, "name-0", steal[1], steal[0], "stolen")
    generate_to_other(1)
    assert steal[1] != steal2[1]
    n0.name_firstupdate("name-0", steal[1], steal[0], "stolen")
    check_name(n0, "name-0", "value-0", 0, True)
    generate_to_other(1)
    check_name(n0, "name-0", "stolen", EXPIRY, False)
    check_history(n0, "name-0", ["value-0", "stolen"])

    log.info("without the wallet's own check the node still refuses a firstupdate of an active name")
    assert_rpc_error(-26, "rejected", n0.name_firstupdate, "name-0", steal2[1], steal2[0], "unstolen", {}, True)
    assert node.call("getrawmempool") == []
    check_name(n0, "name-0", "stolen", None, False)


def _updates(n0, n1, generate_to_other):
    log.info("updates: value limits, a transfer to node 1, node 1 updating it")
    assert_rpc_error(-8, "value is too long", n0.name_update, "test-name", "x" * 521)
    n0.name_update("test-name", "x" * 520)
    check_name(n0, "test-name", "test-value", None, False)
    generate_to_other(1)
    check_name(n0, "test-name", "x" * 520, EXPIRY, False)
    check_history(n0, "test-name", ["test-value", "x" * 520])

    addr_other = n1.getnewaddress()
    n0.name_update("test-name", "sent", {"destAddress": addr_other})
    generate_to_other(1)
    assert check_name(n0, "test-name", "sent", EXPIRY, False)["address"] == addr_other
    n1.name_update("test-name", "updated")
    assert_rpc_error(-25, "there is already a pending update for this name", n1.name_update, "test-name", "again")
    generate_to_other(1)
    check_name(n1, "test-name", "updated", EXPIRY, False)
    check_history(n0, "test-name", ["test-value", "x" * 520, "sent", "updated"])
    # name_list as Namecoin's: the old owner keeps the output it sent, marked transferred,
    # and does not see the new owner's update; the new owner sees its own.
    [sent] = n0.name_list("test-name")
    assert (sent["value"], sent["address"], sent["ismine"], sent["transferred"]) == ("sent", addr_other, False, True)
    [held] = n1.name_list("test-name")
    assert (held["value"], held["ismine"], held["transferred"], held["expired"]) == ("updated", True, False, False)

    log.info("invalid updates")
    assert_rpc_error(-25, "this name can not be updated", n0.name_update, "wrong-name", "foo")
    assert_rpc_error(-6, "Not found pre-selected input", n0.name_update, "test-name", "stolen?")


def _reregister_and_low_balance(node, n0, n1, generate_to_other):
    log.info("an expired name cannot be updated, but registered again")
    check_name(n0, "name-1", "x" * 520, None, True)
    assert_rpc_error(-25, "this name can not be updated", n0.name_update, "name-1", "updated?")
    [gone] = n0.name_list("name-1")          # its last output, marked expired, still the wallet's
    assert (gone["value"], gone["expired"], gone["ismine"], gone["transferred"]) == ("x" * 520, True, True, False)
    assert gone["expires_in"] <= 0
    steal = n0.name_new("name-1")
    generate_to_other(DEPTH)
    n0.name_firstupdate("name-1", steal[1], steal[0], "reregistered")
    generate_to_other(10)
    data = check_name(n0, "name-1", "reregistered", None, False)
    assert data["expires_in"] == data["height"] + EXPIRY - node.call("getblockcount")
    check_history(n0, "name-1", ["x" * 520, "reregistered"])

    log.info("a name update needs only the fee when the balance is below the name's locked coin")
    balance = n0.getbalance()
    keep = Decimal("0.001")
    n0.sendtoaddress(n1.getnewaddress(), balance - keep, "", "", True)
    generate_to_other(1)
    assert n0.getbalance() == keep
    n0.name_update("name-1", "new value")
    generate_to_other(1)
    assert n0.getbalance() < Decimal("0.01")
    check_name(n0, "name-1", "new value", None, False)
    assert [r["name"] for r in n0.name_list("name-1")] == ["name-1"]
