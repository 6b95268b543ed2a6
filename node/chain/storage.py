"""The tiny key-value interface the chain store sits on, with LevelDB and in-memory backends.

Writes happen only through `write_batch()`, which commits on a clean exit of the `with` block
and drops everything on an exception: a block's changes land together or not at all.

Batches are written by the thread that makes them. Until 2026-12-02 `--par 2` handed each
batch to a writer thread (write-behind); with the signature worker a native thread that needs
no GIL, that writer was the only other thread wanting it, and both the handing over and its
return from LevelDB waited on the connecting thread's GIL (up to a switch interval each): a
block's write started about 0.5 ms late and the connecting thread still waited for it at the
next batch. Without it (same-hour alternating runs, bench/sync.py and bench/validate.py's
reindex) a p2p sync took 6.87 s against 7.89 s and a reindex 6.54 s against 7.26 s, at 1.2-1.5 s
less CPU.
"""
from __future__ import annotations

import bisect
from contextlib import contextmanager
from typing import Iterator


class MemoryBatch:
    __slots__ = ("ops",)

    def __init__(self):
        self.ops: dict[bytes, bytes | None] = {}

    def put(self, key: bytes, value: bytes) -> None:
        self.ops[key] = value

    def delete(self, key: bytes) -> None:
        self.ops[key] = None


class MemoryDB:
    """Unit-test backend with the same semantics as LevelDB (sorted keys, atomic batches)."""

    def __init__(self):
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] | None = None    # sorted key list, rebuilt lazily

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    @contextmanager
    def write_batch(self):
        batch = MemoryBatch()
        yield batch
        for k, v in batch.ops.items():
            if v is None:
                self._data.pop(k, None)
            else:
                self._data[k] = v
        self._keys = None

    def iterator(self, prefix: bytes = b"", reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
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
        snap = MemoryDB()
        snap._data = dict(self._data)
        return snap

    def close(self) -> None:
        pass


class LevelDB:
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
        return self._db.get(key)

    @contextmanager
    def write_batch(self):
        # transaction=True: plyvel writes the batch only if the block exits without exception.
        with self._db.write_batch(transaction=True) as batch:
            yield batch

    def iterator(self, prefix: bytes = b"", reverse: bool = False):
        return self._db.iterator(prefix=prefix, reverse=reverse)

    def range(self, start: bytes, stop: bytes, reverse: bool = False):
        return self._db.iterator(start=start, stop=stop, reverse=reverse)

    def keys(self, prefix: bytes = b""):
        """Keys alone: reindex deletes every projection key, and their values need not be read."""
        return self._db.iterator(prefix=prefix, include_value=False)

    def snapshot(self) -> "LevelSnapshot":
        """A read-only view of the store as it is now (LevelDB keeps it consistent while
        blocks connect), for readers in another thread; close() it when done."""
        return LevelSnapshot(self._db.snapshot())

    def close(self) -> None:
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
