"""--par between real node processes: a node checking signatures in a worker thread syncs a
chain of big blocks over p2p from a node that checks in line, refuses a block with one bad
signature deep inside it for the same reason and detail, and its reindex with --par 2 reaches
the same state (checkdb agrees)."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from core.params import REGTEST
from core.primitives import Tx, TxIn, TxOut
from core.signing import sign_tx
from node.service import open_chain
from support.chain import Key, make_block
from support.harness import NodeProcess, run_cli
from support.p2p import wait_until

KEY = Key.from_seed(41)
PAYMENTS = 48             # per big block: above the in-line threshold (32 inputs), 3 chunks
BAD_AT = 40               # the payment whose signature is broken: in a late chunk


def payments(coins, bad_at=None):
    txs = []
    for i, (txid, idx, value) in enumerate(coins):
        tx = Tx(1, (TxIn(txid, idx),), (TxOut(value - 1000, KEY.address),), 0)
        tx = sign_tx(tx, [(value, KEY.address)], [KEY.secret], [KEY.pubkey])
        if i == bad_at:
            txin = tx.inputs[0]
            tx = replace(tx, inputs=(replace(txin, sig=bytes([txin.sig[0] ^ 1]) + txin.sig[1:]),))
        txs.append(tx)
    return txs


@pytest.fixture(scope="module")
def big_chain(tmp_path_factory):
    """A data dir: 101 blocks, a fan-out to 3 x PAYMENTS coins, two blocks of PAYMENTS
    payments each; and, not submitted, a third such block with one bad signature."""
    datadir = str(tmp_path_factory.mktemp("par") / "src")
    chain = open_chain(REGTEST, datadir)
    now = int(time.time()) - 3600
    try:
        def block(txs=()):
            return make_block(chain, None, KEY.address, clock=lambda: now, extra_txs=txs)

        for _ in range(REGTEST.coinbase_maturity + 1):
            assert chain.process_block(block()) == "active"
        cb = chain.get_block(chain.chain[1].hash).txs[0]
        each = (cb.outputs[0].value - 10_000) // (3 * PAYMENTS)
        fan = Tx(1, (TxIn(cb.txid, 0),), tuple(TxOut(each, KEY.address) for _ in range(3 * PAYMENTS)), 0)
        fan = sign_tx(fan, [(cb.outputs[0].value, KEY.address)], [KEY.secret], [KEY.pubkey])
        assert chain.process_block(block([fan])) == "active"
        coins = [(fan.txid, i, each) for i in range(3 * PAYMENTS)]
        for k in range(2):
            assert chain.process_block(block(payments(coins[k * PAYMENTS:(k + 1) * PAYMENTS]))) == "active"
        bad = block(payments(coins[2 * PAYMENTS:], bad_at=BAD_AT))
    finally:
        chain.db.close()
    return datadir, bad


def test_par2_syncs_refuses_and_reindexes_like_par1(big_chain, tmp_path):
    src, bad = big_chain
    a = NodeProcess(src, "--par", "1").start()
    b = NodeProcess(str(tmp_path / "b"), "--par", "2", "--connect", a.p2p_addr)
    try:
        b.start()
        tip = a.call("getbestblockhash")
        wait_until(lambda: b.call("getbestblockhash") == tip, 60, "b to sync")
        assert "1 signature worker thread(s) started" in b.log()
        assert "signature worker" not in a.log()
        # The same verdict and the same detail: the one bad input, found by a worker on b.
        assert a.call("submitblock", bad.to_bytes().hex()) == "bad-txns-bad-signature"
        assert b.call("submitblock", bad.to_bytes().hex()) == "bad-txns-bad-signature"
        line = f"block {bad.hash.hex()} at {bad_height(a)} invalid: bad-txns-bad-signature: input 0"
        assert line in a.log() and line in b.log()
        assert b.call("getbestblockhash") == tip
        info_a = a.call("getblockchaininfo")
    finally:
        b.stop()
        a.stop()
    r = run_cli("--regtest", "--datadir", b.datadir, "--par", "2", "reindex", timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"tip {tip}, name_root {info_a['name_root']}" in r.stdout
    r = run_cli("--regtest", "--datadir", b.datadir, "--par", "2", "checkdb", timeout=120)
    assert r.returncode == 0 and "checkdb: ok" in r.stdout, r.stderr


def bad_height(node) -> int:
    return node.call("getblockcount") + 1


def test_par_out_of_range_is_one_line(tmp_path):
    r = run_cli("--regtest", "--datadir", str(tmp_path), "--par", "17", "checkdb", timeout=60)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        "dotbit-node: --par: 17 is out of range (0 = every core, or 1 to 16)"]
