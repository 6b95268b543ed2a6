"""The light client's header chain: a flat file of verified 112-byte headers, and its sync.

`headers.dat` holds the headers of the most-work chain we know, header h at offset 112*h, so
a sync resumes from the file's length and a torn last write (a crash mid-append) is cut off
on open. Only headers checked by verify.extend_headers are ever written. Writers take an
exclusive lock on `headers.lock`, so a stub and a one-shot query can share one directory.

Sync asks a source for headers from our tip on (the first one returned must be our tip).
If it is not, the source is on another branch: we find the fork point by stepping back
exponentially, download its branch, check it on top of our headers up to the fork, and
switch only if it has more work (a longer chain at equal difficulty). Sources are injected as
`fetch(start, count) -> list[raw header]`, so the sync knows nothing of HTTP.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from typing import Awaitable, Callable

from core.crypto import sha256d
from core.primitives import HEADER_SIZE
from light.verdict import VerifyError
from light.verify import extend_headers, headers_work

BATCH = 2000                       # the HTTP API's /v1/headers maximum
Fetch = Callable[[int, int], Awaitable[list]]


class StoreError(Exception):
    pass


class HeaderStore:
    def __init__(self, directory: str, params):
        self.params = params
        self.path = os.path.join(directory, "headers.dat")
        self.lock_path = os.path.join(directory, "headers.lock")
        os.makedirs(directory, exist_ok=True)
        self.chain: list[bytes] = []
        self._size: int | None = None
        with self.locked():
            pass

    @contextmanager
    def locked(self):
        """Exclusive access, with the file reloaded if another process grew or cut it."""
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._reload()
                yield self
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _reload(self) -> None:
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            size = -1
        if size == self._size:
            return
        genesis = self.params.genesis.header.to_bytes()
        data = b""
        if size > 0:
            with open(self.path, "rb") as f:
                data = f.read()
        whole = len(data) - len(data) % HEADER_SIZE
        if whole != len(data) or not data:
            with open(self.path, "ab") as f:      # a torn append, or a fresh store
                f.truncate(whole)
                if not whole:
                    f.write(genesis)
            data = data[:whole] or genesis
        if data[:HEADER_SIZE] != genesis:
            raise StoreError(f"{self.path} holds another network's headers")
        self.chain = [data[i:i + HEADER_SIZE] for i in range(0, len(data), HEADER_SIZE)]
        self._size = len(data)

    @property
    def height(self) -> int:
        return len(self.chain) - 1

    def header(self, height: int) -> bytes:
        return self.chain[height]

    def hash(self, height: int) -> bytes:
        return sha256d(self.chain[height])

    def _write_from(self, height: int, raws: list[bytes]) -> None:
        """Replaces everything from `height` on with `raws` (caller holds the lock)."""
        with open(self.path, "r+b") as f:
            f.truncate(height * HEADER_SIZE)
            f.seek(height * HEADER_SIZE)
            f.write(b"".join(raws))
            f.flush()
            os.fsync(f.fileno())
        del self.chain[height:]
        self.chain.extend(raws)
        self._size = len(self.chain) * HEADER_SIZE


async def sync(store: HeaderStore, fetch: Fetch, now: Callable[[], float],
               checkpoints: dict[int, bytes] | None = None,
               progress: Callable[[int], None] | None = None) -> int:
    """Brings `store` to the most-work chain of `store` and the source; returns the new height.
    Raises VerifyError if the source sends an invalid header (the valid ones before it stay)."""
    params = store.params
    while True:
        with store.locked():
            tip = store.height
            ours = store.header(tip)
        batch = await fetch(tip, BATCH)
        if batch and batch[0] == ours:
            new = batch[1:]
            if not new:
                return tip
            with store.locked():
                if store.height != tip or store.header(tip) != ours:
                    continue                       # another process moved the store: start over
                err = None
                try:          # appends in place; whatever passed is kept even if a later one fails
                    extend_headers(store.chain, new, params, int(now()), checkpoints)
                except VerifyError as e:
                    err = e
                store._write_from(tip + 1, store.chain[tip + 1:])
            if progress:
                progress(store.height)
            if err is not None:
                raise err
            if len(batch) < BATCH:
                return store.height
            continue
        await _maybe_switch(store, fetch, now, checkpoints, progress)
        return store.height


async def _maybe_switch(store: HeaderStore, fetch: Fetch, now, checkpoints, progress) -> None:
    """The source does not have our tip: take its branch if it has more work than ours."""
    fork = await _fork_point(store, fetch)
    branch = list(store.chain[:fork + 1])
    height = fork + 1
    while True:
        batch = await fetch(height, BATCH)
        if not batch:
            break
        extend_headers(branch, batch, store.params, int(now()), checkpoints)
        height += len(batch)
        if progress:
            progress(height - 1)
        if len(batch) < BATCH:
            break
    with store.locked():
        if store.chain[:fork + 1] != branch[:fork + 1]:
            raise VerifyError("header", "our store changed during a reorg; try again")
        if headers_work(branch[fork + 1:]) > headers_work(store.chain[fork + 1:]):
            store._write_from(fork + 1, branch[fork + 1:])


async def _fork_point(store: HeaderStore, fetch: Fetch) -> int:
    """The highest height at which the source's header equals ours (0 at worst: genesis is
    fixed). Steps back 1, 2, 4, ... then scans forward, so a reorg of depth d costs about
    log2(d) requests plus d headers."""
    tip = store.height
    step, low, high = 1, 0, tip
    while step <= tip:
        h = tip - step
        got = await fetch(h, 1)
        if got and got[0] == store.header(h):
            low = h
            break
        high, step = h, step * 2
    fork = low
    while fork < high:
        batch = await fetch(fork + 1, min(BATCH, high - fork))
        same = 0
        for raw in batch:
            if raw != store.header(fork + 1 + same):
                break
            same += 1
        fork += same
        if same < len(batch) or not batch:
            break
    return fork
