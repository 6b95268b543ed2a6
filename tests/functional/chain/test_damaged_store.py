"""A node whose stored block bodies were damaged on disk after they were checked (bit rot, a
bad copy of the data dir), with real node processes:
  - `checkdb` names the block and says to run reindex: one line, not a traceback;
  - `reindex` connects up to the block before it and never the damaged body. A body that
    still decodes would otherwise connect other transactions than its header commits to
    (here its coinbase paying someone else, which no signature covers). The body is dropped,
    and the block is not marked invalid: it may well be good;
  - started again beside a peer, the node fetches that block once more and reaches the
    peer's tip through the blocks after it it had kept; checkdb then agrees.
"""
from __future__ import annotations

import dataclasses
import os

import pytest

from core.primitives import Block
from node.chain import layout as L
from node.chain.storage import LevelDB
from node.rpc.registry import MISC_ERROR
from support.harness import NodeProcess, run_cli
from support.p2p import wait_until
from wallet.nodeclient import NodeError

HEIGHT = 30
DAMAGED = 25


def pay_someone_else(raw: bytes) -> bytes | None:
    block = Block.from_bytes(raw)
    cb = block.txs[0]
    out = dataclasses.replace(cb.outputs[0], address=bytes(20))
    cb = dataclasses.replace(cb, outputs=(out,) + tuple(cb.outputs[1:]))
    return Block(block.header, (cb,) + tuple(block.txs[1:])).to_bytes()


# how the body is damaged -> the reason the node gives for it
DAMAGE = [
    ("coinbase pays someone else", pay_someone_else, "its stored body's transactions do not match its merkle root"),
    ("truncated", lambda raw: raw[:-7], "its stored body does not decode"),
    ("deleted", lambda raw: None, "its stored body is missing"),
]


def damage(datadir: str, block_hash: bytes, how) -> None:
    db = LevelDB(os.path.join(datadir, "chain"))
    try:
        key = L.block_key(block_hash)
        raw = db.get(key)
        assert raw is not None
        new = how(raw)
        with db.write_batch() as b:
            b.delete(key) if new is None else b.put(key, new)
    finally:
        db.close()


def cli(datadir: str, command: str):
    return run_cli("--regtest", "--datadir", datadir, command, timeout=120)


@pytest.mark.parametrize("kind,how,why", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_body_is_dropped_by_reindex_and_fetched_again(tmp_path, kind, how, why):
    a = NodeProcess(str(tmp_path / "a")).start()
    b = NodeProcess(str(tmp_path / "b"), "--connect", a.p2p_addr)
    try:
        a.call("generate", HEIGHT)
        tip = a.call("getbestblockhash")
        damaged = a.call("getblockhash", DAMAGED)
        b.start()
        wait_until(lambda: b.call("getbestblockhash") == tip, 60, "b to sync")
        b.stop()
        damage(b.datadir, bytes.fromhex(damaged), how)
        line = f"block {damaged} at {DAMAGED}: {why}"

        r = cli(b.datadir, "checkdb")
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert f"checkdb: {line}" in r.stderr and "run reindex" in r.stderr

        r = cli(b.datadir, "reindex")
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert f"reindex done: height {DAMAGED - 1}, tip {a.call('getblockhash', DAMAGED - 1)}" in r.stdout
        assert line in r.stderr and "dropped, to be fetched again from peers" in r.stderr
        assert "invalid" not in r.stderr                     # not held against the block
        r = cli(b.datadir, "checkdb")
        assert r.returncode == 0 and f"checkdb: ok at height {DAMAGED - 1}" in r.stdout, r.stderr

        b.start()
        wait_until(lambda: b.call("getbestblockhash") == tip, 60, "b to fetch the dropped block again")
        assert b.call("getblock", damaged)["height"] == DAMAGED
    finally:
        b.stop()
        a.stop()
    r = cli(b.datadir, "checkdb")
    assert r.returncode == 0 and f"checkdb: ok at height {HEIGHT}" in r.stdout, r.stderr


@pytest.mark.parametrize("kind,how,why", DAMAGE[:2], ids=[d[0] for d in DAMAGE[:2]])
def test_rpc_never_shows_a_damaged_body_as_the_block(tmp_path, kind, how, why):
    """getblock (every verbosity) and getrawtransaction refuse a damaged body with the reason
    and what to do, one error each: never the other transactions, never a bare decode error.
    The node goes on answering."""
    a = NodeProcess(str(tmp_path / "a")).start()
    try:
        a.call("generate", HEIGHT)
        damaged = a.call("getblockhash", DAMAGED)
        coinbase = a.call("getblock", damaged)["tx"][0]
        a.stop()
        damage(a.datadir, bytes.fromhex(damaged), how)
        a.start()
        for method, params in [("getblock", (damaged, 0)), ("getblock", (damaged, 1)), ("getblock", (damaged, 2)),
                               ("getrawtransaction", (coinbase,)), ("getrawtransaction", (coinbase, True))]:
            with pytest.raises(NodeError) as err:
                a.call(method, *params)
            assert err.value.code == MISC_ERROR, (method, params)
            assert f"block {damaged}: {why}" in str(err.value) and "run reindex" in str(err.value)
        assert a.call("getblock", a.call("getblockhash", DAMAGED - 1))["height"] == DAMAGED - 1
        assert "Traceback" not in a.log()
    finally:
        a.stop()
