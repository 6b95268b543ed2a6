"""What an operator watches: one status snapshot of a running node, served as JSON-RPC
`getnodestatus` (what `dotbit-node status` prints) and as Prometheus text (exposition format
0.0.4) on GET /metrics of the resolver's HTTP port and/or on `--metrics-port`.

The hot paths only bump plain ints that their own objects own (Responder.counts and cache
hits/misses, HTTPServer.statuses, HTTPAPI cache hits/misses); everything here reads them at
scrape time, so a scrape costs the scraper, never the queries.
"""
from __future__ import annotations

import itertools
import logging
import time

from node.resolver.http_server import HTTPServer, render

log = logging.getLogger("dotbit.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NAMES_COUNT_CAP = 10_000          # counting is a scan: beyond this the count is reported as ">= cap"
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
          6: "YXDOMAIN", 9: "NOTAUTH", 16: "dropped"}


class NodeMetrics:
    def __init__(self, node):
        self.node = node
        self._names = (None, 0)          # (tip hash, count): recounted once per block at most

    # --- the snapshot ---------------------------------------------------------------------------

    def names_count(self) -> tuple[int, bool]:
        """(count, exact). A scan capped at NAMES_COUNT_CAP, cached per tip."""
        chain = self.node.chain
        if self._names[0] != chain.tip.hash:
            n = sum(1 for _ in itertools.islice(chain.names.scan(), NAMES_COUNT_CAP + 1))
            self._names = (chain.tip.hash, n)
        n = self._names[1]
        return min(n, NAMES_COUNT_CAP), n <= NAMES_COUNT_CAP

    def status(self) -> dict:
        node = self.node
        chain = node.chain
        tip = chain.tip
        now = time.time()
        sync = node.p2p.sync if node.p2p is not None else None
        headers = max(e.height for e in chain.entries.values())
        if sync is not None:
            headers = max(headers, sync.best_header_height)
        names, exact = self.names_count()
        out = {
            "network": node.params.name, "blocks": chain.height, "headers": headers,
            "sync_progress": round(chain.height / headers, 6) if headers else 1.0,
            "initialblockdownload": bool(sync is not None and sync.syncing),
            "bestblockhash": tip.hash.hex(), "tip_time": tip.header.time,
            "seconds_since_block": max(0, int(now - tip.header.time)),
            "name_root": tip.header.name_root.hex(),
            "peers": None, "peers_inbound": None,
            "mempool_txs": len(node.mempool), "mempool_bytes": node.mempool.total_bytes,
            "names": names, "names_exact": exact,
            "uptime": int(now - node.started_at),
            "rpc_port": node.rpc_port, "metrics_port": getattr(node, "metrics_port", None),
            "mining": node.mine_enabled, "resolver": None,
        }
        if node.p2p is not None:
            peers = list(node.p2p.peers.values())
            out["peers"] = len(peers)
            out["peers_inbound"] = sum(1 for p in peers if p.inbound)
            out["p2p_port"] = node.p2p_config.port
        r = node.resolver
        if r is not None:
            serving_dns = r.dns is not None or r.workers is not None
            out["resolver"] = {"dns_port": r.dns_port if serving_dns else None,
                               "dns_workers": r.dns_workers if r.workers is not None else 1,
                               "http_port": r.http_port if r.http is not None else None,
                               "fingerprint": r.key.fingerprint, "key_tag": r.key.key_tag,
                               "ca": r.ca is not None, "ca_off": None if r.ca is not None else r.ca_off}
        return out

    # --- Prometheus text ------------------------------------------------------------------------

    def render(self) -> bytes:
        s = self.status()
        m = _Writer()
        m.metric("dotbit_up", "gauge", "1 while the node serves", [({}, 1)])
        m.metric("dotbit_uptime_seconds", "gauge", "seconds since the node started", [({}, s["uptime"])])
        m.metric("dotbit_blocks_height", "gauge", "height of the best connected block", [({}, s["blocks"])])
        m.metric("dotbit_headers_height", "gauge", "height of the best known header (p2p sync)",
                 [({}, s["headers"])])
        m.metric("dotbit_sync_progress_ratio", "gauge", "blocks height / headers height", [({}, s["sync_progress"])])
        m.metric("dotbit_initial_block_download", "gauge", "1 while syncing from peers",
                 [({}, int(s["initialblockdownload"]))])
        m.metric("dotbit_tip_timestamp_seconds", "gauge", "header time of the best block", [({}, s["tip_time"])])
        if s["peers"] is not None:
            m.metric("dotbit_peers", "gauge", "connected p2p peers",
                     [({"direction": "inbound"}, s["peers_inbound"]),
                      ({"direction": "outbound"}, s["peers"] - s["peers_inbound"])])
            sync = self.node.p2p.sync
            m.metric("dotbit_p2p_header_tree", "gauge", "headers held ahead of their blocks",
                     [({}, len(sync.tree.nodes))])
            m.metric("dotbit_p2p_refused_total", "counter", "what peers sent that could not become the chain",
                     [({"what": "low_work_headers"}, sync.low_work_refused),
                      ({"what": "unrequested_blocks"}, sync.unrequested_refused)])
            self._addrbook(m, self.node.p2p)
        m.metric("dotbit_mempool_transactions", "gauge", "transactions in the mempool", [({}, s["mempool_txs"])])
        m.metric("dotbit_mempool_bytes", "gauge", "serialized size of the mempool", [({}, s["mempool_bytes"])])
        self._mempool(m, self.node.mempool)
        m.metric("dotbit_names", "gauge", f"names in the index, expired included (capped at {NAMES_COUNT_CAP})",
                 [({}, s["names"])])
        r = self.node.resolver
        if r is not None:
            self._resolver(m, r)
        self._connections(m, r)
        return m.text().encode()

    def _addrbook(self, m: "_Writer", p2p) -> None:
        """The address book's tables, and what addr messages and dials did to it (issue 15 §3)."""
        book = p2p.book
        m.metric("dotbit_p2p_addrbook_entries", "gauge", "addresses in the book, by table",
                 [({"table": t}, n) for t, n in book.counts().items()])
        m.metric("dotbit_p2p_addr_total", "counter",
                 "addresses received in addr messages: added, already known or refused (slot held), "
                 "or dropped over the per-peer rate limit",
                 [({"result": k}, n) for k, n in p2p.addr_counts.items()])
        m.metric("dotbit_p2p_addrbook_changes_total", "counter",
                 "newcomers refused because a good entry holds their slot; entries evicted "
                 "(terrible, or pushed out of tried)",
                 [({"change": "refused"}, book.refused), ({"change": "evicted"}, book.evicted)])
        m.metric("dotbit_p2p_outbound_dials_total", "counter", "outbound TCP dials, by result",
                 [({"result": k}, n) for k, n in p2p.dials.items()])

    @staticmethod
    def _mempool(m: "_Writer", pool) -> None:
        """What a full mempool does (docs/security.md): memory against the cap, the rolling
        minimum fee rate, refusals by reason and evictions."""
        m.metric("dotbit_mempool_usage_bytes", "gauge", "memory the mempool holds, as its cap counts it",
                 [({}, pool.usage)])
        m.metric("dotbit_mempool_max_bytes", "gauge", "the mempool's cap (--mempool-max-bytes)",
                 [({}, pool.max_bytes)])
        m.metric("dotbit_mempool_min_fee_rate", "gauge",
                 "fee rate (base units per byte) a new transaction must reach now", [({}, pool.min_fee_rate())])
        m.metric("dotbit_mempool_refused_total", "counter", "transactions the mempool refused, by reason",
                 [({"reason": r}, n) for r, n in sorted(pool.refused.items())])
        m.metric("dotbit_mempool_evicted_total", "counter", "transactions evicted from a full mempool",
                 [({}, pool.evicted)])

    def _resolver(self, m: "_Writer", r) -> None:
        """DNS, zone transfer, rate limit, NOTIFY and signed-HTTP counters of the resolver."""
        resp, pool = r.responder, getattr(r, "workers", None)
        rows = []
        counts = list(resp.counts) if pool is None else pool.counts()   # a copy: the total and the rows agree
        for i, n in enumerate(counts):
            if n:
                tcp, rc = divmod(i, 17)
                rows.append(({"transport": "tcp" if tcp else "udp", "rcode": RCODES.get(rc, str(rc))}, n))
        misses = resp.cache_misses if pool is None else pool.total("misses")
        m.metric("dotbit_dns_queries_total", "counter", "DNS queries answered (or dropped), by transport and rcode",
                 rows)
        m.metric("dotbit_dns_cache_hits_total", "counter", "DNS answers served from the rendered-answer cache",
                 [({}, max(0, sum(counts) - misses))])
        m.metric("dotbit_dns_cache_misses_total", "counter", "DNS answers computed (cache misses)",
                 [({}, misses)])
        transfer = r.dns.transfer if r.dns is not None else None
        if transfer is not None:
            m.metric("dotbit_dns_zone_transfers_total", "counter",
                     "zone transfers (AXFR/IXFR) of bit. over TCP, by result",
                     [({"result": k}, n) for k, n in transfer.results.items()])
        rl = r.dns_limiter
        if rl is not None:
            dropped, slipped = (rl.dropped, rl.slipped) if pool is None else (pool.total("dropped"),
                                                                               pool.total("slipped"))
            m.metric("dotbit_dns_rate_limited_total", "counter",
                     "UDP queries over the per-network rate limit: dropped, or answered TC=1 (slip)",
                     [({"action": "drop"}, dropped), ({"action": "slip"}, slipped)])
        if pool is not None:
            self._workers(m, pool)
        nt = getattr(r, "notifier", None)
        if nt is not None:
            m.metric("dotbit_dns_notify_total", "counter",
                     "NOTIFY datagrams sent to secondaries (retries included) and acknowledged",
                     [({"result": "sent"}, nt.sent), ({"result": "acked"}, nt.acked)])
        if r.http is not None:
            self._http(m, r.http, pool)

    @staticmethod
    def _http(m: "_Writer", http, pool) -> None:
        """The signed HTTP API's counters: the node's own server, plus every worker's when the
        workers serve the port (the node's server then only answers what they forward)."""
        stats = http.server_statuses()
        hits, misses = http.cache_hits, http.cache_misses
        ws = [w for w in pool.workers if "http" in w.stats] if pool is not None else []
        for w in ws:
            for st, n in w.stats["http"].items():
                stats[st] = stats.get(st, 0) + n
            hits += w.stats.get("http_cache_hits", 0)
            misses += w.stats.get("http_cache_misses", 0)
        m.metric("dotbit_http_requests_total", "counter", "resolver HTTP responses, by status",
                 [({"status": st}, n) for st, n in sorted(stats.items())])
        m.metric("dotbit_http_cache_hits_total", "counter", "signed HTTP answers served from cache",
                 [({}, hits)])
        m.metric("dotbit_http_cache_misses_total", "counter", "signed HTTP GETs computed (cache misses)",
                 [({}, misses)])
        if ws:
            m.metric("dotbit_http_worker_requests_total", "counter",
                     "HTTP requests each DNS worker took: answered itself, or forwarded whole to the node",
                     [({"worker": str(w.index), "by": by}, w.stats.get(key, 0))
                      for w in ws for by, key in (("worker", "http_answered"), ("node", "http_forwarded"))])
            m.metric("dotbit_http_worker_snapshots_total", "counter",
                     "one-tip snapshots each DNS worker asked the node for (one or more per HTTP answer)",
                     [({"worker": str(w.index)}, w.stats.get("http_snapshots", 0)) for w in ws])
            m.metric("dotbit_http_worker_connections_open", "gauge", "HTTP connections each DNS worker holds",
                     [({"worker": str(w.index)}, w.stats.get("http_conns", 0)) for w in ws])
            m.metric("dotbit_http_worker_connections_refused_total", "counter",
                     "HTTP newcomers each DNS worker refused (per-source caps counted across workers, or full)",
                     [({"worker": str(w.index)}, w.stats.get("http_refused", 0)) for w in ws])

    @staticmethod
    def _workers(m: "_Writer", pool) -> None:
        """Per DNS worker process (--dns-workers): up, answers, restarts."""
        ws = pool.workers
        m.metric("dotbit_dns_worker_up", "gauge", "1 while the DNS worker process runs",
                 [({"worker": str(w.index)}, int(w.alive())) for w in ws])
        limited = {w.index: w.stats.get("dropped", 0) + w.stats.get("slipped", 0) for w in ws}
        m.metric("dotbit_dns_worker_queries_total", "counter",
                 "DNS queries each worker received: answered, dropped, or rate-limited (UDP)",
                 [({"worker": str(w.index), "transport": transport},
                   sum(w.stats.get("counts", ())[part]) + (limited[w.index] if transport == "udp" else 0))
                  for w in ws for transport, part in (("udp", slice(0, 17)), ("tcp", slice(17, 34)))])
        m.metric("dotbit_dns_worker_lookups_total", "counter", "name lookups each worker asked of the node",
                 [({"worker": str(w.index)}, w.stats.get("lookups", 0)) for w in ws])
        m.metric("dotbit_dns_worker_restarts_total", "counter", "DNS worker processes restarted after dying",
                 [({"worker": str(w.index)}, w.restarts) for w in ws])

    def _connections(self, m: "_Writer", r) -> None:
        """Per-source connection caps (core/connlimit.py) of each server, and late heads."""
        limiters = []
        if r is not None and r.dns is not None:
            limiters.append(("dns_tcp", r.dns.tcp_limiter))
        if r is not None and r.http is not None:
            limiters.append(("http", r.http.server.limiter))
        rpc = getattr(self.node, "rpc", None)
        if rpc is not None:
            limiters.append(("rpc", rpc.limiter))
            m.metric("dotbit_rpc_calls_stopped_total", "counter",
                     "costly RPC calls (name_scan, name_history...) stopped at their deadline",
                     [({}, rpc.offloader.stopped)])
        p2p = self.node.p2p
        if p2p is not None and getattr(p2p, "inbound_limiter", None) is not None:
            limiters.append(("p2p", p2p.inbound_limiter))
        m.metric("dotbit_connections_open", "gauge", "connections held, by server",
                 [({"server": s}, len(lim)) for s, lim in limiters])
        m.metric("dotbit_connections_refused_total", "counter",
                 "newcomers refused by a per-address or per-network cap, or when full of them",
                 [({"server": s}, lim.refused) for s, lim in limiters])
        m.metric("dotbit_connections_evicted_total", "counter",
                 "idle connections of the biggest holder closed to make room for another source",
                 [({"server": s}, lim.evicted) for s, lim in limiters])
        timeouts = [({"server": "dns_tcp"}, r.dns.tcp_timeouts)] if r is not None and r.dns is not None else []
        if r is not None and r.http is not None:
            timeouts.append(({"server": "http"}, r.http.server.head_timeouts))
        if timeouts:
            m.metric("dotbit_request_deadline_exceeded_total", "counter",
                     "connections closed for a request head (HTTP) or a message (DNS over TCP, idle "
                     "included) that came too slowly", timeouts)


class _Writer:
    """Exposition format 0.0.4: HELP and TYPE once per metric, then one sample per line."""

    def __init__(self):
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help: str, samples) -> None:
        self.lines.append(f"# HELP {name} {help}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{lab}}} {_number(value)}" if lab else f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v) -> str:
    return repr(float(v)) if isinstance(v, float) else str(int(v))


class MetricsServer:
    """`--metrics-port`: GET /metrics alone, for nodes without the resolver's HTTP port (or to
    keep scrapes off it). Reuses the resolver's lean HTTP server."""

    def __init__(self, render):
        self.render = render
        self._server = HTTPServer(self.dispatch)
        self.port = None

    def dispatch(self, method, target, headers, body, close) -> bytes:
        if target.split("?")[0] != "/metrics":
            return render(404, "text/plain", b"only /metrics here\n", close)
        if method != "GET":
            return render(405, "text/plain", b"use GET\n", close)
        return render(200, CONTENT_TYPE, self.render(), close)

    async def start(self, host: str, port: int) -> None:
        await self._server.start(host, port)
        self.port = self._server.port
        log.info("metrics on http://%s:%d/metrics", host, self.port)

    async def stop(self) -> None:
        await self._server.stop()
