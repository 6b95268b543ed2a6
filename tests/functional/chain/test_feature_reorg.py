"""Reorgs between real node processes through submitblock: a heavier branch replaces the tip,
balances equal those after `reindex`, and a branch with an invalid block is rejected and
remembered."""
from __future__ import annotations

from dataclasses import replace

from support.chain import COIN, Key
from support.harness import NodeProcess, run_cli
from core.primitives import Block, Tx, TxIn, TxOut, block_merkle_root
from core.signing import sign_tx
from node.mining.miner import solve_quick

A, B = Key.from_seed(21), Key.from_seed(22)


def balances(node, keys) -> dict:
    return {k.addr_text(): sorted((u["txid"], u["outputIndex"], u["value_sat"])
                                  for u in node.call("getaddressutxos", k.addr_text())) for k in keys}


def test_heavier_branch_replaces_tip(tmp_path):
    n1 = NodeProcess(str(tmp_path / "n1")).start()
    n2 = NodeProcess(str(tmp_path / "n2")).start()
    try:
        common = n1.call("generatetoaddress", 101, A.addr_text())
        for h in common:
            assert n2.call("submitblock", n1.call("getblock", h, 0)) is None
        assert n2.call("getbestblockhash") == common[-1]
        # n1: a payment A -> B, confirmed in a 2-block branch
        utxo = n1.call("getaddressutxos", A.addr_text())[0]
        tx = Tx(1, (TxIn(bytes.fromhex(utxo["txid"]), utxo["outputIndex"]),),
                (TxOut(3 * COIN, B.address), TxOut(utxo["value_sat"] - 3 * COIN - 5000, A.address)))
        tx = sign_tx(tx, [(utxo["value_sat"], A.address)], [A.secret], [A.pubkey])
        n1.call("sendrawtransaction", tx.to_bytes().hex())
        n1.call("generatetoaddress", 2, A.addr_text())
        assert n1.call("getrawtransaction", tx.txid.hex(), True)["confirmations"] == 2
        # n2: a heavier 3-block branch mined to B
        branch = n2.call("generatetoaddress", 3, B.addr_text())
        for h in branch:
            n1.call("submitblock", n2.call("getblock", h, 0))
        assert n1.call("getbestblockhash") == branch[-1]
        # the payment left the chain and is back in n1's mempool
        assert tx.txid.hex() in n1.call("getrawmempool")
        before = balances(n1, [A, B])
        assert before == balances(n2, [A, B])
        # an invalid branch: 2 blocks on top of the tip... its first block overpays itself
        tip = Block.from_bytes(bytes.fromhex(n1.call("getblock", branch[-1], 0)))
        height = n1.call("getblockcount")
        bad = _raw_block(tip, height + 1, 99 * COIN)
        child = _raw_block(bad, height + 2, COIN)
        assert n1.call("submitblock", bad.to_bytes().hex()) == "bad-cb-amount"
        assert n1.call("submitblock", bad.to_bytes().hex()) == "duplicate-invalid"
        assert n1.call("submitblock", child.to_bytes().hex()) == "bad-prevblk"
        assert n1.call("getbestblockhash") == branch[-1]
    finally:
        n1.stop()
        n2.stop()
    r = run_cli("--regtest", "--datadir", n1.datadir, "reindex")
    assert r.returncode == 0, r.stderr
    n1 = NodeProcess(n1.datadir).start()
    try:
        assert n1.call("getbestblockhash") == branch[-1]
        after = balances(n1, [A, B])
        assert after == before
        # remembered across restart and reindex: still invalid
        assert n1.call("submitblock", bad.to_bytes().hex()) in ("duplicate-invalid", "bad-cb-amount")
    finally:
        n1.stop()


def _raw_block(prev: Block, height: int, value: int) -> Block:
    cb = Tx(1, (), (TxOut(value, B.address),), height)
    hdr = replace(prev.header, prev_hash=prev.hash, merkle_root=block_merkle_root([cb]),
                  time=prev.header.time + 1, nonce=0)
    return Block(solve_quick(hdr, 1 << 254), (cb,))
