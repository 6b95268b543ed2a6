"""The signed HTTP API in a DNS worker process (--dns-workers N): the same HTTPAPI handlers as
the node's, on the same port (SO_REUSEPORT), reading the chain through snapshots the node sends.

An envelope binds its answer to the tip it names and carries a proof for every name it used, so
one answer must never mix data from two tips. The node is one thread and answers a lookup
synchronously, so one "snap" lookup (worker_link.py) is one tip: its height, hash and name
root, and for each name asked its record and name-tree proof at that root. A handler runs over
one Snapshot (and a NameSource over it made for that request alone, so no answer built at
another tip is reused). The first "snap" asks for the names the request names (a /v1/name's
name, a /v1/domain's d/ name); a name read beyond those (a delegation or an import) is asked
then, and used only if the node answers it at the same tip hash; else the request is run again
over a snapshot at the new tip with every name seen so far. Only the last run is signed. The signature, the rendering and the
name resolution are the worker's: the node does one store read and one proof per name.

What needs node state that cannot be shipped cheaply is forwarded whole (the "http" lookup
carries the raw request, the node's own HTTPAPI answers it, the bytes come back): POST /v1/ekey
(the node's one write), /v1/headers (up to 2,000 headers), /v1/ca/... (the CA's keys and
store), /metrics (the node's counters), and /v1/domain when another record source than the
chain runs (the CA's and DANE's state is the node's).

Each worker caches its signed answers as the node does (HTTPAPI's cache), dropped by the node's
pushed events: "tip" drops answers about the tip, "inv" those that read a changed name.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from core.names.rules import NameRecord
from core.records import NameSource, domain_of
from node.resolver.http_api import ChainReads, HTTPAPI

MAX_ROUNDS = 4           # runs of one request: each new one means the tip moved during the last
FORWARDED = ("/v1/headers", "/v1/ekey", "/v1/ca/", "/metrics")


class _Missing(Exception):
    """The handler read a name its snapshot does not have."""

    def __init__(self, name: bytes):
        super().__init__(name)
        self.name = name


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
    """One or more "snap" answers at the same tip: the tip and some names' records and proofs.
    A name it lacks is asked of the node (`fetch`); if the node's tip has moved meanwhile, the
    answer is useless here (_Missing: the request starts over at the new tip)."""

    def __init__(self, reply: list, fetch=None):
        height, hash_, root, entries = reply
        self.tip = _Tip(height, bytes(hash_), _Header(bytes(root)))
        self.fetch = fetch
        self.records: dict[bytes, NameRecord | None] = {}
        self.proofs: dict[bytes, _Proof] = {}
        for name, rec, proof in entries:
            name = bytes(name)
            self.records[name] = NameRecord.from_obj(rec) if rec is not None else None
            self.proofs[name] = _Proof(bytes(proof))

    def _add(self, name: bytes) -> None:
        more = Snapshot(self.fetch([name])) if self.fetch is not None else None
        if more is None or more.tip != self.tip:
            raise _Missing(name)
        self.records.update(more.records)
        self.proofs.update(more.proofs)

    def name(self, name: bytes):
        if name not in self.records:
            self._add(name)
        return self.records[name]

    def prove(self, root: bytes, name: bytes):
        if root != self.tip.header.name_root:
            raise _Missing(name)
        if name not in self.proofs:
            self._add(name)
        return self.proofs[name]

    def reads(self, params, submit_ekey) -> ChainReads:
        tip = self.tip
        return ChainReads(params, lambda: tip.height, lambda: tip, self.name, self.prove, _no_headers, submit_ekey)


def _no_headers(height: int) -> bytes:
    raise RuntimeError("headers are the node's to serve (forwarded)")


def _no_ekey(data: bytes) -> dict:
    raise RuntimeError("ephemeral keys are the node's to take (forwarded)")


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
    def __init__(self, link, key, params, height, ekeys, forward_domain: bool, caps=None, limiter=None):
        self.link = link
        self.params = params
        self.ekeys = ekeys                      # the worker's remote ephemeral-key reader
        self.forward_domain = forward_domain    # another record source runs: /v1/domain is the node's
        self.live_height = height               # () -> the worker's tip height (from the node's events)
        self.answered = 0                       # requests answered here (not forwarded)
        self.forwarded = 0
        super().__init__(_Parts(key, caps), ChainReads(params, height, self._live_tip, self._live_name,
                                                       self._live_prove, _no_headers, _no_ekey), limiter)
        wrap = self._snapshotted
        self.routes = [("GET", "/v1/resolver", False, wrap(self.info, _no_names)),
                       ("GET", "/v1/name/", True, wrap(self.name, _name_of)),
                       ("GET", "/v1/domain/", True, wrap(self.domain, _domain_names))]
        self._live = self.reads

    # A request outside the routes (a 404 or 405 envelope) reads the tip alone, live.
    def _live_tip(self):
        return self._snap([]).tip

    def _live_name(self, name: bytes):
        return self._snap([name]).name(name)

    def _live_prove(self, root: bytes, name: bytes):
        return self._snap([name]).prove(root, name)

    def _snap(self, names) -> Snapshot:
        return Snapshot(self._fetch(names), self._fetch)

    def _fetch(self, names) -> list:
        return self.link.call("snap", list(names))

    def dispatch(self, method: str, target: str, headers: dict, body: bytes, close: bool) -> bytes:
        path = unquote(urlsplit(target).path, errors="surrogateescape")
        if path.startswith(FORWARDED) or (self.forward_domain and path.startswith("/v1/domain/")):
            self.forwarded += 1
            return bytes(self.link.call("http", method, target, headers, body, close))
        self.answered += 1
        return super().dispatch(method, target, headers, body, close)

    def _snapshotted(self, handler, guess):
        """`handler` run over one snapshot, started with the names `guess(request)` expects."""
        def run(request):
            names = list(guess(request))
            for _ in range(MAX_ROUNDS):
                snap = self._snap(names)
                self.reads = snap.reads(self.params, _no_ekey)
                tip = snap.tip
                # A fresh NameSource per run: its answers are this snapshot's alone.
                self.resolver.source = NameSource(snap.name, lambda: tip.height, self.params, self.ekeys)
                try:
                    return handler(request)
                except _Missing as e:
                    names.append(e.name)
                finally:
                    self.reads = self._live
                    self.resolver.source = None
            # Only if blocks came faster than MAX_ROUNDS snapshots: never on a real chain.
            return self._error(request, {}, "busy", "the tip kept moving: try again", 503)
        return run

    def event(self, ev: list) -> None:
        """The node's pushed events, as the in-process API gets them (service.py)."""
        if ev[0] == "tip":
            self.tip_changed()
        elif ev[0] == "inv":
            self.invalidate(ev[1])

    def stats(self) -> dict:
        return {"http": {k.decode("ascii", "replace"): v for k, v in self._server.statuses.items()},
                "http_answered": self.answered, "http_forwarded": self.forwarded,
                "http_cache_hits": self.cache_hits, "http_cache_misses": self.cache_misses,
                "http_conns": len(self._server.limiter), "http_refused": self._server.limiter.refused}


def _no_names(request) -> list:
    return []


def _name_of(request) -> list:
    name = request.match_info["rest"].encode("utf-8", "surrogateescape")
    return [name] if 0 < len(name) <= 255 else []


def _domain_names(request) -> list:
    d = domain_of(request.match_info["rest"].lower().rstrip(".") + ".")
    return [d.encode()] if d is not None else []
