"""What watches the load run's network: a poller per node (when each transaction shows up in
its mempool or a block, its tip, its mempool size), RSS from /proc, and the DNS/HTTP query
threads. Each thread has its own connections: the RPC client is not thread-safe."""
from __future__ import annotations

import http.client
import os
import random
import threading
import time

import dns.message
import dns.query
import dns.rcode

from wallet.nodeclient import NodeError, OperatorClient

POLL = 0.1                     # mempool/tip polling period: the latency resolution


class Watcher(threading.Thread):
    """Polls one node: when each txid first shows in its mempool or a block, its tip and mempool
    size. Its own RPC connection (the client is not thread-safe)."""

    def __init__(self, node, index: int):         # node: a tests/support/harness.NodeProcess
        super().__init__(daemon=True)
        self.node, self.index = node, index
        self.rpc = OperatorClient(f"http://127.0.0.1:{node.rpc_port}", os.path.join(node.datadir, ".cookie"))
        self.seen: dict[str, float] = {}
        self.mined_height: dict[str, int] = {}
        self.known_blocks: set[str] = set()
        self.tip, self.height, self.mempool_size = "", -1, 0
        self.errors = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                self.poll()
            except NodeError:
                self.errors += 1
            self.halt.wait(POLL)
        self.rpc.close()

    def poll(self) -> None:
        now = time.monotonic()
        pool = self.rpc.call("getrawmempool")
        for t in pool:
            self.seen.setdefault(t, now)
        self.mempool_size = len(pool)
        tip = self.rpc.call("getbestblockhash")
        if tip == self.tip:
            return
        h, new = tip, []
        while h and h not in self.known_blocks and len(new) < 500:
            b = self.rpc.call("getblock", h, 1)
            new.append(b)
            h = b.get("previousblockhash")
            if not self.known_blocks:
                break                      # first poll: only the tip, history is not timed
        for b in reversed(new):
            self.known_blocks.add(b["hash"])
            for t in b["tx"]:
                self.seen.setdefault(t, now)
                self.mined_height[t] = b["height"]
        self.tip, self.height = tip, new[0]["height"] if new else self.height


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Querier(threading.Thread):
    """DNS over UDP or HTTP /v1/domain at a fixed rate against the resolvers, names drawn from
    the registered ones plus some that do not exist (NXDOMAIN/404 are answers, not errors)."""

    def __init__(self, kind: str, resolvers: list, rate: float, live_names: list, seed: int):
        super().__init__(daemon=True)
        self.kind, self.resolvers, self.rate = kind, resolvers, rate
        self.live_names = live_names             # grows as names get registered
        self.rng = random.Random(seed)
        self.ok = self.errors = 0
        self.latencies: list[float] = []
        self.error_kinds: dict[str, int] = {}
        self.halt = threading.Event()
        self.conns: dict[int, http.client.HTTPConnection] = {}

    def run(self) -> None:
        if self.rate <= 0:
            return
        period = 1.0 / self.rate
        nxt = time.monotonic()
        i = 0
        while not self.halt.is_set():
            live = self.live_names
            name = self.rng.choice(live) if live and self.rng.random() < 0.8 else f"absent{self.rng.randrange(10**6)}.bit"
            node = self.resolvers[i % len(self.resolvers)]
            i += 1
            t0 = time.monotonic()
            try:
                err = self.dns(node, name) if self.kind == "dns" else self.http(node, name)
            except Exception as e:                    # timeouts, resets: counted, never fatal
                err = type(e).__name__
            if err:
                self.errors += 1
                self.error_kinds[err] = self.error_kinds.get(err, 0) + 1
            else:
                self.ok += 1
                self.latencies.append(time.monotonic() - t0)
            nxt += period
            self.halt.wait(max(0.0, nxt - time.monotonic()))
        for c in self.conns.values():
            c.close()

    def dns(self, node, name: str) -> str | None:
        q = dns.message.make_query(name, "A", want_dnssec=self.rng.random() < 0.5)
        r = dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=2)
        return None if r.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) else dns.rcode.to_text(r.rcode())

    def http(self, node, name: str) -> str | None:
        conn = self.conns.get(node.http_port)
        if conn is None:
            conn = self.conns[node.http_port] = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=5)
        try:
            conn.request("GET", f"/v1/domain/{name}?type=A")
            resp = conn.getresponse()
            resp.read()
        except Exception:
            conn.close()
            del self.conns[node.http_port]
            raise
        return None if resp.status in (200, 404) else f"HTTP {resp.status}"
