"""The signed HTTP API. Every answer, errors included, is an envelope signed by
the resolver key (envelope.py) that binds the question, the answer, the tip it was answered
at, the time served and a valid-until, and carries name-tree proofs for every name used.

  GET  /v1/resolver                      public key, fingerprint, network, tip, DNSKEY/DS
  GET  /v1/name/{name}                   the name's record and its proof
  GET  /v1/domain/{fqdn}?type=T          resolved records, TLSA and MinimaLT data, proofs
  GET  /v1/headers?from=H&count=N        raw 112-byte headers for light clients
  POST /v1/ekey                          an ephemeral-key update (msgpack bytes)
  /v1/ca/...                             the CA source's endpoints, when it runs (ca/http.py)
A /v1/domain answer says which source answered its TLSA question ("source": chain, ca or
dane, per sources.Policy); records from another source than the chain come in "alt" groups
with their source and evidence (the CA's leaves and CRL), apart from the chain's own "records",
which light clients recompute from the proofs.
JSON by default; msgpack with `?format=msgpack` or `Accept: application/msgpack`.

Signed GET answers are cached fully rendered, per URL and format, from the URL's second request
(MAX_SEEN) for up to a minute (well inside their valid-until, and at most a block old) and
dropped when a name they used changes; answers about the tip (/v1/resolver, /v1/headers) are
dropped on every block. So a hot name costs one signature a minute, not one per request. The
handlers see a plain Request; http_server.py moves the bytes.

With --dns-workers N the workers serve this API (http_worker.py subclasses it: same handlers,
reads from one-tip snapshots the node sends), and the node's instance answers only the
requests they forward to it.

The API reads the chain only through the ChainReads it is given (the resolver service builds
it), never by reaching into the node: what it may see and do is listed in one place.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable

from core.connlimit import ConnCaps
from core.crypto import encode_address
from core.envelope import VERSION, seal
from core.names.rules import expires_in, is_expired
from core.records import domain_of, select
from node.resolver.ca.http import off_routes as ca_off_routes
from node.resolver.ca.http import routes as ca_routes
from node.resolver.http_server import MAX_CONNECTIONS, HTTPServer, render
from node.resolver.http_target import known_type, response_format, split_target

VALID_FOR = 600
CACHE_SECONDS = 60
TIP = "\x00tip"          # tag of cached answers that depend on the tip itself
# A cached answer names the tip it was made at; light clients refuse answers more than a few
# blocks behind theirs (6 by default), so one made more than a block ago is made afresh even
# within CACHE_SECONDS (matters where blocks come faster than the cache expires: regtest).
MAX_TIP_LAG = 1
MAX_CACHE = 100_000
# ...and at most this many bytes of them: an answer with proofs is several KB, and a flood of
# URLs never asked before (each one cached, none ever asked again) would otherwise hold
# hundreds of MB, in each DNS worker that serves the API.
MAX_CACHE_BYTES = 32 << 20
# An answer is cached from its URL's second miss on: the first only leaves the URL's hash here
# (cleared when full). A URL asked once, as every one of a random-subdomain flood, then costs
# no cache entry, byte count and eviction, and fills nothing hot URLs would have used.
MAX_SEEN = 100_000
MAX_HEADERS = 2000
MSGPACK = "application/msgpack"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"      # Prometheus exposition format


@dataclass(frozen=True)
class ChainReads:
    """What the API reads of the chain, and its one write (an ephemeral-key update)."""
    params: object                              # the network's parameters
    height: Callable[[], int]
    tip: Callable[[], object]                   # the tip's block-index entry
    name: Callable[[bytes], object]             # name -> NameRecord or None
    prove: Callable[[bytes, bytes], object]     # (name_root, name) -> Proof
    header_at: Callable[[int], bytes]           # main-chain height -> header, wire form (with AuxPoW)
    submit_ekey: Callable[[bytes], dict]


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    match_info: dict
    fmt: str            # "json" or "msgpack"

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Reply:
    status: int
    content_type: str
    body: bytes
    names: tuple = ()   # names the answer read: a change to any of them drops it from the cache


class HTTPAPI:
    def __init__(self, resolver, reads: ChainReads, limiter=None):
        self.resolver = resolver     # its own parts: key, source, policy, dane, ca, metrics
        self.reads = reads
        self.port = None
        caps = getattr(resolver, "conn_caps", None) or ConnCaps()
        # `limiter`: a DNS worker's share of the caps (connshare.py), counted with the others'.
        self._server = HTTPServer(self.dispatch, limiter if limiter is not None else caps.limiter(MAX_CONNECTIONS))
        self._cache: dict = {}
        self._cache_bytes = 0               # of the rendered answers and replies in _cache
        self._seen: set[int] = set()        # hash((target, format)) of URLs missed once (MAX_SEEN)
        self._by_name: dict[str, set] = {}
        self.cache_hits = 0
        self.cache_misses = 0
        self.routes = [("GET", "/v1/resolver", False, self.info), ("GET", "/v1/name/", True, self.name),
                       ("GET", "/v1/domain/", True, self.domain), ("GET", "/v1/headers", False, self.headers),
                       ("POST", "/v1/ekey", False, self.ekey)]
        if getattr(resolver, "ca", None) is not None:
            self.routes += ca_routes(self)
        else:
            self.routes += ca_off_routes(self, getattr(resolver, "ca_off", "this node has no CA running"))

    def tip_changed(self, *_event) -> None:
        """A chain event: answers about the tip itself are stale."""
        self.invalidate(TIP)

    def invalidate(self, name: str | None = None) -> None:
        if name is None:
            self._cache.clear()
            self._by_name.clear()
            self._cache_bytes = 0
            return
        for key in self._by_name.pop(name, ()):
            entry = self._cache.pop(key, None)
            if entry is not None:
                self._cache_bytes -= _size(entry)

    @property
    def server(self) -> HTTPServer:
        """The HTTP server itself (its limiter and head timeouts are read by /metrics)."""
        return self._server

    def server_statuses(self) -> dict[str, int]:
        return {k.decode("ascii", "replace"): v for k, v in self._server.statuses.items()}

    async def start(self, host: str, port: int, reuse_port: bool = False) -> None:
        await self._server.start(host, port, reuse_port)
        self.port = self._server.port

    async def stop(self) -> None:
        await self._server.stop()

    def dispatch(self, method: str, target: str, headers: dict, body: bytes, close: bool) -> bytes:
        fmt = response_format(target, headers)
        hit = self.cached(method, target, fmt, close)
        if hit is not None:
            return hit
        try:
            path, query = split_target(target)
        except ValueError:
            return self.bad_target(method, target, headers, body, close)
        if path == "/metrics" and self.resolver.metrics is not None:     # unsigned, for Prometheus
            if method != "GET":
                return render(405, "text/plain", b"use GET\n", close)
            return render(200, METRICS_TYPE, self.resolver.metrics(), close)
        req = Request(method, path, query, headers, body, {}, fmt)
        return self.finish(req, target, self.route(req), close)

    def bad_target(self, method: str, target: str, headers: dict, body: bytes, close: bool) -> bytes:
        """A target urllib cannot split (such as "//["): a signed 400, never a 500."""
        req = Request(method, "", {}, headers, body, {}, response_format(target, headers))
        reply = self._error(req, {"target": target[:200].encode("utf-8", "surrogateescape")}, "bad-target",
                            "the request target is not a valid URL", 400)
        return self.finish(req, target, reply, close, keep=False)

    def cached(self, method: str, target: str, fmt: str, close: bool) -> bytes | None:
        """A GET's rendered answer from the cache, or None (counted as a miss)."""
        if method != "GET":
            return None
        hit = self._cache.get((target, fmt))
        if (hit is not None and hit[1] > time.monotonic()
                and self.reads.height() - hit[3] <= MAX_TIP_LAG):
            self.cache_hits += 1
            return hit[0] if not close else render(hit[2].status, hit[2].content_type, hit[2].body, True)
        self.cache_misses += 1
        return None

    def route(self, req: Request) -> Reply:
        path, method = req.path, req.method
        for m, prefix, is_prefix, handler in self.routes:
            if path == prefix or (is_prefix and path.startswith(prefix) and len(path) > len(prefix)):
                if method != m and m != "*":
                    return self._error(req, {}, "bad-method", f"use {m}", 405)
                req.match_info["rest"] = path[len(prefix):]
                return handler(req)
        return self._error(req, {"path": path[:200].encode("utf-8", "surrogateescape")}, "not-found",
                           "no such endpoint", 404)

    def finish(self, req: Request, target: str, reply: Reply, close: bool, keep: bool = True) -> bytes:
        """The reply rendered, and kept in the cache when it may be (`keep`: the caller's say)."""
        out = render(reply.status, reply.content_type, reply.body, close)
        if keep and req.method == "GET" and reply.status in (200, 404) and not close and reply.names:
            key = (target, req.fmt)
            if not self._admit(key):
                return out
            entry = (out, time.monotonic() + CACHE_SECONDS, reply, self.reads.height())
            if len(self._cache) >= MAX_CACHE or self._cache_bytes + _size(entry) > MAX_CACHE_BYTES:
                self.invalidate()
            old = self._cache.get(key)
            if old is not None:
                self._cache_bytes -= _size(old)
            self._cache[key] = entry
            self._cache_bytes += _size(entry)
            for n in reply.names:
                self._by_name.setdefault(n, set()).add(key)
        return out

    def _admit(self, key: tuple) -> bool:
        """Whether a cacheable answer goes into the cache: yes on its URL's second miss (MAX_SEEN).
        Two URLs whose hashes collide share a mark: one may be cached a miss early, no harm."""
        h = hash(key)
        if h in self._seen:
            return True
        if len(self._seen) >= MAX_SEEN:
            self._seen.clear()
        self._seen.add(h)
        return False

    # --- envelopes ------------------------------------------------------------------------------

    def _envelope(self, request, kind: str, question: dict, answer, proofs=(), status: int = 200,
                  error: str | None = None, names: tuple = ()) -> Reply:
        tip = self.reads.tip()
        now = int(time.time())
        body = {"v": VERSION, "kind": kind, "question": question, "answer": answer,
                "tip": {"height": tip.height, "hash": tip.hash, "name_root": tip.header.name_root},
                "served": now, "valid_until": now + VALID_FOR, "proofs": list(proofs)}
        if error is not None:
            body["error"] = error
        # Float-free: every answer is texts, ints, bytes, booleans, None, lists and maps.
        data = seal(body, self.resolver.key.sign, request.fmt, float_free=True)
        return Reply(status, MSGPACK if request.fmt == "msgpack" else "application/json", data, names)

    def _proof(self, name: bytes) -> dict:
        rec = self.reads.name(name)
        proof = self.reads.prove(self.reads.tip().header.name_root, name)
        return {"name": name, "record": rec.to_bytes() if rec else None, "proof": proof.to_bytes()}

    def _error(self, request, question: dict, code: str, message: str, status: int, proofs=(), names=()):
        return self._envelope(request, "error", question, None, proofs, status, f"{code}: {message}", names)

    # --- handlers -------------------------------------------------------------------------------

    def info(self, request):
        key = self.resolver.key
        dnskey, ds = key.anchor_lines()
        return self._envelope(request, "resolver", {}, {
            "public_key": key.public_key, "fingerprint": key.fingerprint, "network": self.reads.params.name,
            "dnskey": dnskey, "ds": ds, "key_tag": key.key_tag}, names=(TIP,))

    def name(self, request):
        text = request.match_info["rest"]
        name = text.encode("utf-8", "surrogateescape")
        question = {"name": name}
        if not 0 < len(name) <= 255:
            return self._error(request, question, "bad-name", "a name is 1 to 255 bytes", 400)
        rec = self.reads.name(name)
        proofs = [self._proof(name)]
        if rec is None:
            return self._error(request, question, "not-found", "the name does not exist", 404, proofs,
                               (name.decode("utf-8", "surrogateescape"),))
        height = self.reads.height()
        params = self.reads.params
        return self._envelope(request, "name", question, {
            "name": rec.name, "value": rec.value, "address": encode_address(params.address_version, rec.address),
            "height": rec.height, "txid": rec.txid, "vout": rec.vout,
            "expires_in": expires_in(rec, height, params), "expired": is_expired(rec, height, params)}, proofs,
            names=(name.decode("utf-8", "surrogateescape"), TIP))

    def domain(self, request):
        fqdn = request.match_info["rest"].lower().rstrip(".") + "."
        qtype = request.query.get("type", "ANY").upper()
        if not (fqdn.isascii() and qtype.isascii() and qtype.isalnum() and len(fqdn) <= 256 and len(qtype) <= 16):
            return self._error(request, {}, "bad-request", "name and type must be short ASCII", 400)
        question = {"name": fqdn, "type": qtype}
        if not known_type(qtype):      # else a typo reads as "no such records": an empty 200
            return self._error(request, question, "bad-type", f"unknown record type {qtype} "
                               "(A, AAAA, TXT, TLSA, MX, SRV, NS, DS, CNAME, ANY...)", 400)
        policy = getattr(self.resolver, "policy", None)
        # Another source's TLSA also makes its owner exist for other types (NODATA, as DNS says).
        found = policy.alternative(fqdn, "TLSA") if policy is not None else None
        alt = found if qtype in ("TLSA", "ANY") else None
        if domain_of(fqdn) is None:
            if self.resolver.dane is not None and "dane" in self.resolver.policy.order:
                return self._dane(request, question, fqdn, qtype)
            return self._error(request, question, "not-bit", "only names under bit. are served", 400)
        ans = self.resolver.source.resolve(fqdn)
        if found is not None and any(r.rtype in ("NS", "DNAME", "CNAME") and (fqdn.endswith("." + r.owner) or
                                     fqdn == r.owner and r.rtype != "DNAME") for r in ans.records):
            found = alt = None    # the chain cut, redirected or aliased it: as DNS, no other source there
        used = ans.names_used + tuple(n for n in (found.names_used if found else ()) if n not in ans.names_used)
        proofs = [self._proof(n.encode()) for n in used]
        if not ans.records and found is None:
            return self._error(request, question, "not-found", "the domain does not exist", 404, proofs,
                               ans.names_used)
        records = [[r.owner, r.rtype, r.rdata] for r in select(ans.records, fqdn, qtype)]
        tls = [[r.owner, r.rdata] for r in ans.records if r.rtype == "TLSA"]
        mlt = []
        for owner, (item, eph, update) in ans.minimalt.items():
            mlt.append({"owner": owner, "ip": item.ip, "port": item.port, "id_key": item.id_key, "eph_key": eph,
                        "eph_update": update.to_bytes() if update else None})
        return self._envelope(request, "domain", question,
                              {"records": records, "tls": tls, "minimalt": mlt, "source": alt.source if alt else "chain",
                               "alt": [self._alt(alt, fqdn)] if alt else []}, proofs, names=used)

    def _alt(self, alt, fqdn: str) -> dict:
        """One other source's records, with what lets a client check them: for the CA, its
        certificate and the leaves the records hash; for DANE, the DNSSEC signatures and key chain."""
        evidence: dict = {}
        ca = getattr(self.resolver, "ca", None)
        if alt.source == "ca" and ca is not None:
            # The CRL too: a client can then check the leaves against the owner's own revocations,
            # the only ones the chain cannot show it.
            evidence = {"ca_cert": ca.authority.cert_der, "certs": [r.der for r, _, _ in ca.current(fqdn)],
                        "crl": ca.crl()}
        elif alt.source == "dane" and alt.evidence is not None:
            evidence = {"dnssec": alt.evidence}     # DNS wire: answer RRsets + the DNSKEY/DS chain, signed
        return {"source": alt.source, "secure": alt.secure, "records": [[r.owner, r.rtype, r.rdata] for r in alt.records],
                "evidence": evidence}

    def _dane(self, request, question: dict, fqdn: str, qtype: str):
        """A name outside bit., from DNSSEC-signed zones (dane.py): no name proofs, so the answer
        says where it came from and whether DNSSEC validated it. Not cached here: the source
        rechecks signature expiry on every lookup."""
        ans = self.resolver.dane.lookup(fqdn, qtype)
        if ans is None:
            return self._error(request, question, "not-found", "no DNSSEC-valid data for this name and type", 404)
        return self._envelope(request, "domain", question, {
            "records": [[r.owner, r.rtype, r.rdata] for r in ans.records],
            "tls": [[r.owner, r.rdata] for r in ans.records if r.rtype == "TLSA"],
            "minimalt": [], "source": ans.source, "secure": ans.secure, "alt": [self._alt(ans, fqdn)]})

    def headers(self, request):
        try:
            start = int(request.query.get("from", "0"))
            count = int(request.query.get("count", str(MAX_HEADERS)))
        except ValueError:
            return self._error(request, {}, "bad-request", "from and count must be integers", 400)
        question = {"from": start, "count": count}
        if start < 0 or count < 1 or count > MAX_HEADERS:
            return self._error(request, question, "bad-request", f"from >= 0 and 1 <= count <= {MAX_HEADERS}", 400)
        headers = []
        for h in range(start, min(start + count, self.reads.height() + 1)):
            headers.append(self.reads.header_at(h))
        return self._envelope(request, "headers", question, {"from": start, "headers": headers}, names=(TIP,))

    def ekey(self, request):
        data = request.body
        if request.content_type == "application/json":
            try:
                data = bytes.fromhex(json.loads(data)["update"])
            except Exception:
                return self._error(request, {}, "bad-request", 'JSON body must be {"update": hex}', 400)
        result = self.reads.submit_ekey(data)
        question = {"update": data[:512]}
        if not result["accepted"]:
            return self._error(request, question, result["reason"], result["message"], 400)
        return self._envelope(request, "ekey", question, result)

    @staticmethod
    def raw(content_type: str, body: bytes) -> Reply:
        """An unsigned answer (the CA's certificate, CRL, OCSP), for ca/http.py."""
        return Reply(200, content_type, body)


def _size(entry: tuple) -> int:
    """The bytes a cache entry holds: the rendered answer, and the reply kept to render it again."""
    return len(entry[0]) + len(entry[2].body)

