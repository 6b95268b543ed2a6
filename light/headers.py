"""The light client's header chain: a flat file of verified 112-byte headers, and its sync.

`headers.dat` holds the headers of the most-work chain we know, header h at offset 112*h (the
hashed bytes only: a merge-mined header's AuxPoW is checked on arrival, then dropped), so
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

import asyncio
import fcntl
import functools
import os
from contextlib import contextmanager
from typing import Awaitable, Callable

from core.crypto import sha256d
from core.primitives import HEADER_SIZE
from light.verdict import VerifyError
from light.verify import PREV, extend_headers, headers_work

BATCH = 2000                       # the HTTP API's /v1/headers maximum, and a p2p headers message's
Fetch = Callable[[int, int], Awaitable[list]]
Ask = Callable[[list], Awaitable[list]]        # p2p getheaders: locator -> headers after it


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


class _Ahead:
    """The next batch, asked for while this one is checked. The check runs in a worker thread
    (`_checked`), so the event loop keeps that request moving and the source prepares and
    sends it meanwhile: a sync costs about the larger of the source's time and ours per batch,
    not their sum. At most one request is ahead, and an answer that no longer fits (another
    process moved the store) is still awaited and dropped, so a connection's answers stay in order."""
    _NONE = object()

    def __init__(self):
        self.key, self.task = None, None

    def ask(self, key, request: Awaitable) -> None:
        self.key, self.task = key, asyncio.ensure_future(request)

    async def take(self, key):
        """The answer asked ahead for `key`, or _Ahead._NONE."""
        task, asked = self.task, self.key
        self.key, self.task = None, None
        if task is None:
            return self._NONE
        got = await task
        return got if asked == key else self._NONE

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self.key, self.task = None, None


async def _checked(store: HeaderStore, tip: int, ours: bytes, new: list, now, checkpoints, progress) -> bool:
    """_append in a worker thread (see _Ahead); the store's file lock still guards it."""
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(_append, store, tip, ours, new, now, checkpoints, progress))


async def sync(store: HeaderStore, fetch: Fetch, now: Callable[[], float],
               checkpoints: dict[int, bytes] | None = None,
               progress: Callable[[int], None] | None = None, note: Callable[[str], None] | None = None) -> int:
    """Brings `store` to the most-work chain of `store` and the source; returns the new height.
    Raises VerifyError if the source sends an invalid header (the valid ones before it stay)."""
    ahead = _Ahead()
    try:
        while True:
            with store.locked():
                tip = store.height
                ours = store.header(tip)
            batch = await ahead.take(tip)
            if batch is _Ahead._NONE:
                batch = await fetch(tip, BATCH)
            if batch and batch[0][:HEADER_SIZE] == ours:
                new = batch[1:]
                if not new:
                    return tip
                if len(batch) < BATCH:
                    if _append(store, tip, ours, new, now, checkpoints, progress):
                        return store.height
                    continue                   # another process moved the store: start over
                ahead.ask(tip + len(new), fetch(tip + len(new), BATCH))
                await _checked(store, tip, ours, new, now, checkpoints, progress)
                continue                       # (if another process moved the store: start over)
            await _maybe_switch(store, fetch, now, checkpoints, progress, note)
            return store.height
    finally:
        ahead.cancel()


def _append(store: HeaderStore, tip: int, ours: bytes, new: list, now, checkpoints, progress) -> bool:
    """Checks `new` on top of our tip and writes what passed; False if another process moved
    the store meanwhile. Raises VerifyError at the first bad header, the good ones kept."""
    with store.locked():
        if store.height != tip or store.header(tip) != ours:
            return False
        err = None
        try:          # appends in place; whatever passed is kept even if a later one fails
            extend_headers(store.chain, new, store.params, int(now()), checkpoints)
        except VerifyError as e:
            err = e
        store._write_from(tip + 1, store.chain[tip + 1:])
    if progress:
        progress(store.height)
    if err is not None:
        raise err
    return True


def _adopt(store: HeaderStore, fork: int, branch: list, note) -> bool:
    """Switches to `branch` (our headers to `fork`, then checked ones) if it has more work
    above the fork than ours; otherwise notes that the source is on a lower-work chain."""
    with store.locked():
        if store.chain[:fork + 1] != branch[:fork + 1]:
            raise VerifyError("header", "our store changed during a reorg; try again")
        theirs, ours = headers_work(branch[fork + 1:]), headers_work(store.chain[fork + 1:])
        if theirs > ours:
            store._write_from(fork + 1, branch[fork + 1:])
            return True
    if note and ours:
        note(f"serves a chain with less work than ours (tip at height {len(branch) - 1}, ours at "
             f"{store.height}, forked at {fork})")
    return False


async def _maybe_switch(store: HeaderStore, fetch: Fetch, now, checkpoints, progress, note) -> None:
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
    _adopt(store, fork, branch, note)


async def _fork_point(store: HeaderStore, fetch: Fetch) -> int:
    """The highest height at which the source's header equals ours (0 at worst: genesis is
    fixed). Steps back 1, 2, 4, ... then scans forward, so a reorg of depth d costs about
    log2(d) requests plus d headers."""
    tip = store.height
    step, low, high = 1, 0, tip
    while step <= tip:
        h = tip - step
        got = await fetch(h, 1)
        if got and got[0][:HEADER_SIZE] == store.header(h):
            low = h
            break
        high, step = h, step * 2
    fork = low
    while fork < high:
        batch = await fetch(fork + 1, min(BATCH, high - fork))
        same = 0
        for raw in batch:
            if raw[:HEADER_SIZE] != store.header(fork + 1 + same):
                break
            same += 1
        fork += same
        if same < len(batch) or not batch:
            break
    return fork


def _locator(store: HeaderStore) -> dict[bytes, int]:
    """Our chain's hashes -> heights, from the tip back: ten dense, then doubling steps, then
    genesis (insertion order is the locator), as full nodes build theirs."""
    out, step, h = {}, 1, store.height
    while h > 0 and len(out) < 63:
        out[store.hash(h)] = h
        if len(out) >= 10:
            step *= 2
        h -= step
    out[store.hash(0)] = 0
    return out


async def sync_locator(store: HeaderStore, ask: Ask, now: Callable[[], float],
                       checkpoints: dict[int, bytes] | None = None, progress=None, note=None) -> int:
    """`sync` for a p2p peer, which answers a locator of our chain with the headers of its own
    main chain after the highest locator hash it shares: on our tip they extend our chain;
    below it they are a branch, taken only if it has more work than ours."""
    ahead = _Ahead()
    try:
        return await _sync_locator(store, ask, now, checkpoints, progress, note, ahead)
    finally:
        ahead.cancel()


async def _sync_locator(store: HeaderStore, ask: Ask, now, checkpoints, progress, note, ahead: _Ahead) -> int:
    while True:
        with store.locked():
            tip, ours = store.height, store.header(store.height)
            heights = _locator(store)
        batch = await ahead.take(tip)
        if batch is _Ahead._NONE:
            batch = await ask(list(heights))
        if not batch:
            return tip                        # nothing beyond a header we have
        fork = heights.get(batch[0][PREV])
        if fork is None:
            raise VerifyError("header", "the headers sent do not start from our locator")
        fork, batch, full = await _skip_known(store, ask, tip, fork, batch)
        if not batch:
            return tip                        # the peer is behind us on our own chain
        if fork != tip:
            branch = list(store.chain[:fork + 1])
            while batch:
                extend_headers(branch, batch, store.params, int(now()), checkpoints)
                if progress:
                    progress(len(branch) - 1)
                batch = await ask([sha256d(branch[-1])]) if full else []
                full = len(batch) == BATCH
            _adopt(store, fork, branch, note)
            return store.height
        if not full:
            if _append(store, tip, ours, batch, now, checkpoints, progress):
                return store.height
            continue
        # On our tip the peer's next headers follow its last one: ask now (see _Ahead).
        ahead.ask(tip + len(batch), ask([sha256d(batch[-1][:HEADER_SIZE])]))
        await _checked(store, tip, ours, batch, now, checkpoints, progress)


async def _skip_known(store: HeaderStore, ask: Ask, tip: int, fork: int, batch: list) -> tuple[int, list, bool]:
    """Drops the headers we already hold from the front of a peer's answer: the locator is
    sparse, so a peer may start well below where its chain leaves ours (asked on while a
    whole batch was ours). Returns the true fork height, the headers above it, and whether the
    peer's answer was a full batch (so it has more to send)."""
    while True:
        same = 0
        while same < len(batch) and fork + 1 + same <= tip and batch[same][:HEADER_SIZE] == store.chain[fork + 1 + same]:
            same += 1
        fork, rest = fork + same, batch[same:]
        if rest or len(batch) < BATCH:
            return fork, rest, len(batch) == BATCH
        batch = await ask([store.hash(fork)])
