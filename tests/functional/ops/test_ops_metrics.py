"""/metrics (Prometheus text 0.0.4) and `dotbit-node status` against a real node process:
scrape, parse strictly, and check that the numbers follow real DNS, HTTP, mempool and chain
traffic."""
from __future__ import annotations

import http.client
import math
import random
import re
import socket
import urllib.error
import urllib.request

import dns.message
import dns.query
import dns.rcode
import pytest

from support.harness import NodeProcess, free_port, run_cli, running
from support.name_txs import name_new
from support.resolver import OWNER, ResolverNode, new_datadir

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{({LABEL}(?:,{LABEL})*)?\}})? (\S+)$")
HELP = re.compile(rf"^# HELP ({NAME}) (.*)$")
TYPE = re.compile(rf"^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$")


def parse(text: str) -> dict:
    """A strict reader of the text exposition format: every line is HELP, TYPE or a sample;
    TYPE comes once per metric, before its samples; samples are floats; no series twice;
    counters are named *_total and never negative. Returns {(name, frozenset(labels)): value}."""
    assert text.endswith("\n")
    types, out = {}, {}
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            assert HELP.match(line), line
            continue
        if line.startswith("# TYPE "):
            m = TYPE.match(line)
            assert m and m.group(1) not in types, line
            types[m.group(1)] = m.group(2)
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        assert name in types, f"sample before its TYPE: {line}"
        assert re.fullmatch(r"[-+]?(\d+(\.\d*)?([eE][-+]?\d+)?|Inf)", value), line
        v = float(value)
        assert not math.isnan(v)
        if types[name] == "counter":
            assert name.endswith("_total") and v >= 0, line
        key = (name, frozenset(re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', labels or "")))
        assert key not in out, f"series twice: {line}"
        out[key] = v
    return out


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return parse(r.read().decode())


def val(m: dict, name: str, **labels) -> float:
    return m.get((name, frozenset(labels.items())), 0.0)


def http_get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture(scope="module")
def node():
    metrics_port = free_port()
    n = ResolverNode(new_datadir(), "--metrics-port", str(metrics_port))
    n.metrics_port = metrics_port

    def setup(n):
        n.fund(blocks=103)
        n.register({b"d/example": {"ip": "192.0.2.1"}, b"d/other": {"ip6": "2001:db8::1"}})
    yield from running(n, setup)


def test_parser_rejects_what_prometheus_rejects():
    good = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\"} 3\n"
    assert parse(good) == {("a_total", frozenset({("k", "v")})): 3.0}
    for bad in ("a_total 3\n", "# TYPE a counter\na 1\n", good + "a_total{k=\"v\"} 4\n",
                "# TYPE g gauge\ng{k=v} 1\n", "# TYPE g gauge\ng one\n"):
        with pytest.raises(AssertionError):
            parse(bad)


def test_metrics_follow_traffic(node):
    before = scrape(node.metrics_port)
    assert val(before, "dotbit_up") == 1
    assert val(before, "dotbit_blocks_height") == node.call("getblockcount") == val(before, "dotbit_headers_height")
    assert val(before, "dotbit_sync_progress_ratio") == 1.0
    assert val(before, "dotbit_names") == 2
    assert val(before, "dotbit_mempool_transactions") == 0

    # DNS: the same question twice over UDP (the second from the answer cache), one over TCP,
    # a name that does not exist, and junk that gets FORMERR.
    q = dns.message.make_query("example.bit.", "A")
    for _ in range(2):
        assert dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5).rcode() == dns.rcode.NOERROR
    assert dns.query.tcp(q, "127.0.0.1", port=node.dns_port, timeout=5).rcode() == dns.rcode.NOERROR
    nx = dns.message.make_query(f"nope{random.randrange(10**9)}.bit.", "A")
    assert dns.query.udp(nx, "127.0.0.1", port=node.dns_port, timeout=5).rcode() == dns.rcode.NXDOMAIN
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(b"\x12\x34\x01\x00\x00\x01" + b"\xff" * 10, ("127.0.0.1", node.dns_port))
        reply = s.recv(512)
    assert reply[3] & 0xF == dns.rcode.FORMERR

    # HTTP over one keep-alive connection (answers are cached only for those): one name three
    # times, the third from the cache (an answer is cached from its URL's second miss on), and
    # an unknown endpoint.
    conn = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=10)
    statuses = []
    for path in ("/v1/name/d/example", "/v1/name/d/example", "/v1/name/d/example", "/no/such/thing"):
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        statuses.append(resp.status)
    conn.close()
    assert statuses == [200, 200, 200, 404]

    # Mempool: a NAME_NEW waiting for a block.
    tx = name_new(node.funds, b"d/pending", bytes(20), OWNER)
    node.send(tx)

    after = scrape(node.http_port)          # the resolver port serves the same metrics
    d = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}

    def delta(name, **labels):
        return d.get((name, frozenset(labels.items())), 0)
    assert delta("dotbit_dns_queries_total", transport="udp", rcode="NOERROR") == 2
    assert delta("dotbit_dns_queries_total", transport="tcp", rcode="NOERROR") == 1
    assert delta("dotbit_dns_queries_total", transport="udp", rcode="NXDOMAIN") == 1
    assert delta("dotbit_dns_queries_total", transport="udp", rcode="FORMERR") == 1
    assert delta("dotbit_dns_cache_hits_total") >= 1
    assert delta("dotbit_dns_cache_hits_total") + delta("dotbit_dns_cache_misses_total") == 5
    assert delta("dotbit_http_requests_total", status="200") == 3
    assert delta("dotbit_http_requests_total", status="404") == 1
    assert delta("dotbit_http_cache_hits_total") == 1
    assert val(after, "dotbit_mempool_transactions") == 1
    assert val(after, "dotbit_mempool_bytes") == len(tx.to_bytes())
    assert val(after, "dotbit_uptime_seconds") >= val(before, "dotbit_uptime_seconds")

    node.mine(1)
    mined = scrape(node.metrics_port)
    assert val(mined, "dotbit_blocks_height") == val(before, "dotbit_blocks_height") + 1
    assert val(mined, "dotbit_mempool_transactions") == 0
    assert val(mined, "dotbit_tip_timestamp_seconds") >= val(before, "dotbit_tip_timestamp_seconds")


def test_metrics_port_serves_only_metrics(node):
    assert http_get(node.metrics_port, "/v1/resolver") == 404
    req = urllib.request.Request(f"http://127.0.0.1:{node.metrics_port}/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 405


def test_status_command(node):
    r = run_cli("--regtest", "--datadir", node.datadir, "--rpc-port", str(node.rpc_port), "status", timeout=60)
    assert r.returncode == 0, r.stderr
    s = node.call("getnodestatus")
    fp = node.call("getnodestatus")["resolver"]["fingerprint"]
    text = r.stdout
    assert "network      regtest" in text
    assert f"height       {s['blocks']} (headers {s['headers']}, synced)" in text
    assert s["bestblockhash"] in text and fp in text
    assert f"DNS port {node.dns_port}, HTTP port {node.http_port}" in text
    assert f"names        {s['names']}" in text and s["names"] >= 2
    assert f"metrics      http://127.0.0.1:{node.metrics_port}/metrics" in text
    assert len(text.splitlines()) <= 24                  # one screen


def test_metrics_port_without_resolver(tmp_path):
    """A node without DNS/HTTP still exports chain, p2p and mempool figures on --metrics-port,
    and no resolver series."""
    port = free_port()
    with NodeProcess(str(tmp_path / "n"), "--metrics-port", str(port)) as n:
        n.call("generate", 2)
        m = scrape(port)
    assert val(m, "dotbit_blocks_height") == 2 and val(m, "dotbit_up") == 1
    assert ("dotbit_peers", frozenset({("direction", "inbound")})) in m
    assert not any(name.startswith(("dotbit_dns_", "dotbit_http_")) for name, _ in m)


def test_status_without_a_node(tmp_path):
    r = run_cli("--regtest", "--datadir", str(tmp_path), "--rpc-port", str(free_port()), "status", timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "no node answering" in r.stderr
