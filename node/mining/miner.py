"""CPU proof-of-work search.

The first 64 bytes of the 112-byte header never change while the nonce is ground, so their
SHA-256 state (the midstate) is computed once and copied for every nonce; only the last 48
bytes are hashed per attempt. A pool of worker processes splits the nonce space so every core
hashes; the GIL keeps threads from doing the same.
"""
from __future__ import annotations

import asyncio
import hashlib
import multiprocessing as mp
import os
import struct
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from core.primitives import Header

NONCE_SPACE = 1 << 32
_CHUNK = 1 << 16          # nonces per work unit: short enough to notice a stop quickly


def search_nonce(header_bytes: bytes, target: int, start: int, count: int) -> int | None:
    """First nonce in [start, start+count) whose double SHA-256 meets `target`, or None."""
    mid = hashlib.sha256(header_bytes[:64])
    tail = header_bytes[64:108]
    sha256 = hashlib.sha256
    from_bytes = int.from_bytes
    pack_nonce = struct.Struct("<I").pack
    end = min(start + count, NONCE_SPACE)
    for nonce in range(start, end):
        h = mid.copy()
        h.update(tail + pack_nonce(nonce))
        if from_bytes(sha256(h.digest()).digest(), "big") <= target:
            return nonce
    return None


def solve_quick(header: Header, target: int, start: int = 0, count: int = NONCE_SPACE) -> Header | None:
    """Single-process search: right for regtest's trivial targets, where starting worker
    processes would cost more than the hashing."""
    nonce = search_nonce(header.to_bytes(), target, start, count)
    return None if nonce is None else replace(header, nonce=nonce)


def _context():
    # fork would copy the node's event loop and sockets into the workers; forkserver does not.
    methods = mp.get_all_start_methods()
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


class Miner:
    """A pool of hashing processes (default: one per core)."""

    def __init__(self, processes: int | None = None):
        self.processes = processes or os.cpu_count() or 1
        self._pool = ProcessPoolExecutor(self.processes, mp_context=_context())
        self.hashes = 0       # nonces tried so far (for hash-rate reports)

    def worker_pids(self) -> list[int]:
        return list((self._pool._processes or {}).keys())   # no public accessor exists

    def solve(self, header: Header, target: int, stop=None) -> Header | None:
        """Searches the whole nonce space of `header` in chunks across the pool. `stop` (an
        object with is_set()) abandons the search between chunks; returns None when stopped
        or when no nonce works (the caller changes time or the coinbase and retries).
        For callers without an event loop (tests, benchmarks); the node awaits solve_async."""
        return asyncio.run(self.solve_async(header, target, stop))

    async def solve_async(self, header: Header, target: int, stop=None) -> Header | None:
        """As solve, without blocking the event loop: chunks are awaited, not waited on.
        Chunks are consumed in nonce order, so the lowest solving nonce submitted wins."""
        loop = asyncio.get_running_loop()
        data = header.to_bytes()
        next_start = 0
        inflight: list[asyncio.Future] = []
        try:
            while True:
                while len(inflight) < self.processes * 2 and next_start < NONCE_SPACE:
                    inflight.append(loop.run_in_executor(self._pool, search_nonce, data, target,
                                                         next_start, _CHUNK))
                    next_start += _CHUNK
                if not inflight:
                    return None
                nonce = await inflight.pop(0)
                self.hashes += _CHUNK
                if nonce is not None:
                    return replace(header, nonce=nonce)
                if stop is not None and stop.is_set():
                    return None
        finally:
            for f in inflight:
                f.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
