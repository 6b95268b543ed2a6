"""mempool_ late reveal, against a real node process: the first to commit wins. Bob sees
Alice's commitment 11 blocks deep, commits to the same name and reveals at once; the node
refuses his immature FIRSTUPDATE instead of letting it hold the name's one pending slot, so
Alice's FIRSTUPDATE enters the pool, the next block carries it and she owns the name."""
from __future__ import annotations

import logging

import pytest

from core.params import REGTEST
from support.chain import Key
from support.name_txs import Funds, firstupdate, name_new
from wallet.nodeclient import NodeError

log = logging.getLogger(__name__)
ALICE, BOB, MINER = Key.from_seed(71), Key.from_seed(72), Key.from_seed(73)
NAME = "d/x"
RA, RB = b"\x0a" * 20, b"\x0b" * 20


def funds_of(node, key) -> Funds:
    tip = node.call("getblockcount")
    utxos = node.call("getaddressutxos", key.addr_text())
    return Funds(key, [(bytes.fromhex(u["txid"]), u["outputIndex"], u["value_sat"])
                       for u in utxos if u["covenant"]["type"] == "none" and u["height"] <= tip - 100])


def send(node, tx) -> str:
    return node.call("sendrawtransaction", tx.to_bytes().hex())


def rejection(node, tx) -> str:
    with pytest.raises(NodeError) as e:
        send(node, tx)
    assert e.value.code == -26
    return e.value.message


def test_late_reveal_does_not_steal_a_committed_name(node):
    for key in (ALICE, BOB):
        node.call("generatetoaddress", 5, key.addr_text())
    node.call("generatetoaddress", 100, MINER.addr_text())
    alice, bob = funds_of(node, ALICE), funds_of(node, BOB)
    name = NAME.encode()

    log.info("Alice commits; her NAME_NEW is mined and 11 blocks are built on it")
    a_new = name_new(alice, name, RA)
    send(node, a_new)
    node.call("generatetoaddress", 12, MINER.addr_text())
    height = node.call("getblockcount")
    assert node.call("getrawtransaction", a_new.txid.hex(), True)["confirmations"] == 12

    log.info("Bob commits to the same name and reveals at once")
    b_new = name_new(bob, name, RB)
    send(node, b_new)
    b_first = firstupdate(bob, b_new, name, RB, b'{"ip":"198.51.100.6"}', REGTEST, height + 1)
    assert "tx-firstupdate-immature" in rejection(node, b_first)
    assert node.call("name_pending", NAME) == []

    log.info("Alice reveals: valid in the next block, so the pool takes it")
    a_first = firstupdate(alice, a_new, name, RA, b'{"ip":"192.0.2.7"}', REGTEST, height + 1)
    send(node, a_first)
    assert [p["txid"] for p in node.call("name_pending", NAME)] == [a_first.txid.hex()]
    template_txids = [t["txid"] for t in node.call("getblocktemplate")["transactions"]]
    assert a_first.txid.hex() in template_txids and b_first.txid.hex() not in template_txids

    node.call("generatetoaddress", 1, MINER.addr_text())
    rec = node.call("name_show", NAME)
    assert rec["address"] == ALICE.addr_text() and rec["txid"] == a_first.txid.hex()
    assert rec["height"] == height + 1

    log.info("Bob's reveal, once mature, finds the name taken")
    node.call("generatetoaddress", 11, MINER.addr_text())
    assert "tx-firstupdate-name-exists" in rejection(node, b_first)
    assert node.call("name_show", NAME)["address"] == ALICE.addr_text()
