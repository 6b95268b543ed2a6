"""The whole-zone build's CPU work (rendering names, signing owners) spread over worker processes
while the building process reads and writes the store: a million names take minutes of one
core, and the build may use the others.

Work goes out in chunks and comes back in the order it went out (the building process doing
chunks itself whenever the workers have enough queued), so the build writes exactly what the
serial build writes (Ed25519 signatures are deterministic; tests compare the two). At most
2 * AHEAD chunks per worker are held at once, so memory stays bounded whatever the zone's size.
Small zones never start a process: the first `inline` chunks are done in the building process,
and the workers are started only when a further chunk comes.

Workers are spawned, not forked: the node that builds has threads (event loop, executors), and
a fork copies their locks in whatever state they are in.
"""
from __future__ import annotations

import collections
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from node.resolver.identity import ResolverKey
from node.resolver.zone.render import entry_bytes, render_name, sign

AHEAD = 3                 # chunks out per worker: one being done, the next ones queued
MAX_WORKERS = 3           # beside the building process, which takes its share of chunks too

log = logging.getLogger("dotbit.resolver.zone")

_key: ResolverKey | None = None


def default_workers() -> int:
    """One per core but the building process's own, up to MAX_WORKERS (none on one core).
    The cores this process may run on, where the system says (a container's CPU set)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(MAX_WORKERS, cores - 1))


def _init(seed: bytes) -> None:
    global _key
    _key = ResolverKey(seed)


def render_chunk(items: list) -> list:
    """[(name, value text)] -> [(name, [(owner key, entry bytes)], deps)] for the names that read
    no other name; one that does (an `import`) comes back as (name, None, None): its imports'
    values are in the store the building process holds, so it renders it there."""
    out = []
    for name, text in items:
        mine = name.decode("utf-8", "surrogateescape")
        owners, deps = render_name(name, lambda n: text if n == mine else None)
        if deps:
            out.append((name, None, None))
        else:
            out.append((name, [(o.key, entry_bytes(o.name.to_wire(), o.flags, 0, o.data)) for o in owners], []))
    return out


def sign_chunk(items: list, inception: int, expiration: int) -> list:
    """[(owner key, owner wire, flags, data, next owner wire)] -> [(owner key, entry bytes)]."""
    import dns.name
    out = []
    for k, wire, flags, data, next_wire in items:
        name = dns.name.from_wire(wire, 0)[0]
        nxt = dns.name.from_wire(next_wire, 0)[0]
        rrs = sign(_key, name, flags, [tuple(rr) for rr in data], nxt, inception, expiration)
        out.append((k, entry_bytes(wire, flags, expiration, rrs)))
    return out


class _Done:
    """A chunk done in the building process, queued among the workers' futures in its turn."""

    def __init__(self, value):
        self.value = value

    def done(self) -> bool:
        return True

    def result(self):
        return self.value

    def cancel(self) -> None:
        pass


class Lanes:
    """fn(chunk, *args) for chunk after chunk, results in submission order. The building
    process does a chunk itself whenever the workers already have AHEAD each queued: it would
    otherwise wait for them, and so the share each takes follows how busy the store keeps it."""

    def __init__(self, key: ResolverKey, workers: int, inline: int):
        self.key = key
        self.workers = workers
        self.inline = inline          # chunks done here before any worker starts
        self.pool: ProcessPoolExecutor | None = None
        self.out: collections.deque = collections.deque()
        self.submitted = 0

    def _busy(self) -> bool:
        return self.pool is not None and sum(not f.done() for f in self.out) >= AHEAD * self.workers

    def _here(self, fn, chunk, args):
        global _key
        _key = self.key
        return fn(chunk, *args)

    def submit(self, fn, chunk, *args):
        """Yields the results now due, oldest first."""
        self.submitted += 1
        if self.workers < 1 or self.submitted <= self.inline or self._busy():
            self.out.append(_Done(self._here(fn, chunk, args)))
        else:
            if self.pool is None:
                self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init, initargs=(self.key.seed,))
            future = self.pool.submit(fn, chunk, *args)
            future.work = (fn, chunk, args)
            self.out.append(future)
        # Done results leave in order; past 2 * AHEAD per worker held, wait for the oldest.
        while self.out and (self.out[0].done() or len(self.out) > 2 * AHEAD * max(1, self.workers)):
            yield self._result(self.out.popleft())

    def drain(self):
        while self.out:
            yield self._result(self.out.popleft())

    def _result(self, f):
        """A worker that failed (killed, out of memory, could not start) costs the build its
        help, not the build: its chunk and every later one are done here."""
        try:
            return f.result()
        except Exception as e:
            if self.workers:
                log.warning("zone build: worker processes failed (%s: %s); building on in this process",
                            type(e).__name__, e)
                self.workers = 0
            return self._here(*f.work)

    def close(self) -> None:
        for f in self.out:
            f.cancel()
        self.out.clear()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
