"""JSON-RPC against a real node process: the bitcoind-style methods, and bad input that must
get JSON-RPC errors (never a crash): malformed hex/msgpack, bad signatures, double spends,
missing auth."""
from __future__ import annotations

import base64
import http.client
import json

import pytest

from support.chain import COIN, Key
from core.primitives import Tx, TxIn, TxOut
from core.signing import sign_tx
from wallet.nodeclient import NodeError

ALICE, BOB = Key.from_seed(11), Key.from_seed(12)


def raw_post(node, body: bytes, auth: bool = True):
    conn = http.client.HTTPConnection("127.0.0.1", node.rpc_port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if auth:
        with open(f"{node.datadir}/.cookie") as f:
            headers["Authorization"] = "Basic " + base64.b64encode(f.read().encode()).decode()
    conn.request("POST", "/", body, headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def error_code(node, method, *params) -> int:
    with pytest.raises(NodeError) as e:
        node.call(method, *params)
    return e.value.code


def pay(node, key: Key, utxo: dict, to: bytes, amount: int, fee: int = 10_000) -> Tx:
    change = utxo["value_sat"] - amount - fee
    tx = Tx(1, (TxIn(bytes.fromhex(utxo["txid"]), utxo["outputIndex"]),),
            (TxOut(amount, to), TxOut(change, key.address)), 0)
    return sign_tx(tx, [(utxo["value_sat"], key.address)], [key.secret], [key.pubkey])


def test_chain_methods(node):
    addr = ALICE.addr_text()
    hashes = node.call("generatetoaddress", 101, addr)
    info = node.call("getblockchaininfo")
    assert info["chain"] == "regtest" and info["blocks"] >= 101
    assert node.call("getblockhash", 1) == hashes[0]
    b1 = node.call("getblock", hashes[0], 2)
    assert b1["height"] == 1 and b1["tx"][0]["vout"][0]["address"] == addr
    assert b1["tx"][0]["vout"][0]["value_sat"] == 50 * COIN
    assert node.call("getblock", hashes[0])["tx"] == [b1["tx"][0]["txid"]]
    raw = node.call("getblock", hashes[0], 0)
    assert isinstance(raw, str) and bytes.fromhex(raw)
    hdr = node.call("getblockheader", hashes[0], False)
    assert len(bytes.fromhex(hdr)) == 112
    assert node.call("getblockheader", hashes[0])["nextblockhash"] == hashes[1]
    cb = b1["tx"][0]["txid"]
    assert node.call("getrawtransaction", cb, True)["blockhash"] == hashes[0]
    assert node.call("gettxout", cb, 0)["value_sat"] == 50 * COIN
    utxos = node.call("getaddressutxos", addr)
    assert len(utxos) == 101 and sum(u["value_sat"] for u in utxos) == 101 * 50 * COIN
    assert node.call("validateaddress", addr)["isvalid"]
    assert not node.call("validateaddress", "notanaddress")["isvalid"]
    assert "getblockchaininfo" in node.call("help")
    assert node.call("uptime") >= 0
    # spend the mature coinbase from height 1 over RPC; mine it; check history and indexes
    tx = pay(node, ALICE, utxos[0], BOB.address, 5 * COIN)
    assert node.call("sendrawtransaction", tx.to_bytes().hex()) == tx.txid.hex()
    assert node.call("getrawmempool") == [tx.txid.hex()]
    assert node.call("getmempoolinfo")["size"] == 1
    decoded = node.call("decoderawtransaction", tx.to_bytes().hex())
    assert decoded["txid"] == tx.txid.hex() and decoded["vout"][0]["value_sat"] == 5 * COIN
    tmpl = node.call("getblocktemplate")
    assert [t["txid"] for t in tmpl["transactions"]] == [tx.txid.hex()]
    node.call("generatetoaddress", 1, addr)
    assert node.call("getrawmempool") == []
    bob_utxos = node.call("getaddressutxos", {"addresses": [BOB.addr_text()]})
    assert [(u["txid"], u["value_sat"]) for u in bob_utxos] == [(tx.txid.hex(), 5 * COIN)]
    hist = node.call("getaddresshistory", addr)
    assert tx.txid.hex() in [h["txid"] for h in hist]
    assert node.call("gettxout", utxos[0]["txid"], 0) is None
    # An external miner: getblocktemplate -> grind -> submitblock
    from core.primitives import Block
    from node.mining.miner import solve_quick
    t = node.call("getblocktemplate", {"address": BOB.addr_text()})
    block = Block.from_bytes(bytes.fromhex(t["block"]))
    solved = Block(solve_quick(block.header, int(t["target"], 16)), block.txs)
    assert node.call("submitblock", solved.to_bytes().hex()) is None
    assert node.call("getbestblockhash") == solved.hash.hex()
    assert node.call("submitblock", solved.to_bytes().hex()) == "duplicate"


def test_bad_input(node):
    node.call("generatetoaddress", 101, ALICE.addr_text())
    assert error_code(node, "sendrawtransaction", "zz") == -22
    assert error_code(node, "sendrawtransaction", "c1") == -22          # msgpack nil-ish garbage
    assert error_code(node, "sendrawtransaction", "93000000") == -22    # wrong shape
    assert error_code(node, "submitblock", "nothex") == -22
    assert error_code(node, "submitblock", "92c40100") == -22
    assert error_code(node, "getblockhash", 10**9) == -8
    assert error_code(node, "getblockhash", "one") == -3
    assert error_code(node, "getblock", "00" * 32) == -5
    assert error_code(node, "getblock", "abc") == -8
    assert error_code(node, "nosuchmethod") == -32601
    with pytest.raises(NodeError, match="Method not found: 'nosuchmethod'"):
        node.call("nosuchmethod")
    assert error_code(node, "getblockhash") == -1
    assert error_code(node, "generatetoaddress", 1, "bogus") == -5
    utxo = node.call("getaddressutxos", ALICE.addr_text())[0]
    good = pay(node, ALICE, utxo, BOB.address, COIN)
    bad_sig = Tx(good.version, (TxIn(good.inputs[0].prev_txid, good.inputs[0].prev_index, bytes(64),
                                     good.inputs[0].pubkey),), good.outputs)
    with pytest.raises(NodeError) as e:
        node.call("sendrawtransaction", bad_sig.to_bytes().hex())
    assert e.value.code == -26 and "bad-txns-bad-signature" in str(e.value)
    node.call("sendrawtransaction", good.to_bytes().hex())
    double = pay(node, ALICE, utxo, BOB.address, 2 * COIN)
    with pytest.raises(NodeError) as e:
        node.call("sendrawtransaction", double.to_bytes().hex())
    assert "txn-mempool-conflict" in str(e.value)
    status, _ = raw_post(node, b'{"method":"getblockcount","params":[],"id":1}', auth=False)
    assert status == 401
    status, data = raw_post(node, b"{not json")
    assert json.loads(data)["error"]["code"] == -32700
    status, data = raw_post(node, b'[{"method":"getblockcount","id":1},{"id":2},"x"]')
    replies = json.loads(data)
    assert replies[0]["result"] >= 0 and replies[1]["error"]["code"] == -32600
    assert node.call("getblockcount") > 0      # still up
