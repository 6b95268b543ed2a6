"""storage.WriteBehind: in write-behind mode every read sees the store as if each batch had
been written when its `with` block ended, for both backends.

Random sequences of batches (puts, deletes, a batch that raises) and reads (get, iterator,
range, keys, snapshot) run on a store in write-behind mode and on a plain MemoryDB; every
read must agree, and so must the whole store after the mode ends. Then a write that fails:
raised at the next join, and the store holds the batches before it, each whole.
"""
from __future__ import annotations

import shutil
import tempfile

import pytest
from hypothesis import given, seed, settings, strategies as st

from node.chain.storage import LevelDB, MemoryDB

KEYS = [bytes([p]) + bytes([i]) for p in (1, 2) for i in range(6)]


class Boom(Exception):
    pass


ops = st.one_of(
    st.tuples(st.just("batch"), st.lists(st.tuples(st.sampled_from(KEYS), st.one_of(st.none(), st.binary(max_size=4))),
                                         min_size=1, max_size=6), st.booleans()),
    st.tuples(st.just("get"), st.sampled_from(KEYS)),
    st.tuples(st.just("iter"), st.sampled_from([b"", b"\x01", b"\x02"])),
    st.tuples(st.just("range"), st.sampled_from(KEYS), st.sampled_from(KEYS)),
    st.tuples(st.just("snapshot")),
)


def apply(db, op):
    """Runs one step on `db`; returns what a read saw (None for a batch)."""
    kind = op[0]
    if kind == "batch":
        _, changes, fail = op
        try:
            with db.write_batch() as b:
                for k, v in changes:
                    b.delete(k) if v is None else b.put(k, v)
                if fail:
                    raise Boom()
        except Boom:
            pass
        return None
    if kind == "get":
        return db.get(op[1])
    if kind == "iter":
        return list(db.iterator(prefix=op[1])), list(db.keys(op[1]))
    if kind == "range":
        return list(db.range(op[1], op[2]))
    snap = db.snapshot()
    try:
        return list(snap.iterator())
    finally:
        snap.close()


def open_backend(kind: str, path: str):
    return MemoryDB() if kind == "memory" else LevelDB(path)


@seed(20261202)
@settings(max_examples=60, deadline=None)
@given(steps=st.lists(ops, max_size=40))
@pytest.mark.parametrize("backend", ["memory", "leveldb"])
def test_reads_in_write_behind_mode_match_a_plain_store(backend, steps):
    tmp = tempfile.mkdtemp(prefix="dotbit-wb-")
    model, db = MemoryDB(), open_backend(backend, tmp)
    try:
        with db.write_behind():
            for op in steps:
                assert apply(db, op) == apply(model, op), op
        assert db._pending is None and db._writer is None
        assert list(db.iterator()) == list(model.iterator())
    finally:
        db.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_batch_is_in_flight_while_the_caller_goes_on():
    """The point of the mode: the batch is written by another thread, and a read meanwhile
    comes from the batch in flight (the writer is held back here until released)."""
    import threading
    db = MemoryDB()
    release = threading.Event()
    real = db._apply

    def slow(ops):
        release.wait(10)
        real(ops)

    db._apply = slow
    with db.write_behind():
        with db.write_batch() as b:
            b.put(b"a", b"1")
        assert db._data == {} and db.get(b"a") == b"1"       # not written yet, yet seen
        release.set()
    assert db._data == {b"a": b"1"}


def test_a_failed_write_is_raised_at_the_next_join_and_leaves_whole_batches():
    db = MemoryDB()
    real = db._apply
    calls = []

    def failing(ops):
        calls.append(ops)
        if len(calls) == 2:
            raise OSError("disk full")
        real(ops)

    db._apply = failing
    with pytest.raises(OSError, match="disk full"):
        with db.write_behind():
            with db.write_batch() as b:
                b.put(b"a", b"1")
            with db.write_batch() as b:
                b.put(b"b", b"2")
                b.delete(b"a")
            with db.write_batch() as b:        # waits for the second: its error comes here
                b.put(b"c", b"3")
    assert db._data == {b"a": b"1"} and db.get(b"b") is None and db._pending is None


def test_leveldb_iterators_wait_only_for_a_write_holding_their_keys(tmp_path):
    """An iterator over keys the batch in flight does not touch reads at once (the names'
    expiry scan of every block); one over its keys waits for the write and sees it."""
    import threading
    db = LevelDB(str(tmp_path / "db"))
    release = threading.Event()
    hand_over = db._hand_over
    db._hand_over = lambda ops, write: hand_over(ops, lambda: (release.wait(10), write()))
    try:
        with db.write_behind():
            with db.write_batch() as b:
                b.put(b"\x02x", b"0")
            release.set()
            db.join()
            release.clear()
            with db.write_batch() as b:
                b.put(b"\x01a", b"1")
                b.delete(b"\x02x")
            assert list(db.iterator(prefix=b"\x03")) == [] and db._writer.busy     # no wait
            assert list(db.range(b"\x02y", b"\x03")) == [] and db._writer.busy
            threading.Timer(0.2, release.set).start()
            assert list(db.iterator(prefix=b"\x02")) == [] and not db._writer.busy  # waited
            assert list(db.iterator(prefix=b"\x01")) == [(b"\x01a", b"1")]
    finally:
        release.set()
        db.close()
