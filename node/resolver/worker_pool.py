"""The node's side of --dns-workers N: starts N DNS worker processes (worker.py) on the DNS
port, answers their name lookups from the store, pushes the events that drop their cached
answers, collects their counters for /metrics, restarts one that dies (loudly), and stops
them with the node.

Workers are started with multiprocessing's spawn method: a fresh interpreter, never a fork of
a node holding LevelDB and an event loop. The resolver key's seed reaches them through the
start pipe multiprocessing pickles the arguments into, never a command line or a file.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import socket
import struct
import time

from core.names.proof import TERM_PRESENT
from core.names.rules import is_expired
from node.logs import JSONFormatter
from node.resolver import connshare, worker
from node.resolver.sharedlimit import new_table
from node.resolver.worker_link import MAX_FRAME, MAX_SNAP_NAMES, FrameBuffer, frame, unframe
from node.resolver.worker_link import Framer

log = logging.getLogger("dotbit.resolver.workers")

START_SECONDS = 60.0            # a spawned interpreter imports dnspython and the node's modules
RESTART_DELAY = 1.0
MAX_RESTARTS = 5                # within RESTART_WINDOW; beyond that a worker is left down, loudly
RESTART_WINDOW = 60.0
STOP_SECONDS = 5.0
NAMES_BATCH = 5000
MAX_KNOWN_NAMES = 2_000_000     # beyond this, workers ask the node for every name (memory bound)
MAX_GETM = 64                   # names in one "getm": 64 replies of <= ~1.2 KB fit a socket buffer (212 KB)


class _Worker:
    """One worker process and its two links (worker_link.py)."""

    def __init__(self, index: int):
        self.index = index
        self.proc = None
        self.lookups = None         # the node's end of the lookup socketpair (served by add_reader)
        self.frames = None          # worker_link.FrameBuffer of that socket
        self.names = None           # the name index scan feeding its "names" questions
        self.names_sent = 0
        self.events = None
        self.http_link = None       # the transport of the node's end of its HTTP link, or None
        self.tasks: list[asyncio.Task] = []
        self.stats: dict = {}
        self.deaths: list[float] = []
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()


class WorkerPool:
    def __init__(self, count: int, resolver, host: str, port: int, limiter=None, caps=None, http_port=None):
        self.count = count
        self.resolver = resolver        # its chain, params, ekeys, policy and key are what workers read
        self.host = host
        self.port = port
        # The signed HTTP API's port, served by the workers too (http_worker.py), or None. The
        # node does not listen on it: it answers the workers' lookups, and a node taking a share
        # of the connections would slow every worker waiting on it.
        self.http_port = http_port
        self._conns = None              # connshare's table, lock and salt (HTTP per-source caps)
        self.limiter = limiter          # the node's ratelimit.ResponseRateLimiter: its settings, or None
        self.caps = caps
        self.workers = [_Worker(i) for i in range(count)]
        self._ctx = multiprocessing.get_context("spawn")
        self._shared = None
        self._stopping = False

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.limiter is not None:
            self._shared = (*new_table(self._ctx), os.urandom(16))
        if self.http_port is not None:
            self._conns = (*connshare.new_table(self._ctx, self.count), os.urandom(16))
        placeholders = self._reserve() if self.port == 0 else []
        if self.http_port == 0:
            placeholders.append(self._reserve_http())
        try:
            await asyncio.gather(*(self._spawn(w) for w in self.workers))
        except BaseException:
            await self.stop()
            raise
        finally:
            for s in placeholders:     # the workers hold the port now
                s.close()
        log.info("DNS on %s:%d%s answered by %d worker processes (pids %s)", self.host, self.port,
                 f" and the signed HTTP API on port {self.http_port}" if self.http_port is not None else "",
                 self.count, ", ".join(str(w.pid) for w in self.workers))

    def _reserve(self) -> list[socket.socket]:
        """Port 0: one port free for both UDP and TCP, held (SO_REUSEPORT, TCP not listening)
        until the workers have bound it."""
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        udp.bind((self.host, 0))
        self.port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        tcp.bind((self.host, self.port))
        return [udp, tcp]

    def _reserve_http(self) -> socket.socket:
        """Port 0 for HTTP: a free TCP port, held (SO_REUSEPORT, not listening) until the workers
        have bound it."""
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        tcp.bind((self.host, 0))
        self.http_port = tcp.getsockname()[1]
        return tcp

    def _conf(self) -> dict:
        r, rl, root = self.resolver, self.limiter, logging.getLogger()
        return {"parent": os.getpid(), "host": self.host, "port": self.port, "params": r.params,
                "seed": r.key.seed, "height": r.chain.height, "serial": r.responder.serial(),
                "remote_policy": any(name != "chain" for name in r.policy.sources),
                "rate": rl.rate if rl else 0, "exempt": [str(n) for n in rl.exempt] if rl else [],
                "caps": self.caps, "http_port": self.http_port, "workers": self.count, "conns": self._conns,
                "log_level": logging.getLevelName(root.level).lower(),
                "log_format": "json" if any(isinstance(h.formatter, JSONFormatter) for h in root.handlers)
                else "text"}

    async def _spawn(self, w: _Worker) -> None:
        lookups, lookups_child = socket.socketpair()
        events, events_child = socket.socketpair()
        conf = self._conf()
        http = None
        if self.http_port is not None:
            http, conf["http_link"] = socket.socketpair()
        w.proc = self._ctx.Process(target=worker.main, name=f"dotbit-dns-{w.index}", daemon=True,
                                   args=(w.index, conf, lookups_child, events_child, self._shared))
        try:
            w.proc.start()
        finally:
            lookups_child.close()
            events_child.close()
            if http is not None:
                conf["http_link"].close()
        if http is not None:
            w.http_link, _ = await asyncio.get_running_loop().create_unix_connection(
                lambda: _HTTPLink(self, w), sock=http)
        lookups.setblocking(False)
        w.lookups, w.frames, w.names = lookups, FrameBuffer(), None
        asyncio.get_running_loop().add_reader(lookups.fileno(), self._serve_lookups, w)
        w.events = await asyncio.open_unix_connection(sock=events, limit=MAX_FRAME)
        first = await asyncio.wait_for(_read_frame(w.events[0]), START_SECONDS)
        if first is None or first[0] != "ready":
            raise OSError(first[1] if first else f"DNS worker {w.index} exited while starting")
        # Events pushed while it started went nowhere: it starts over from the tip as it is now.
        w.events[1].write(frame(self.tip_event()) + frame(["inv", None]))
        w.tasks = [asyncio.create_task(self._watch(w))]

    async def stop(self) -> None:
        self._stopping = True
        for w in self.workers:
            for t in w.tasks:
                t.cancel()
            self._close_lookups(w)
            if w.events is not None:
                w.events[1].close()     # the worker sees its event link close and exits
        deadline = time.monotonic() + STOP_SECONDS
        while any(w.alive() for w in self.workers) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for w in self.workers:
            if w.alive():
                log.warning("DNS worker %d (pid %d) did not stop: killed", w.index, w.pid)
                w.proc.kill()
                w.proc.join(1)

    async def _watch(self, w: _Worker) -> None:
        """Read the worker's stats; when its link closes, it has died: restart it, or say why not."""
        while (msg := await _read_frame(w.events[0])) is not None:
            if msg[0] == "stats" and isinstance(msg[1], dict):
                w.stats = msg[1]
        if self._stopping:
            return
        await asyncio.sleep(0.1)
        code = w.proc.exitcode
        now = time.monotonic()
        w.deaths = [t for t in w.deaths if now - t < RESTART_WINDOW] + [now]
        if len(w.deaths) > MAX_RESTARTS:
            log.critical("DNS worker %d (pid %d) died (exit code %s) %d times within %d s: NOT restarted; "
                         "DNS now runs on %d of %d workers", w.index, w.pid, code, len(w.deaths),
                         RESTART_WINDOW, sum(x.alive() for x in self.workers), self.count)
            return
        log.error("DNS worker %d (pid %d) died (exit code %s): restarting it", w.index, w.pid, code)
        self._close_lookups(w)
        await asyncio.sleep(RESTART_DELAY)
        if self._stopping:
            return
        w.restarts += 1
        try:
            await self._spawn(w)
        except (OSError, asyncio.TimeoutError) as e:
            log.critical("DNS worker %d could not be restarted: %s", w.index, e)

    # --- lookups and events -----------------------------------------------------------------------

    def _serve_lookups(self, w: _Worker) -> None:
        """Readable lookup socket: answer every whole question. Plain recv/send instead of an
        asyncio stream: a lookup is then two syscalls and no task switch. A worker waits for
        the replies before it asks again and asks at most worker.PREFETCH_MAX at once (each
        reply ~1.4 KB at most), so they always fit the empty socket buffer."""
        try:
            data = w.lookups.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        try:
            requests = w.frames.feed(data) if data else None
        except (ValueError, ConnectionError):
            requests = None
        if requests is None:                # the worker went away (its watcher restarts it)
            self._close_lookups(w)
            return
        for req in requests:
            try:
                reply = [req[0], True, self._names(w) if req[1] == "names" else self.lookup(req[1:])]
            except Exception as e:          # the worker answers SERVFAIL; the node goes on
                log.exception("DNS worker %d lookup %r failed", w.index, req[1:2])
                reply = [req[0] if isinstance(req, list) and req else 0, False, f"{type(e).__name__}: {e}"]
            try:
                w.lookups.sendall(frame(reply))
            except OSError:
                self._close_lookups(w)
                return

    @staticmethod
    def _close_lookups(w: _Worker) -> None:
        if w.http_link is not None:
            w.http_link.close()
            w.http_link = None
        if w.lookups is not None:
            try:
                asyncio.get_running_loop().remove_reader(w.lookups.fileno())
            except (RuntimeError, ValueError):
                pass
            w.lookups.close()
            w.lookups = None

    def _names(self, w: _Worker) -> list | None:
        """The next NAMES_BATCH names of the index, [] at the end, for the worker's filter of
        names that exist (worker.py); None once there are more than MAX_KNOWN_NAMES."""
        if w.names is None:
            w.names = (rec.name for rec in self.resolver.chain.names.scan())
            w.names_sent = 0
        batch = list(itertools.islice(w.names, NAMES_BATCH))
        w.names_sent += len(batch)
        return None if w.names_sent > MAX_KNOWN_NAMES else batch

    def lookup(self, req: list):
        r = self.resolver
        op = req[0]
        if op == "get":
            rec = r.chain.names.get(bytes(req[1]))
            if rec is None or is_expired(rec, r.chain.height, r.params):
                return None
            return rec.to_obj()
        if op == "getm":                # a UDP batch's names (worker.py): one frame each way, not one per name
            return [self.lookup(["get", n]) for n in req[1][:MAX_GETM]]
        if op == "ekey":
            u = r.ekeys.current(bytes(req[1]))
            return u.to_bytes() if u is not None else None
        if op == "snaps":
            return self._snapshots(req[1])
        if op == "http":
            method, target, headers, body, close = req[1:6]
            return r.http.dispatch(str(method), str(target), dict(headers), bytes(body), bool(close))
        if op == "alt":
            ans = r.policy.alternative(str(req[1]), str(req[2]))
            if ans is None:
                return None
            return [ans.source, ans.secure, [[x.owner, x.rtype, x.rdata] for x in ans.records],
                    list(ans.names_used)]
        raise ValueError(f"unknown lookup {op!r}")

    def _snapshots(self, asked: list) -> list:
        """[height, hash, name_root, [[[name, record or None, proof]...] for each list of names]],
        all at the tip as it is now (the node answers one lookup at a time, between blocks):
        http_worker.py signs answers from each. Records as stored, expired or not: the handlers
        check expiry. At most MAX_SNAP_NAMES names in all (a worker asks no more: past them a
        list gets none, and its request asks again, within its rounds)."""
        r = self.resolver
        tip = r.chain.tip
        root = tip.header.name_root
        index = r.chain.names
        out, left = [], MAX_SNAP_NAMES
        for names in asked[:MAX_SNAP_NAMES]:
            entries = []
            for n in names[:left]:
                name = bytes(n)[:255]
                proof = index.prove(root, name)
                # The tree holds a leaf for every name the index holds a record for (both are
                # written in each block's one batch): a proof of absence needs no store read.
                rec = index.get_obj(name) if proof.kind == TERM_PRESENT else None
                entries.append([name, rec, proof.to_bytes()])
            left -= len(entries)
            out.append(entries)
        return [tip.height, tip.hash, root, out]

    def tip_event(self) -> list:
        """["tip", height, SOA serial]: the serial is the stored zone's (it also rises on a reorg
        and on a signature refresh between blocks), so workers answer the SOA the node answers."""
        return ["tip", self.resolver.chain.height, self.resolver.responder.serial()]

    def push(self, *event) -> None:
        """An event for every worker (["tip", height, serial] or ["inv", name or None])."""
        data = frame(list(event))
        for w in self.workers:
            if w.events is not None and not w.events[1].is_closing():
                w.events[1].write(data)

    # --- metrics --------------------------------------------------------------------------------

    def total(self, key: str) -> int:
        return sum(w.stats.get(key, 0) for w in self.workers)

    def counts(self) -> list[int]:
        out = [0] * 34
        for w in self.workers:
            for i, n in enumerate(w.stats.get("counts", ())[:34]):
                out[i] += n
        return out


class _HTTPLink(asyncio.Protocol):
    """The node's end of a worker's HTTP link (worker_link.AsyncLink): every whole question
    answered, in order, all of one read in one write."""

    def __init__(self, pool: WorkerPool, w: _Worker):
        self.pool = pool
        self.w = w
        self.frames = FrameBuffer()
        self.transport = None
        self.frame = Framer()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            requests = self.frames.feed(data)
        except (ValueError, ConnectionError):
            self.transport.close()          # a broken link: the worker sees it and ends
            return
        out = []
        for req in requests:
            try:
                out.append(self.frame([req[0], True, self.pool.lookup(req[1:])]))
            except Exception as e:          # the request gets a 500; the node goes on
                log.exception("DNS worker %d HTTP lookup %r failed", self.w.index, req[1:2])
                out.append(frame([req[0] if isinstance(req, list) and req else 0, False, f"{type(e).__name__}: {e}"]))
        self.transport.write(b"".join(out))


async def _read_frame(reader: asyncio.StreamReader):
    """One frame, or None at the end of the link (or a broken frame: the link is then useless)."""
    try:
        head = await reader.readexactly(4)
        n = struct.unpack(">I", head)[0]
        if n > MAX_FRAME:
            return None
        return unframe(await reader.readexactly(n))
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        return None
