"""The signed HTTP API in a DNS worker process (--dns-workers N): the same HTTPAPI handlers as
the node's, on the same port (SO_REUSEPORT), reading the chain through snapshots the node sends.

An envelope binds its answer to the tip it names and carries a proof for every name it used, so
one answer must never mix data from two tips. The node is one thread and answers a lookup
synchronously, so one "snaps" lookup (worker_link.py) is one tip: its height, hash and name
root, and for each snapshot asked, each of its names' record and name-tree proof at that root.
A request is answered over one Snapshot: its first asks for the names the request names (a
/v1/name's name, a /v1/domain's d/ name); when the handler reads a name the snapshot lacks (a
delegation or an import), it stops (_Missing) and the request is run again over a new snapshot
with every name seen so far, so only a run that read nothing outside its snapshot is signed.
Snapshots go over their own link (worker_link.AsyncLink), many in flight: the HTTP server
answers each connection in order and goes on with the others meanwhile, and the snapshots asked
in one loop turn reach the node in one "snaps" question (one frame each way, not one per
request). The node does one store read and one proof per name; the name
resolution, the rendering and the signature are the worker's.

Name resolution is cached by content (SnapSource): a cached resolution is reused only if every
name it read has the same record, and the same expiry, in this request's snapshot (answers with
MinimaLT keys, which the node may change without a block, are not cached). So a hot name is
parsed once, yet every answer is what this snapshot gives; the proofs and the signature are
made for each answer that is not in the signed-answer cache.

What needs node state that cannot be shipped cheaply is forwarded whole (the "http" lookup
carries the raw request, the node's own HTTPAPI answers it, the bytes come back): POST /v1/ekey
(the node's one write), /v1/headers (up to 2,000 headers), /v1/ca/... (the CA's keys and
store), /metrics (the node's counters), and /v1/domain when another record source than the
chain runs (the CA's and DANE's state is the node's).

Each worker caches its signed answers as the node does (HTTPAPI's cache, per URL), dropped by
the node's pushed events: "tip" drops answers about the tip, "inv" those that read a changed
name. The events that have arrived are applied before each request the cache may answer (a
miss asks the node, whose snapshot is newer than any event it pushed before); an answer whose
snapshot may predate an event applied while it was asked for is sent but not cached.
"""
from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

from core.names.dvalue import DEFAULT_MAX_LOADS
from core.names.rules import NameRecord, is_expired
from core.records import NameSource, domain_of, unregistered
from node.resolver.http_api import HTTPAPI, ChainReads, Request
from node.resolver.http_target import response_format, split_target
from node.resolver.http_server import Pending
from node.resolver.worker_link import MAX_SNAP_NAMES, AsyncLink, LookupFailed

MAX_ROUNDS = DEFAULT_MAX_LOADS + 2     # snapshots for one request: a domain reads at most that many names
MAX_RESOLVED = 100_000                 # cached resolutions (SnapSource)
MAX_DOMAIN_READS = 10_000              # domains whose last resolution's names are kept (_guess)
FORWARDED = ("/v1/headers", "/v1/ekey", "/v1/ca/", "/metrics")


class _Missing(Exception):
    """The handler read names its snapshot does not have."""

    def __init__(self, *names: bytes):
        super().__init__(*names)
        self.names = list(names)


@dataclass(frozen=True)
class _Header:
    name_root: bytes


@dataclass(frozen=True)
class _Tip:
    height: int
    hash: bytes
    header: _Header


class _Proof:
    """A proof as the node sent it (the handlers only ship its bytes)."""
    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def to_bytes(self) -> bytes:
        return self.data


class Snapshot:
    """One snapshot of a "snaps" answer: the tip, and some names' records and proofs at that
    tip; and the ChainReads its request's handlers read (the same fields: params, height(),
    tip(), name(), prove(); headers and ekeys are the node's), so none is built per request. The
    tip object of the snapshot before is reused while the tip is the same."""

    def __init__(self, reply: list, params, last: _Tip | None = None):
        height, hash_, root, entries = reply
        if last is None or last.height != height or last.hash != hash_ or last.header.name_root != root:
            last = _Tip(height, bytes(hash_), _Header(bytes(root)))
        self.at = last
        self.params = params
        self.records: dict[bytes, NameRecord | None] = {}
        self.proofs: dict[bytes, _Proof] = {}
        for name, rec, proof in entries:
            name = bytes(name)
            self.records[name] = NameRecord.from_obj(rec) if rec is not None else None
            self.proofs[name] = _Proof(bytes(proof))

    def height(self) -> int:
        return self.at.height

    def tip(self) -> _Tip:
        return self.at

    def name(self, name: bytes):
        if name not in self.records:
            raise _Missing(name)
        return self.records[name]

    def prove(self, root: bytes, name: bytes):
        if name not in self.proofs or root != self.at.header.name_root:
            raise _Missing(name)
        return self.proofs[name]

    @staticmethod
    def header_at(*_args):
        return _node_only()

    @staticmethod
    def submit_ekey(*_args):
        return _node_only()


def _node_only(*_args):
    raise RuntimeError("the node's to serve: a worker forwards it (FORWARDED)")


class SnapSource:
    """records.NameSource.resolve() over one snapshot, with the worker's resolutions reused when
    every name they read is the same in it (record and expiry): see the module's doc."""

    def __init__(self, cache: dict, snap: Snapshot, params, ekeys):
        self.cache = cache
        self.snap = snap
        self.params = params
        self.ekeys = ekeys

    def _absent(self, name: str) -> bool:
        """In this snapshot, and held by nobody (a name it lacks is left to the full path,
        which asks for it)."""
        return self.snap.records.get(name.encode(), True) is None

    def _state(self, name: bytes) -> tuple:
        rec = self.snap.name(name)
        return rec, rec is not None and is_expired(rec, self.snap.at.height, self.params)

    def resolve(self, qname: str):
        q = qname.lower()
        q = q if q.endswith(".") else q + "."
        hit = self.cache.get(q)
        if hit is not None:
            lacking = [n for n, _ in hit[1] if n not in self.snap.records]
            if lacking:                 # ask for them all at once, not one round each
                raise _Missing(*lacking)
            if all(self._state(n) == state for n, state in hit[1]):
                return hit[0]
        empty = unregistered(q, self._absent)
        if empty is not None:
            return empty
        read: list[bytes] = []

        def get(name: bytes):
            read.append(name)
            return self.snap.name(name)

        ans = NameSource(get, self.snap.height, self.params, self.ekeys).resolve(q)
        # Not a name nobody registered (cheap to rebuild; a random-name flood would fill the
        # cache with them), nor one with MinimaLT keys.
        if ans.records and not ans.minimalt:
            if len(self.cache) >= MAX_RESOLVED:
                self.cache.clear()
            self.cache[q] = (ans, tuple((n, self._state(n)) for n in dict.fromkeys(read)))
        return ans


@dataclass
class _Asked:
    """A request waiting for its snapshot."""
    request: Request
    target: str
    close: bool
    future: Pending
    events: int             # WorkerHTTPAPI.events when it was asked


class _Parts:
    """What HTTPAPI reads of `resolver` in a worker: its key, and a chain-only name source that
    is replaced for every request (set by WorkerHTTPAPI)."""

    def __init__(self, key, caps):
        self.key = key
        self.conn_caps = caps
        self.source = None
        self.policy = None
        self.dane = None
        self.ca = None
        self.ca_off = "the CA runs in the node"       # never read: /v1/ca/ is forwarded
        self.metrics = None


class WorkerHTTPAPI(HTTPAPI):
    def __init__(self, link, http_link: socket.socket, key, params, height, ekeys, forward_domain: bool,
                 caps=None, limiter=None, wake=lambda: None):
        self.wake = wake                        # applies the node's events that have arrived
        self.link = link                        # the blocking lookup link: forwarded requests
        self.http_link = http_link              # the snapshot link's socket (AsyncLink once started)
        self.alink = None
        self.params = params
        self.ekeys = ekeys                      # the worker's remote ephemeral-key reader
        self.forward_domain = forward_domain    # another record source runs: /v1/domain is the node's
        self.resolved: dict = {}                # SnapSource's cache
        # d/ name -> every name its last resolution needed, when that took more than one snapshot
        # (imports, delegations): a random subdomain of such a domain has no cached resolution of
        # its own, and without this would cost one snapshot per import in the chain, every time.
        self.domain_reads: dict[bytes, tuple] = {}
        self.snapshots = 0                      # snapshots asked (read by /metrics)
        self.events = 0                         # node events applied (see _answer)
        self.answered = 0                       # requests answered here (not forwarded)
        self.forwarded = 0
        super().__init__(_Parts(key, caps), ChainReads(params, height, _node_only, _node_only, _node_only,
                                                       _node_only, _node_only), limiter)
        self.routes = [r for r in self.routes if r[1] in ("/v1/resolver", "/v1/name/", "/v1/domain/")]
        self._live = self.reads
        self._tip: _Tip | None = None           # the latest snapshot's tip (reused while the tip holds)
        self._queued: list = []                 # (ask, names, rounds) to send this loop turn (_ask)

    async def start(self, host: str, port: int, reuse_port: bool = True, on_broken=lambda: None) -> None:
        self.alink = await AsyncLink.open(self.http_link, on_broken)
        await super().start(host, port, reuse_port)

    def dispatch(self, method: str, target: str, headers: dict, body: bytes, close: bool):
        try:
            path, query = split_target(target)
        except ValueError:      # a target urllib refuses: the node signs the 400 (it holds the tip)
            path = query = None
        if path is None or path.startswith(FORWARDED) or (self.forward_domain and path.startswith("/v1/domain/")):
            self.forwarded += 1
            return bytes(self.link.call("http", method, target, headers, body, close))
        self.answered += 1
        fmt = response_format(target, headers)
        # The node's events that have arrived first (as DNSServer's wake), before an answer may
        # come from the cache: a block the client already saw accepted must not be answered from
        # the cache of the tip before it. A URL not in the cache skips the read (a system call):
        # its snapshot is the node's, asked after the node pushed those events (applied later,
        # they drop more answers, never fewer; see _answer for the answer it then keeps).
        if method == "GET" and (target, fmt) in self._cache:
            self.wake()
        hit = self.cached(method, target, fmt, close)
        if hit is not None:
            return hit
        req = Request(method, path, query, headers, body, {}, fmt)
        ask = _Asked(req, target, close, Pending(), self.events)
        self._ask(ask, self._guess(path), 1)
        return ask.future

    def _guess(self, path: str) -> list:
        """The names a request will read, as far as known before it runs (its first snapshot's
        ask): a /v1/name's name; a /v1/domain's d/ name, and every name its last resolution read."""
        if path.startswith("/v1/name/"):
            name = path[len("/v1/name/"):].encode("utf-8", "surrogateescape")
            return [name] if 0 < len(name) <= 255 else []
        if path.startswith("/v1/domain/"):
            fqdn = path[len("/v1/domain/"):].lower().rstrip(".") + "."
            d = domain_of(fqdn)
            if d is None or not d.isascii() or len(d) > 255:
                return []
            hit = self.resolved.get(fqdn)
            known = [n for n, _ in hit[1]] if hit is not None else self.domain_reads.get(d.encode(), ())
            return [d.encode()] + [n for n in known if n != d.encode()]
        return []

    def _ask(self, ask: "_Asked", names: list, rounds: int) -> None:
        """Queue a snapshot: those asked in one event-loop turn go in one "snaps" question."""
        self.snapshots += 1
        if not self._queued:
            asyncio.get_running_loop().call_soon(self._send_snaps)
        self._queued.append((ask, names, rounds))

    def _send_snaps(self) -> None:
        """The queued snapshots, as few "snaps" questions as hold them (MAX_SNAP_NAMES names in
        all a question; a request with none still has its own snapshot, of the tip alone)."""
        queued, self._queued = self._queued, []
        batch: list = []
        count = 0
        for item in queued:
            if batch and count + len(item[1]) > MAX_SNAP_NAMES:
                self._send_batch(batch)
                batch, count = [], 0
            batch.append(item)
            count += len(item[1])
        if batch:
            self._send_batch(batch)

    def _send_batch(self, batch: list) -> None:
        self.alink.call(lambda ok, value: self._answered(batch, ok, value), "snaps", [names for _, names, _ in batch],
                        now=True)

    def _answered(self, batch: list, ok: bool, value) -> None:
        """The node's "snaps" answer: each queued request runs over its own snapshot."""
        if ok and not (isinstance(value, list) and len(value) == 4 and isinstance(value[3], list)
                       and len(value[3]) == len(batch)):
            ok, value = False, "a snapshot answer of the wrong shape"
        for i, (ask, names, rounds) in enumerate(batch):
            self._answer(ask, names, rounds, ok, [*value[:3], value[3][i]] if ok else value)

    def _answer(self, ask: "_Asked", names: list, rounds: int, ok: bool, value) -> None:
        """The node's snapshot is here: run the handler over it, or ask again with names more."""
        if ask.future.done():
            return
        if not ok:
            ask.future.set_exception(LookupFailed(value))
            return
        snap = Snapshot(value, self.params, self._tip)
        self._tip = snap.at
        self.reads = snap
        self.resolver.source = SnapSource(self.resolved, snap, self.params, self.ekeys)
        try:
            reply = self.route(ask.request)
        except _Missing as e:
            if rounds < MAX_ROUNDS:
                self._ask(ask, list(dict.fromkeys(names + e.names)), rounds + 1)
                return
            reply = self._error(ask.request, {}, "busy", "the chain moved on while answering: try again", 503)
        except Exception as e:
            ask.future.set_exception(e)
            return
        finally:
            self.reads = self._live
            self.resolver.source = None
        if rounds > 1:
            self._remember(ask.request.path, names)
        # An event applied since the ask may be one the snapshot predates (the node pushed it
        # after answering, and it was read first): then the answer is sent, not cached, or that
        # event's invalidation would have come before the answer it should drop.
        keep = ask.events == self.events
        ask.future.set_result(self.finish(ask.request, ask.target, reply, ask.close, keep))

    def event(self, ev: list) -> None:
        """The node's pushed events, as the in-process API gets them (service.py)."""
        self.events += 1
        if ev[0] == "tip":
            self.tip_changed()
        elif ev[0] == "inv":
            self.invalidate(ev[1])

    def _remember(self, path: str, names: list) -> None:
        """A /v1/domain answer that needed more than its first snapshot: its domain's next
        request asks for all those names at once."""
        if not path.startswith("/v1/domain/"):
            return
        d = domain_of(path[len("/v1/domain/"):].lower().rstrip(".") + ".")
        if d is None or not d.isascii():
            return
        if len(self.domain_reads) >= MAX_DOMAIN_READS:
            self.domain_reads.clear()
        self.domain_reads[d.encode()] = tuple(names)

    def stats(self) -> dict:
        return {"http": {k.decode("ascii", "replace"): v for k, v in self._server.statuses.items()},
                "http_answered": self.answered, "http_forwarded": self.forwarded,
                "http_snapshots": self.snapshots, "http_cache_hits": self.cache_hits, "http_cache_misses": self.cache_misses,
                "http_conns": len(self._server.limiter), "http_refused": self._server.limiter.refused}


