"""A self-check of the crash harness (support/crash.py): a block connect written as two
writes, with the kill between them, must fail the checks a crash trial runs. The node saves a
block as ONE batch; if it ever split one, these checks are what would notice, so they are shown
here to notice it.

The torn state is made in-process: the block is connected by a ChainState whose store commits
that block's batch in two parts and then stops (the kill), on a copy of a cached chain. Then
the same functions a trial uses run on it: checkdb (dotbit-node checkdb, a replay of the stored
blocks) and, on a node restarted there, the tip's name_root against the node's name records.
The same block written whole passes both: what they catch is the tear."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager

import pytest

from core.params import REGTEST
from node.chain import layout as L
from node.chain.chainstate import ChainState
from node.chain.mempool import Mempool
from node.chain.storage import LevelDB
from support.chain import make_block
from support.crash import check_name_root, checkdb
from support.harness import NodeProcess, stop_node
from support.p2p import NAME, OWNER, build_chain, copy_chain, name_update

# Which writes of the block's batch land before the kill, by key prefix.
SPLITS = {
    # the block's coins, indexes and names, but not its undo record, height entry and tip
    "data-before-undo-and-tip": lambda key: key[:1] not in (L.UNDO, L.HEIGHT, L.TIP, L.HEADER),
    # the name index and name tree only: the tip's header still commits to the old names
    "names-only": lambda key: key[:1] in (L.NAME, L.NAME_HIST, L.EXPIRY, L.TREE),
}


class Killed(Exception):
    """The process died between the two writes."""


class SplitStore:
    """The chain's LevelDB, except that a batch moving the tip (a block connect) is committed
    as two writes: the operations `first(key)` picks, then the kill before the rest."""

    def __init__(self, db: LevelDB, first):
        self.db, self.first = db, first

    def __getattr__(self, attr):
        return getattr(self.db, attr)

    @contextmanager
    def write_batch(self):
        ops: list[tuple] = []
        yield _Recording(ops)
        if self.first is None or not any(key == L.TIP for _, key, _ in ops):
            self._commit(ops)
            return
        self._commit([op for op in ops if self.first(op[1])])
        raise Killed(f"{len(ops)} writes, {sum(bool(self.first(k)) for _, k, _ in ops)} before the kill")

    def _commit(self, ops) -> None:
        with self.db.write_batch() as b:
            for kind, key, value in ops:
                b.put(key, value) if kind == "put" else b.delete(key)


class _Recording:
    def __init__(self, ops: list):
        self.ops = ops

    def put(self, key: bytes, value: bytes) -> None:
        self.ops.append(("put", key, value))

    def delete(self, key: bytes) -> None:
        self.ops.append(("delete", key, None))


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    return build_chain(str(tmp_path_factory.mktemp("cache") / "chain"), 130)


def connect_next_block(datadir: str, cached, first) -> None:
    """Mine one block with a name update of d/p2ptest on `datadir`, written through SplitStore."""
    db = SplitStore(LevelDB(os.path.join(datadir, "chain")), first)
    try:
        chain = ChainState(db, REGTEST)
        pool = Mempool(chain, REGTEST)
        pool.accept(name_update(cached.spare[0], cached.firstupdate, b'{"ip":"10.0.0.2"}'))
        block = make_block(chain, pool, OWNER.address, clock=lambda: int(time.time()))
        assert len(block.txs) == 2
        chain.process_block(block)
    finally:
        db.close()


def crash_checks(datadir: str) -> tuple[list[str], list[str]]:
    """What a trial checks after a kill (support/crash.py after_kill): checkdb on the data dir
    as the kill left it, then the name root on a node restarted on it."""
    replay = checkdb(datadir)
    node = NodeProcess(datadir, "--no-listen")
    try:
        node.start(timeout=60)
        return replay, check_name_root(node, [NAME])
    finally:
        stop_node(node, keep_data=True)


def test_a_block_written_whole_passes_the_crash_checks(cached, tmp_path):
    datadir = copy_chain(cached, str(tmp_path / "whole"))
    connect_next_block(datadir, cached, None)
    assert crash_checks(datadir) == ([], [])


@pytest.mark.parametrize("split", list(SPLITS))
def test_a_block_written_in_two_parts_fails_the_crash_checks(cached, tmp_path, split):
    datadir = copy_chain(cached, str(tmp_path / split))
    with pytest.raises(Killed):
        connect_next_block(datadir, cached, SPLITS[split])
    replay, root = crash_checks(datadir)
    assert replay, f"checkdb passed a block connect split as {split}"
    assert root, f"the name root check passed a block connect split as {split}"
