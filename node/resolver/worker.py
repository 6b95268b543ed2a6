"""One DNS worker process (--dns-workers N): the same Responder and DNSServer as the node's
in-process resolver, bound to the shared DNS port with SO_REUSEPORT, reading names through the
node (worker_link.py) since LevelDB allows one process per store.

Each worker keeps its own answer caches (records.NameSource and Responder), dropped by the
node's pushed events exactly as the in-process resolver drops them. It ends when the node does:
PR_SET_PDEATHSIG for a node that is killed, and the event link closing for one that stops or
hangs up; a query the worker cannot answer is handled as today's resolver handles it (dropped,
FORMERR or SERVFAIL), never by dying.
"""
from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import signal
import socket
import sys
import time

from core.connlimit import ConnCaps
from core.ekey import EKeyUpdate
from core.names.rules import NameRecord
from core.records import NameSource
from core.sources import SourceAnswer
from core.names.dvalue import Record
from node.logs import configure as configure_logs
from node.resolver.dns_answer import SERIAL, Responder
from node.resolver.dns_server import DNSServer
from node.resolver.dnssec import OnlineSigner
from node.resolver.fastanswer import domain_of
from node.resolver.http_server import MAX_CONNECTIONS
from node.resolver.http_worker import WorkerHTTPAPI
from node.resolver.connshare import SharedSourceLimiter
from node.resolver.identity import ResolverKey
from node.resolver.sharedlimit import SharedRateLimiter
from node.resolver.worker_link import FrameBuffer, LinkClosed, LookupFailed, NodeLink, frame

log = logging.getLogger("dotbit.resolver.worker")

STATS_SECONDS = 1.0
PREFETCH_MAX = 64          # names per "getm" (worker_pool.MAX_GETM): their replies fit the link's buffer
PR_SET_PDEATHSIG = 1
# The cyclic GC's full passes walked every cached answer as the caches grew (one each time the
# long-lived objects grew by a quarter): ~10 us per uncached answer, measured in process. Cached
# answers hold no cycles, so full passes come at most once per GC_THRESHOLDS[0] x [1] x [2] net
# allocations (tens of millions: the cycles of a rare exception still go, just later).
GC_THRESHOLDS = (2000, 10, 1000)


class _RemoteEKeys:
    """ekeys.EKeyStore.current(), asked of the node."""

    def __init__(self, link: NodeLink):
        self.link = link

    def current(self, name: bytes):
        data = self.link.call("ekey", name)
        return EKeyUpdate.from_bytes(data) if data is not None else None


class _RemotePolicy:
    """sources.Policy.alternative(), asked of the node (only when it has a source besides the
    chain: a CA or DANE zones)."""

    def __init__(self, link: NodeLink):
        self.link = link

    def alternative(self, fqdn: str, qtype: str):
        got = self.link.call("alt", fqdn, qtype)
        if got is None:
            return None
        source, secure, records, used = got
        return SourceAnswer(source, tuple(Record(*r) for r in records), secure, tuple(used))


class Worker:
    def __init__(self, index: int, conf: dict, lookups: socket.socket, events: socket.socket, shared):
        self.index = index
        self.conf = conf
        self.done = asyncio.Event()
        self.link = NodeLink(lookups, self.done.set)
        self.events = events
        self.height = conf["height"]
        self.serial = conf["serial"]       # the node's SOA serial (the stored zone's), pushed with the tip
        self.known: set | None = None     # every name that may exist (None: ask the node for each)
        # The node has already checked expiry (worker_link.py), so the local height only names the SOA serial.
        self.source = NameSource(self._get, lambda: self.height, conf["params"], _RemoteEKeys(self.link))
        policy = _RemotePolicy(self.link) if conf["remote_policy"] else None
        self.responder = Responder(self.source, OnlineSigner(ResolverKey(conf["seed"])), lambda: self.serial,
                                   policy)
        # The fast NXDOMAIN skips even the name source for a name the worker knows never existed.
        self.responder.absent = lambda name: self.known is not None and name not in self.known
        self.limiter = None
        if conf["rate"]:
            table, lock, salt = shared
            self.limiter = SharedRateLimiter(conf["rate"], table, lock, salt, exempt=conf["exempt"])
        self.dns = DNSServer(self.responder, conf["host"], conf["port"], None, self.limiter,
                             conf["caps"] or ConnCaps(), reuse_port=True,
                             wake=self._on_event, prefetch=self._prefetch, spread=conf["workers"])
        self._ahead: dict = {}            # name -> the node's "get" answer, fetched for a UDP batch
        self._frames = FrameBuffer()
        self.http = self._http_api(conf, policy is not None) if conf.get("http_port") is not None else None

    def _http_api(self, conf: dict, forward_domain: bool) -> WorkerHTTPAPI:
        """The signed HTTP API on this worker (http_worker.py): its share of the connections,
        and per-source caps counted across every worker (connshare.py)."""
        base = (conf["caps"] or ConnCaps()).limiter(MAX_CONNECTIONS)
        base.max_total = max(1, MAX_CONNECTIONS // conf["workers"])
        table, lock, salt = conf["conns"]
        limiter = SharedSourceLimiter(base, table, lock, salt, self.index, conf["workers"])
        return WorkerHTTPAPI(self.link, conf["http_link"], ResolverKey(conf["seed"]), conf["params"],
                             lambda: self.height, _RemoteEKeys(self.link), forward_domain, conf["caps"], limiter,
                             wake=self._on_event)

    def _get(self, name: bytes):
        """A name's record from the node; a name it never had is known absent here, without asking
        (a random-name flood would otherwise cost a round trip to the node per query)."""
        if self.known is not None and name not in self.known:
            return None
        if name in self._ahead:
            return _record(self._ahead[name])
        return _record(self.link.call("get", name))

    def _prefetch(self, wires: list) -> None:
        """The names a UDP batch's uncached queries read first, asked of the node in one round
        trip: asked one query at a time, a stream of distinct names waits on the node once per
        query. Kept until the next batch or event (_apply), as fresh as a "get" made then."""
        self._ahead = {}
        want = list(dict.fromkeys(n for n in map(domain_of, wires)
                                  if n is not None and (self.known is None or n in self.known)))
        for k in range(0, len(want), PREFETCH_MAX):
            part = want[k:k + PREFETCH_MAX]
            try:
                got = self.link.call("getm", part)
            except LookupFailed:            # a name the node failed on: each query asks alone (SERVFAIL)
                continue
            except (OSError, ValueError) as e:      # the link is given up (the worker ends)
                log.info("DNS worker %d: lookup link failed: %s", self.index, e)
                return
            self.link.calls += len(part) - 1        # dotbit_dns_worker_lookups_total counts names read
            self._ahead.update(zip(part, got))

    def _load_names(self) -> set | None:
        known: set = set()
        while (batch := self.link.call("names")):
            known.update(batch)
        return None if batch is None else known

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.events.setblocking(False)
        self.known = self._load_names()
        gc.collect()
        gc.freeze()             # what start-up made (modules, the name set) is never walked again
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            await self.dns.start()
            if self.http is not None:
                await self.http.start(self.conf["host"], self.conf["http_port"], on_broken=self.done.set)
        except OSError as e:
            self.events.setblocking(True)
            self.events.sendall(frame(["error", f"DNS worker {self.index}: {e}"]))
            raise SystemExit(1)
        loop.add_reader(self.events.fileno(), self._on_event)
        self._send(["ready", self.dns.port])
        log.info("DNS worker %d (pid %d) serving %s:%d", self.index, os.getpid(), self.dns.host, self.dns.port)
        stats = asyncio.create_task(self._stats())
        try:
            await self.done.wait()
        finally:
            stats.cancel()
            loop.remove_reader(self.events.fileno())
            await self.dns.stop()
            if self.http is not None:
                await self.http.stop()

    def _on_event(self) -> None:
        """Apply whatever the node has pushed (also called before answering: DNSServer.wake)."""
        if self.done.is_set():
            return
        try:
            while True:
                data = self.events.recv(1 << 16)
                if not data:
                    raise LinkClosed("the node closed the event link")
                for ev in self._frames.feed(data):
                    self._apply(ev)
        except (BlockingIOError, InterruptedError):
            return
        except (OSError, ValueError) as e:      # LinkClosed is an OSError; ValueError: a bad frame
            log.info("DNS worker %d stopping: %s", self.index, e)
            self.done.set()

    def _apply(self, ev: list) -> None:
        if self.http is not None:
            self.http.event(ev)
        kind = ev[0]
        self._ahead = {}                  # a fetched record may predate this event
        if kind == "tip":
            self.height, self.serial = ev[1], ev[2]
            self.responder.invalidate(SERIAL)
        elif kind == "inv":
            if ev[1] is not None and self.known is not None:     # a name that may exist now
                self.known.add(ev[1].encode("utf-8", "surrogateescape"))
            # Same order as Resolver.invalidate: the source first, so the front cache never
            # re-fills from a stale answer.
            self.source.invalidate(ev[1])
            self.responder.invalidate(ev[1])

    def _send(self, msg) -> None:
        data = frame(msg)
        try:
            sent = self.events.send(data)
        except BlockingIOError:
            return          # the node is not reading: a stats frame more or less does not matter
        except OSError:
            self.done.set()
            return
        if sent < len(data):            # never leave half a frame: the rest, blocking briefly
            self.events.settimeout(1.0)
            try:
                self.events.sendall(data[sent:])
            except OSError:
                self.done.set()
            finally:
                self.events.setblocking(False)

    async def _stats(self) -> None:
        while True:
            r, rl = self.responder, self.limiter
            self._send(["stats", {"counts": list(r.counts), "misses": r.cache_misses,
                                  "dropped": rl.dropped if rl else 0, "slipped": rl.slipped if rl else 0,
                                  "lookups": self.link.calls, "tcp_timeouts": self.dns.tcp_timeouts,
                                  **(self.http.stats() if self.http is not None else {})}])
            await asyncio.sleep(STATS_SECONDS)


def _record(obj):
    return NameRecord.from_obj(obj) if obj is not None else None


def _die_with(parent: int) -> None:
    """SIGKILL when the node's thread that started us ends, however it ends (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass                # not Linux: the event link closing still ends the worker
    if os.getppid() != parent:      # the node died before prctl took effect
        os._exit(1)


def main(index: int, conf: dict, lookups: socket.socket, events: socket.socket, shared) -> None:
    """The worker process's entry point (multiprocessing, spawn start method)."""
    _die_with(conf["parent"])
    # A Ctrl-C at the terminal, or a service manager's SIGTERM to the whole group, is the node's to
    # handle: it stops, closes the links, and the workers end then (never "died: restarting").
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logs(conf["log_level"], conf["log_format"])
    started = time.monotonic()
    try:
        asyncio.run(Worker(index, conf, lookups, events, shared).run())
    except SystemExit:
        raise
    except ConnectionError as e:        # the node went away (it stopped, or failed to start)
        log.info("DNS worker %d ending: %s", index, e)
        sys.exit(1)
    except BaseException:
        log.exception("DNS worker %d failed after %.1f s", index, time.monotonic() - started)
        sys.exit(1)
