"""The tiny key-value interface the chain store sits on, with LevelDB and in-memory backends.

Writes happen only through `write_batch()`, which commits on a clean exit of the `with` block
and drops everything on an exception: a block's changes land together or not at all.
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
        self._db = plyvel.DB(path, create_if_missing=True, lru_cache_size=cache_mb << 20,
                             write_buffer_size=32 << 20, max_open_files=256)

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
