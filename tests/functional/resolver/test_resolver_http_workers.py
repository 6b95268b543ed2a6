"""The signed HTTP API on --dns-workers 2: both worker processes answer it on the one HTTP port
(SO_REUSEPORT), answering /v1/name, /v1/domain and /v1/resolver themselves and forwarding
/v1/headers, POST /v1/ekey and /metrics to the node; their envelopes open with the resolver key
and verify with the light client against the headers the API serves; after a block both
workers answer at the new tip; the per-address connection cap holds in total across workers;
malformed HTTP gets a 400 and never kills a worker; with DANE zones /v1/domain is forwarded to
the node. (Killing the node ends the workers, HTTP included: test_resolver_workers.py.)"""
from __future__ import annotations

import base64
import http.client
import random
import re
import socket
import time

import pytest

from core.envelope import open_envelope
from core.params import REGTEST
from light.verify import open_answer, verify_answer
from support.harness import run_cli, running
from support.resolver import ResolverNode, new_datadir, sample_names
from test_resolver_http import check_proofs
from test_resolver_workers import WORKERS, until

SOURCE = ("127.0.0.1", 0)
SCRAPER = ("127.0.0.2", 0)      # another address (loopback too): outside the cap under test


def _setup(n):
    n.fund(blocks=110)
    # imp.bit reads three names (an import chain): a worker asks the node for each as it meets it
    n.register({**sample_names(), b"d/imp": {"import": "dd/imp1"}, b"dd/imp1": {"import": "dd/imp2"},
                b"dd/imp2": {"ip": "192.0.2.77"}})


@pytest.fixture(scope="module")
def node():
    yield from running(ResolverNode(new_datadir(), *WORKERS), _setup)


@pytest.fixture(scope="module")
def pubkey(node):
    out = run_cli("--network", "regtest", "--datadir", node.datadir, "dnssec-anchor", timeout=60)
    return base64.b64decode("".join(out.stdout.splitlines()[0].split()[7:]))


def fetch(node, path: str, method: str = "GET", body: bytes | None = None, source=SOURCE) -> tuple[int, bytes]:
    """One request on a fresh connection (a fresh 4-tuple: either worker may take it)."""
    conn = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=10, source_address=source)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/msgpack"} if body else {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def worker_metric(node, metric: str) -> dict:
    """{(worker, by or ""): value} of a per-worker HTTP metric, scraped from another address."""
    text = fetch(node, "/metrics", source=SCRAPER)[1].decode()
    out = {}
    for labels, value in re.findall(rf'{metric}\{{([^}}]*)\}} (\d+)', text):
        d = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        out[(d["worker"], d.get("by", ""))] = int(value)
    return out


def worker_total(node, metric: str, by: str | None = None) -> int:
    return sum(v for (_, b), v in worker_metric(node, metric).items() if by is None or b == by)


def settled_total(node, metric: str) -> int:
    """A per-worker counter's total once every worker has reported it (each reports every
    second: a total unchanged over 1.2 s is all in)."""
    last = worker_total(node, metric)
    for _ in range(20):
        time.sleep(1.2)
        now, last = last, worker_total(node, metric)
        if now == last:
            return last
    raise AssertionError(f"{metric} never settled")


def test_both_workers_answer_every_endpoint(node, pubkey):
    height = node.call("getblockcount")
    asks = [("/v1/name/d/example", 200, "name"), ("/v1/name/d/nosuch", 404, "error"),
            ("/v1/domain/www.example.bit?type=A", 200, "domain"), ("/v1/domain/imp.bit?type=A", 200, "domain"),
            ("/v1/domain/nosuch.bit?type=A", 404, "error"), ("/v1/resolver", 200, "resolver"),
            ("/v1/headers?from=0&count=3", 200, "headers"), ("/v1/nowhere", 404, "error")]
    for i in range(48):
        path, status, kind = asks[i % len(asks)]
        got, data = fetch(node, path + ("&" if "?" in path else "?") + f"n={i}")
        body = open_envelope(data, pubkey, now=time.time())
        assert (got, body["kind"], body["tip"]["height"]) == (status, kind, height), (path, body)
        check_proofs(body)
    got, data = fetch(node, "/v1/ekey", "POST", b"\x00junk")
    assert got == 400 and open_envelope(data, pubkey)["error"].startswith("ekey-malformed")
    seen = until(lambda: (c := worker_metric(node, "dotbit_http_worker_requests_total"))
                 and all(c.get((w, by), 0) > 0 for w in "01" for by in ("worker", "node")) and c)
    assert seen, worker_metric(node, "dotbit_http_worker_requests_total")
    assert "Traceback" not in node.log()


def test_answers_verify_with_the_light_client(node, pubkey):
    headers = open_envelope(fetch(node, "/v1/headers?from=0&count=2000")[1], pubkey)["answer"]["headers"]
    for fqdn, want in [("www.example.bit.", {"192.0.2.3"}), ("imp.bit.", {"192.0.2.77"}), ("moved.bit.", set()),
                       ("cn.bit.", set())]:
        for i in range(6):                       # fresh connections: both workers' answers
            data = fetch(node, f"/v1/domain/{fqdn}?type=A&i={i}")[1]
            body = open_answer(data, pubkey, fqdn, "A", time.time())
            got = verify_answer(body, lambda h: headers[h], len(headers) - 1, REGTEST, time.time())
            assert got.status == "NOERROR" and got.height == len(headers) - 1
            assert {r.rdata for r in got.records if r.rtype == "A"} == want, (fqdn, got)


def imported_a(node, pubkey, headers=None) -> set:
    """imp.bit's A records as the light client verifies them (at the API's own tip)."""
    headers = headers or open_envelope(fetch(node, "/v1/headers?from=0&count=2000")[1], pubkey)["answer"]["headers"]
    body = open_answer(fetch(node, "/v1/domain/imp.bit?type=A")[1], pubkey, "imp.bit.", "A", time.time())
    got = verify_answer(body, lambda h: headers[h], len(headers) - 1, REGTEST, time.time())
    return {r.rdata for r in got.records if r.rtype == "A"}


def test_after_a_block_both_workers_answer_at_the_new_tip(node, pubkey):
    for _ in range(16):                          # cached in both workers now
        assert fetch(node, "/v1/name/d/cn")[0] == 200
        assert fetch(node, "/v1/resolver")[0] == 200
    node.update(b"d/cn", {"ip": ["198.51.100.9"]})           # one block: within the cache's tip lag
    height = node.call("getblockcount")
    for _ in range(16):
        body = open_envelope(fetch(node, "/v1/name/d/cn")[1], pubkey)
        assert body["tip"]["height"] == height and b"198.51.100.9" in body["answer"]["value"]
        check_proofs(body)
        assert open_envelope(fetch(node, "/v1/resolver")[1], pubkey)["tip"]["height"] == height
    # The end of imp.bit's import chain: only that name changes, yet the answers that read it do.
    headers = open_envelope(fetch(node, "/v1/headers?from=0&count=2000")[1], pubkey)["answer"]["headers"]
    for _ in range(16):
        assert imported_a(node, pubkey, headers) == {"192.0.2.77"}
    node.update(b"dd/imp2", {"ip": ["192.0.2.78"]})
    headers = open_envelope(fetch(node, "/v1/headers?from=0&count=2000")[1], pubkey)["answer"]["headers"]
    for _ in range(16):
        assert imported_a(node, pubkey, headers) == {"192.0.2.78"}


def test_random_subdomains_of_an_import_chain_cost_one_snapshot_each(node, pubkey):
    """A random-subdomain flood on a domain whose value imports others: no subdomain has a cached
    resolution, yet once a worker has met the domain's import chain each request asks the node
    for one snapshot, not one per import (imp.bit reads three names: three snapshots each)."""
    def total(metric, by=None):
        return worker_total(node, metric, by)

    def settled(metric):
        return settled_total(node, metric)

    requests, snapshots = total("dotbit_http_worker_requests_total", "worker"), settled("dotbit_http_worker_snapshots_total")
    rng = random.Random(20)
    n = 40
    for _ in range(n):
        status, body = fetch(node, f"/v1/domain/r{rng.randrange(10**9)}.imp.bit?type=A")
        assert (status, open_envelope(body, pubkey)["kind"]) in ((200, "domain"), (404, "error"))
    assert until(lambda: total("dotbit_http_worker_requests_total", "worker") >= requests + n)
    # Each worker may meet the chain once (two snapshots more for its first request).
    assert settled("dotbit_http_worker_snapshots_total") - snapshots <= n + 2 * 2


def test_malformed_http_gets_400_and_workers_live(node):
    junk = [b"BLAH\r\n\r\n", b"GET /v1/resolver HTTP/1.1\r\nbad header\r\n\r\n", b"GET nothing HTTP/1.1\r\n\r\n",
            b"\x00\xff" * 40 + b"\r\n\r\n", b"GET /v1/resolver HTTP/2.0\r\n\r\n",
            b"GET //[ HTTP/1.1\r\n\r\n"]                 # urllib refuses this target: a 400, not a 500
    for i in range(20):
        with socket.create_connection(("127.0.0.1", node.http_port), timeout=10) as s:
            s.sendall(junk[i % len(junk)])
            assert s.recv(100).startswith(b"HTTP/1.1 400")
    for _ in range(16):
        assert fetch(node, "/v1/name/d/example")[0] == 200
    assert worker_metric(node, "dotbit_dns_worker_restarts_total") == {("0", ""): 0, ("1", ""): 0}


def test_the_connection_cap_holds_in_total_across_workers():
    n = ResolverNode(new_datadir(), *WORKERS, "--conns-per-addr", "4")
    for _ in running(n):
        socks = [socket.create_connection(("127.0.0.1", n.http_port), timeout=10) for _ in range(12)]
        try:
            time.sleep(0.5)                      # every worker has taken (or refused) its newcomers
            statuses = []
            for s in socks:
                s.sendall(b"GET /v1/resolver HTTP/1.1\r\nHost: x\r\n\r\n")
                statuses.append(s.recv(12)[9:12])
            # 4 in all, though the 12 connections spread over both workers (each would take 4 alone)
            assert statuses.count(b"200") == 4 and statuses.count(b"503") == 8, statuses
            refused = until(lambda: (c := worker_metric(n, "dotbit_http_worker_connections_refused_total"))
                            and sum(c.values()) == 8 and c)
            assert refused, worker_metric(n, "dotbit_http_worker_connections_refused_total")
            # Both workers took part (each reports its counts every second: waited for, not read once).
            took = until(lambda: (t := worker_metric(n, "dotbit_http_worker_requests_total"))
                         and all(t.get((w, "worker"), 0) + refused.get((w, ""), 0) > 0 for w in "01") and t)
            assert took, (worker_metric(n, "dotbit_http_worker_requests_total"), refused)
        finally:
            for s in socks:
                s.close()
        # Closed connections are uncounted everywhere: four more fit.
        assert until(lambda: all(fetch(n, "/v1/resolver")[0] == 200 for _ in range(4)), 5)


def test_with_another_record_source_domains_are_forwarded_to_the_node(tmp_path):
    """DANE zones run in the node: /v1/domain is answered there, whichever worker takes it."""
    from support.dane_zones import TLSA_HEX, signed_zone, write_zone
    zone = write_zone(signed_zone("plain.test.", None), str(tmp_path / "plain.test.zone"))
    n = ResolverNode(new_datadir(), *WORKERS, "--dane-zone", zone)
    for _ in running(n):
        key = base64.b64decode("".join(run_cli("--network", "regtest", "--datadir", n.datadir, "dnssec-anchor",
                                               timeout=60).stdout.splitlines()[0].split()[7:]))
        for i in range(16):
            status, data = fetch(n, f"/v1/domain/_443._tcp.www.plain.test?type=TLSA&i={i}")
            ans = open_envelope(data, key)["answer"]
            assert status == 200 and ans["source"] == "dane" and ans["secure"] is False
            assert ans["records"] == [["_443._tcp.www.plain.test.", "TLSA", f"3 1 1 {TLSA_HEX}"]]
            assert open_envelope(fetch(n, f"/v1/name/d/nosuch?i={i}")[1], key)["kind"] == "error"
        # Both counts are waited for: each worker reports them once a second, so the forwarded
        # count (scrapes of /metrics add to it) can be in while the answered one is a report behind.
        took = until(lambda: (c := worker_metric(n, "dotbit_http_worker_requests_total"))
                     and sum(c.get((w, "node"), 0) for w in "01") >= 16
                     and sum(c.get((w, "worker"), 0) for w in "01") >= 16 and c)
        assert took, worker_metric(n, "dotbit_http_worker_requests_total")


def test_requests_asked_together_each_get_their_own_answer(node, pubkey):
    """Requests that reach a worker in one event-loop turn share one "snaps" question to the
    node; each must still get the answer to its own question, at one tip, with its own proofs.
    24 connections each send their request before any answer is read (so batches form), for
    names that exist, that do not, and one whose value imports others (more than one snapshot)."""
    headers = open_envelope(fetch(node, "/v1/headers?from=0&count=2000")[1], pubkey)["answer"]["headers"]
    want = {"www.example.bit.": ("NOERROR", {"192.0.2.3"}), "imp.bit.": ("NOERROR", imported_a(node, pubkey, headers)),
            "example.bit.": ("NOERROR", {"192.0.2.1", "192.0.2.2"})}
    snapshots = settled_total(node, "dotbit_http_worker_snapshots_total")
    for rnd in range(3):
        asked = []
        socks = []
        try:
            for i in range(24):
                fqdn = list(want)[i % 3] if i % 2 == 0 else f"absent{rnd}x{i}.bit."
                s = socket.create_connection(("127.0.0.1", node.http_port), timeout=10)
                socks.append(s)
                asked.append(fqdn)
            for s, fqdn in zip(socks, asked):
                s.sendall(f"GET /v1/domain/{fqdn}?type=A&r={rnd} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            for s, fqdn in zip(socks, asked):
                r = http.client.HTTPResponse(s)
                r.begin()
                data = r.read()
                body = open_answer(data, pubkey, fqdn, "A", time.time())
                got = verify_answer(body, lambda h: headers[h], len(headers) - 1, REGTEST, time.time())
                if fqdn in want:
                    assert (r.status, got.status, {x.rdata for x in got.records if x.rtype == "A"}) == \
                        (200, *want[fqdn]), fqdn
                else:
                    assert (r.status, got.status) == (404, "NXDOMAIN"), fqdn
        finally:
            for s in socks:
                s.close()
    # One snapshot a request (a batch's answers were each run over their own), and imp.bit's
    # two more in a worker that meets its import chain here first.
    assert settled_total(node, "dotbit_http_worker_snapshots_total") - snapshots <= 3 * 24 + 2 * 2
    assert "Traceback" not in node.log()
