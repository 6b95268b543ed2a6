"""The tiny key-value interface the chain store sits on, with LevelDB and in-memory backends.

Writes happen only through `write_batch()`, which commits on a clean exit of the `with` block
and drops everything on an exception: a block's changes land together or not at all.
"""
from __future__ import annotations

import bisect
import threading
from contextlib import contextmanager
from typing import Iterator

_MISSING = object()


class _Writer:
    """One thread running one write at a time: start(fn), then wait() returns or raises what
    fn raised. Two bare locks hand over: an executor's futures and queue cost the connecting
    thread about 20 us a block more."""

    def __init__(self):
        self._go, self._done = threading.Lock(), threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._fn = None
        self._error: BaseException | None = None
        self.busy = False
        self._thread = threading.Thread(target=self._run, name="dotbit-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._go.acquire()
            fn = self._fn
            if fn is None:
                return
            try:
                fn()
            except BaseException as e:     # noqa: BLE001 — handed to the waiting thread
                self._error = e
            self._done.release()

    def start(self, fn) -> None:
        self._fn = fn
        self.busy = True
        self._go.release()

    def finished(self) -> bool:
        return not self._done.locked()

    def wait(self) -> None:
        if not self.busy:
            return
        self._done.acquire()
        self.busy = False
        error, self._error = self._error, None
        if error is not None:
            raise error

    def stop(self) -> None:
        self._fn = None
        self._go.release()
        self._thread.join()


class WriteBehind:
    """Write-behind mode of a store (`with db.write_behind():`), for the bulk connect loops.

    Why: committing a block's batch is LevelDB inserting every key into its memtable, about a
    sixth of a reindex on the connecting thread, and plyvel releases the GIL for it. In this
    mode a batch that exits cleanly is handed to one writer thread, and the caller goes on to
    the next block while it is written. The rules that keep this the serial store:
      - one write in flight, in order: a batch waits for the one before it to be written;
      - each batch is still ONE atomic write (the tip record inside it), so a crash leaves
        the store exactly as the serial path could have left it;
      - get() reads the batch in flight first, so every read sees the store as if it were
        written; an iterator or snapshot first waits for it (join), as does leaving the mode
        (LevelDB: unless the batch holds no key the iterator would read);
      - a batch that raises is dropped before it is ever handed over, as before;
      - a failed write is raised at the next join (the next batch, iterator or the mode's
        end), one block late: the store then holds the blocks before it, each whole.
    """

    _pending: dict | None = None     # key -> value (None: deleted) of the batch in flight
    _writer: _Writer | None = None   # in write-behind mode only

    @contextmanager
    def write_behind(self):
        if self._writer is not None:                 # nested: the outer mode goes on
            yield
            return
        self._writer = _Writer()
        try:
            yield
        finally:
            writer = self._writer
            try:
                self.join()
            finally:
                self._writer = None
                writer.stop()

    def join(self) -> None:
        """Waits for the batch in flight; raises its write error, if any."""
        writer = self._writer
        if writer is None or not writer.busy:
            return
        try:
            writer.wait()
        finally:
            self._pending = None

    def _join_unless_outside(self, start: bytes, stop: bytes | None) -> None:
        """Before an iterator over [start, stop) (stop None: no end): joins, unless the write
        in flight holds no key in that range; the iterator then reads the same keys whether
        the write has landed or not (LevelDB shows a batch to an iterator whole or not)."""
        pending, writer = self._pending, self._writer
        if pending is None or writer is None or writer.finished() or not start:
            self.join()
            return
        for key in pending:
            if start <= key and (key < stop if stop is not None else key.startswith(start)):
                self.join()
                return

    def _hand_over(self, ops: dict, write) -> None:
        self.join()
        self._pending = ops
        self._writer.start(write)

    def _pending_get(self, key: bytes):
        pending = self._pending
        return _MISSING if pending is None else pending.get(key, _MISSING)


class _Recorder:
    """A batch in write-behind mode: the backend's batch, and its operations kept for reads
    until it is written."""

    __slots__ = ("ops", "inner")

    def __init__(self, inner):
        self.ops: dict[bytes, bytes | None] = {}
        self.inner = inner

    def put(self, key: bytes, value: bytes) -> None:
        self.ops[key] = value
        self.inner.put(key, value)

    def delete(self, key: bytes) -> None:
        self.ops[key] = None
        self.inner.delete(key)


class MemoryBatch:
    __slots__ = ("ops",)

    def __init__(self):
        self.ops: dict[bytes, bytes | None] = {}

    def put(self, key: bytes, value: bytes) -> None:
        self.ops[key] = value

    def delete(self, key: bytes) -> None:
        self.ops[key] = None


class MemoryDB(WriteBehind):
    """Unit-test backend with the same semantics as LevelDB (sorted keys, atomic batches)."""

    def __init__(self):
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] | None = None    # sorted key list, rebuilt lazily

    def get(self, key: bytes) -> bytes | None:
        value = self._pending_get(key)
        return self._data.get(key) if value is _MISSING else value

    @contextmanager
    def write_batch(self):
        batch = MemoryBatch()
        yield batch
        if self._writer is not None:
            self._hand_over(batch.ops, lambda: self._apply(batch.ops))
        else:
            self._apply(batch.ops)

    def _apply(self, ops: dict) -> None:
        for k, v in ops.items():
            if v is None:
                self._data.pop(k, None)
            else:
                self._data[k] = v
        self._keys = None

    def iterator(self, prefix: bytes = b"", reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        self.join()
        if self._keys is None:
            self._keys = sorted(self._data)
        keys = self._keys
        lo = bisect.bisect_left(keys, prefix)
        hi = lo
        while hi < len(keys) and keys[hi].startswith(prefix):
            hi += 1
        selected = keys[lo:hi]
        if reverse:
            selected.reverse()
        data = self._data
        return iter([(k, data[k]) for k in selected])

    def keys(self, prefix: bytes = b"") -> Iterator[bytes]:
        return (k for k, _ in self.iterator(prefix))

    def range(self, start: bytes, stop: bytes, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Keys in [start, stop) (the zone's neighbour lookups: seek, not scan)."""
        self.join()
        if self._keys is None:
            self._keys = sorted(self._data)
        keys = self._keys
        selected = keys[bisect.bisect_left(keys, start):bisect.bisect_left(keys, stop)]
        if reverse:
            selected.reverse()
        data = self._data
        return iter([(k, data[k]) for k in selected])

    def snapshot(self) -> "MemoryDB":
        """A read-only view of the store as it is now, for readers in another thread."""
        self.join()
        snap = MemoryDB()
        snap._data = dict(self._data)
        return snap

    def close(self) -> None:
        pass


class LevelDB(WriteBehind):
    def __init__(self, path: str, cache_mb: int = 64):
        import plyvel  # imported here so pure layers and the memory backend never need it
        # compression=None: the values are hashes, keys and msgpack'd integers, which Snappy
        # shrinks little (the 2,000-block bench chain after a reindex: 82 MB against 76 MB),
        # while compressing them was most of LevelDB's compaction thread: 4.9 -> 1.4 s of CPU
        # in that reindex, on the core --par 2's worker needs. Stores written compressed still open
        # (LevelDB marks each block); compaction rewrites them uncompressed over time.
        self._db = plyvel.DB(path, create_if_missing=True, lru_cache_size=cache_mb << 20,
                             write_buffer_size=32 << 20, max_open_files=256, compression=None)

    def get(self, key: bytes) -> bytes | None:
        value = self._pending_get(key)
        return self._db.get(key) if value is _MISSING else value

    @contextmanager
    def write_batch(self):
        if self._writer is not None:
            # A plain batch, written by the writer thread (WriteBatch.write releases the GIL).
            rec = _Recorder(self._db.write_batch())
            yield rec
            self._hand_over(rec.ops, rec.inner.write)
            return
        # transaction=True: plyvel writes the batch only if the block exits without exception.
        with self._db.write_batch(transaction=True) as batch:
            yield batch

    def iterator(self, prefix: bytes = b"", reverse: bool = False):
        self._join_unless_outside(prefix, None)
        return self._db.iterator(prefix=prefix, reverse=reverse)

    def range(self, start: bytes, stop: bytes, reverse: bool = False):
        self._join_unless_outside(start, stop)
        return self._db.iterator(start=start, stop=stop, reverse=reverse)

    def keys(self, prefix: bytes = b""):
        """Keys alone: reindex deletes every projection key, and their values need not be read."""
        self._join_unless_outside(prefix, None)
        return self._db.iterator(prefix=prefix, include_value=False)

    def snapshot(self) -> "LevelSnapshot":
        """A read-only view of the store as it is now (LevelDB keeps it consistent while
        blocks connect), for readers in another thread; close() it when done."""
        self.join()
        return LevelSnapshot(self._db.snapshot())

    def close(self) -> None:
        self.join()
        self._db.close()


class LevelSnapshot:
    def __init__(self, snap):
        self._snap = snap

    def get(self, key: bytes) -> bytes | None:
        return self._snap.get(key)

    def iterator(self, prefix: bytes = b"", reverse: bool = False):
        return self._snap.iterator(prefix=prefix, reverse=reverse)

    def range(self, start: bytes, stop: bytes, reverse: bool = False):
        return self._snap.iterator(start=start, stop=stop, reverse=reverse)

    def close(self) -> None:
        self._snap.close()
