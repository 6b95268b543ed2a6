"""--dns-workers 2 on a real node: both worker processes answer over UDP and TCP (SO_REUSEPORT
spreads TCP clients by source port, and UDP datagrams at random, one source port's too), a new block changes the answers of every worker, a
validating client accepts their signatures, junk never kills one, the rate limit holds in total
across workers, a worker that dies is restarted, and killing the node ends the workers."""
from __future__ import annotations

import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from support.harness import run_cli, running
from support.resolver import ResolverNode, needs_tools, new_datadir, sample_names

WORKERS = ("--dns-workers", "2")


def _setup(n):
    n.fund(blocks=110)
    n.register(sample_names())


@pytest.fixture(scope="module")
def node():
    yield from running(ResolverNode(new_datadir(), *WORKERS), _setup)


def metrics(node) -> str:
    """The workers serve the HTTP port too: a connection the kernel gave a worker that is being
    killed is reset (SO_REUSEPORT), so a scrape is retried on another."""
    for attempt in range(5):
        conn = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=5)
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode()
        except ConnectionError:
            if attempt == 4:
                raise
            time.sleep(0.2)
        finally:
            conn.close()


def per_worker(node, metric: str) -> dict:
    """{(worker, transport or ""): value} of one per-worker metric."""
    out = {}
    for labels, value in re.findall(rf'{metric}\{{([^}}]*)\}} (\d+)', metrics(node)):
        d = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        out[(d["worker"], d.get("transport", ""))] = int(value)
    return out


def until(predicate, seconds: float = 10.0):
    """Poll (worker stats reach the node once a second)."""
    deadline = time.monotonic() + seconds
    while True:
        got = predicate()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def ask_udp(node, q: dns.message.Message) -> dns.message.Message:
    """One query from a fresh source port (a fresh 4-tuple: any worker may get it)."""
    return dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5)


def addresses(r) -> set:
    return {rd.address for rrset in r.answer for rd in rrset if hasattr(rd, "address")}


def worker_pids(node, helpers: bool = False) -> list[int]:
    """The node's DNS worker processes (with `helpers`, multiprocessing's resource tracker too)."""
    pid = node.proc.pid
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        children = [int(p) for p in f.read().split()]
    out = []
    for c in children:
        try:
            with open(f"/proc/{c}/cmdline", "rb") as f:
                if (b"multiprocessing" if helpers else b"spawn_main") in f.read():
                    out.append(c)
        except OSError:
            pass
    return out


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for its reaper counts: it runs no code and holds no socket)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_both_workers_answer_over_udp_and_tcp(node):
    for i in range(64):
        tcp = i % 2 == 1
        q = dns.message.make_query("example.bit.", "A", want_dnssec=i % 4 < 2)
        r = (dns.query.tcp if tcp else dns.query.udp)(q, "127.0.0.1", port=node.dns_port, timeout=5)
        assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
        assert addresses(r) == {"192.0.2.1", "192.0.2.2"}
    seen = until(lambda: (c := per_worker(node, "dotbit_dns_worker_queries_total")) and sum(c.values()) >= 64
                 and all(c.get((w, t), 0) > 0 for w in "01" for t in ("udp", "tcp")) and c)
    assert seen, per_worker(node, "dotbit_dns_worker_queries_total")
    # the node's own totals add the workers up
    text = metrics(node)
    assert sum(int(n) for n in re.findall(r'dotbit_dns_queries_total\{[^}]*\} (\d+)', text)) == sum(seen.values())


def test_datagrams_from_one_source_port_are_spread_over_both_workers(node):
    """The kernel's default picks a worker by the 4-tuple, so one client socket would load one
    worker only (dnsperf's 8 sockets loaded one worker near twice the other); the reuseport
    program picks at random per datagram."""
    before = until(lambda: (c := per_worker(node, "dotbit_dns_worker_queries_total")) and c)
    wire = dns.message.make_query("example.bit.", "A").to_wire()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.connect(("127.0.0.1", node.dns_port))
        for _ in range(200):            # one at a time: none lost to a full buffer
            s.send(wire)
            assert dns.message.from_wire(s.recv(65535)).rcode() == dns.rcode.NOERROR
    rose = lambda c: {w: c.get((w, "udp"), 0) - before.get((w, "udp"), 0) for w in "01"}     # noqa: E731
    got = until(lambda: (c := per_worker(node, "dotbit_dns_worker_queries_total"))
                and sum(rose(c).values()) >= 200 and rose(c))
    assert got and all(n >= 40 for n in got.values()), got       # 200 at random: each far above 40


def test_a_new_block_changes_the_answers_of_every_worker(node):
    q = dns.message.make_query("www.cn.bit.", "A", want_dnssec=True)
    soa = dns.message.make_query("bit.", "SOA")
    before = {ask_udp(node, soa).answer[0][0].serial for _ in range(16)}
    for _ in range(32):                      # cached (as a denial) in both workers now
        assert not addresses(ask_udp(node, q))
    node.update(b"d/cn", {"ip": ["198.51.100.7"], "map": {"www": {"ip": ["198.51.100.8"]}}})
    for _ in range(32):
        assert addresses(ask_udp(node, q)) == {"198.51.100.8"}
        assert ask_udp(node, soa).answer[0][0].serial == max(before) + 1
    node.register({b"d/fresh": {"ip": ["203.0.113.5"]}})
    fresh = dns.message.make_query("fresh.bit.", "A")
    for _ in range(32):
        assert addresses(ask_udp(node, fresh)) == {"203.0.113.5"}


def test_workers_answer_the_stored_zones_serial(node, tmp_path):
    """The SOA a worker answers names the stored zone's serial (which also rises on reorgs and
    on signature refreshes between blocks), as the in-process resolver's does: a secondary
    checking the SOA over the workers sees the serial it would transfer."""
    path = str(tmp_path / "bit.zone")
    out = run_cli("--network", "regtest", "--datadir", node.datadir, "--rpc-port", str(node.rpc_port),
                  "zone", "export", path, timeout=120)
    assert out.returncode == 0, out.stderr
    with open(path) as f:
        exported = int(re.search(r"\bSOA\s+\S+\s+\S+\s+(\d+)", f.read()).group(1))
    soa = dns.message.make_query("bit.", "SOA")
    assert {ask_udp(node, soa).answer[0][0].serial for _ in range(16)} == {exported}


def test_junk_never_kills_a_worker(node):
    rng = random.Random(20)
    q = dns.message.make_query("example.bit.", "A").to_wire()
    junk = [b"", b"\x00", q[:11], q[:12], q[:-3], q + b"\x00" * 5, bytes(rng.randrange(256) for _ in range(40)),
            q[:2] + b"\x80" + q[3:],                       # a response: never answered
            q[:4] + b"\x00\x05" + q[6:]]                    # five questions announced, one there
    junk += [bytes(rng.randrange(256) for _ in range(rng.randrange(12, 300))) for _ in range(200)]
    for data in junk:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.05)
            s.sendto(data, ("127.0.0.1", node.dns_port))
            try:
                reply = s.recv(65535)
            except socket.timeout:
                continue
            r = dns.message.from_wire(reply, question_only=True) if len(reply) >= 12 else None
            assert r is not None and r.rcode() in (dns.rcode.FORMERR, dns.rcode.NOTIMP, dns.rcode.REFUSED,
                                                   dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.BADVERS)
    for data in junk[:40]:                                   # and over TCP
        with socket.create_connection(("127.0.0.1", node.dns_port), timeout=5) as s:
            s.sendall(len(data).to_bytes(2, "big") + data)
            s.settimeout(0.3)
            try:
                s.recv(65535)
            except (socket.timeout, ConnectionError):
                pass
    assert all(addresses(ask_udp(node, dns.message.make_query("example.bit.", "A"))) for _ in range(16))
    assert per_worker(node, "dotbit_dns_worker_restarts_total") == {("0", ""): 0, ("1", ""): 0}
    assert per_worker(node, "dotbit_dns_worker_up") == {("0", ""): 1, ("1", ""): 1}


def test_a_burst_read_as_one_batch_is_answered_as_each_query_alone(node):
    """Many datagrams at once from one socket (spread over the workers, read as batches: cached answers,
    then one prefetch of the names, then the rest): each answer is what the query asked alone
    gets, and odd packets shaped like the fast paths' input (cut short, a compression pointer, a
    bad OPT, a label running past the end) get FORMERR or nothing, never a dead worker."""
    rng = random.Random(21)
    qnames = ["example.bit.", "www.example.bit.", "mail.example.bit.", "_443._tcp.example.bit.", "deleg.bit.",
              "x.deleg.bit.", "alias.example.bit.", "old.example.bit.", "nosuch.bit.", "a.b.example.bit."]
    qnames += [f"burst{i}.bit." for i in range(40)] + [f"w{i}.example.bit." for i in range(40)]
    queries = [dns.message.make_query(rng.choice(qnames), rng.choice(["A", "AAAA", "TLSA", "TXT", "MX", "NS"]),
                                      want_dnssec=rng.random() < 0.6) for _ in range(300)]
    for i, q in enumerate(queries):
        q.id = i
    good = dns.message.make_query("www.example.bit.", "A", use_edns=0).to_wire()
    odd = [good[:-11], good[:-1], good[:12] + b"\x03www\xc0\x0c" + good[-15:], good[:-11] + b"\x00\x00\x29",
           good[:12] + b"\x3fwww" + good[16:]]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.connect(("127.0.0.1", node.dns_port))
        for q in queries:
            s.send(q.to_wire())
        for data in odd:
            s.send(b"\xff\xff" + data[2:])
        got, s_deadline = {}, time.monotonic() + 10
        s.settimeout(0.5)
        while len(got) < len(queries) + len(odd) and time.monotonic() < s_deadline:
            try:
                reply = s.recv(65535)
            except socket.timeout:
                break
            if reply[:2] == b"\xff\xff":
                assert dns.message.from_wire(reply, question_only=True).rcode() == dns.rcode.FORMERR, reply
            else:
                got[int.from_bytes(reply[:2], "big")] = dns.message.from_wire(reply)
    assert len(got) >= len(queries) * 0.9                 # UDP: a few may be lost, none wrong
    def seen(r):         # in any record order; signatures aside (a white lie signed a second later differs)
        return (r.rcode(), r.flags, r.ednsflags, [sorted(line for x in sec for line in (
            str(x).splitlines() if x.rdtype != 46 else [f"RRSIG {x.covers}"])) for sec in (r.answer, r.authority,
                                                                                              r.additional)])
    for i, r in got.items():
        assert seen(r) == seen(ask_udp(node, queries[i])), queries[i].question
    assert per_worker(node, "dotbit_dns_worker_up") == {("0", ""): 1, ("1", ""): 1}


@needs_tools("delv")
def test_delv_validates_answers_from_workers(node, tmp_path):
    out = run_cli("--network", "regtest", "--datadir", node.datadir, "dnssec-anchor", timeout=60)
    _, _, _, _, flags, proto, alg, key = out.stdout.splitlines()[0].split(None, 7)
    anchors = tmp_path / "anchors.conf"
    anchors.write_text(f'trust-anchors {{ bit. static-key {flags} {proto} {alg} "{key}"; }};\n')
    # Each delv run asks from its own ports, so the runs land on both workers.
    for qname, qtype in [("example.bit.", "A"), ("nosuchname.bit.", "A"), ("_443._tcp.example.bit.", "TLSA"),
                         ("www.example.bit.", "MX"), ("a.b.nosuch.example.bit.", "A"), ("deleg.bit.", "DS")] * 2:
        run = subprocess.run(["delv", "@127.0.0.1", "-p", str(node.dns_port), "-a", str(anchors), "+root=bit.",
                              qname, qtype], capture_output=True, text=True, timeout=30)
        assert "fully validated" in run.stdout + run.stderr, (qname, qtype, run.stdout + run.stderr)


def flood_ports(node, sockets: int, each: int) -> dict:
    """sockets x each queries, each socket its own source port; counts full and TC replies."""
    q = dns.message.make_query("bit.", "SOA")
    socks = []
    for _ in range(sockets):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    got = {"full": 0, "tc": 0}
    try:
        for i in range(each):
            for j, s in enumerate(socks):
                q.id = (i * sockets + j) & 0xFFFF
                s.sendto(q.to_wire(), ("127.0.0.1", node.dns_port))
        deadline = time.monotonic() + 1.0
        for s in socks:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                while True:
                    r = dns.message.from_wire(s.recv(65535))
                    got["tc" if r.flags & dns.flags.TC else "full"] += 1
                    s.settimeout(0.01)
            except socket.timeout:
                pass
    finally:
        for s in socks:
            s.close()
    return got


def test_the_rate_limit_holds_in_total_across_workers():
    n = ResolverNode(new_datadir(), *WORKERS, "--dns-rate-limit", "20", "--dns-rate-limit-exempt", "none")
    for _ in running(n):
        t0 = time.monotonic()
        hit = flood_ports(n, 40, 10)
        elapsed = time.monotonic() - t0
        # burst 20, then 20/s in total, though the 40 ports spread over both workers
        assert 20 <= hit["full"] <= 20 + 20 * elapsed + 5, (hit, elapsed)
        assert hit["tc"] >= 150, hit
        counts = until(lambda: (c := per_worker(n, "dotbit_dns_worker_queries_total"))
                       and all(c.get((w, "udp"), 0) > 0 for w in "01") and c)
        assert counts, per_worker(n, "dotbit_dns_worker_queries_total")
        limited = until(lambda: (c := dict(re.findall(r'dotbit_dns_rate_limited_total\{action="(\w+)"\} (\d+)',
                                                      metrics(n))))
                        and int(c["slip"]) >= hit["tc"] and c)
        assert limited and int(limited["drop"]) >= 150, limited
        time.sleep(1.2)                      # refilled: served again
        assert flood_ports(n, 10, 1)["full"] == 10


def test_a_dead_worker_is_restarted_and_a_killed_node_ends_them_all():
    n = ResolverNode(new_datadir(), *WORKERS)
    try:
        n.start()
        pids = worker_pids(n)
        assert len(pids) == 2, pids
        os.kill(pids[0], signal.SIGKILL)
        assert until(lambda: per_worker(n, "dotbit_dns_worker_restarts_total").get(("0", "")) == 1
                     or per_worker(n, "dotbit_dns_worker_restarts_total").get(("1", "")) == 1, 15)
        assert until(lambda: len([p for p in worker_pids(n) if not gone(p)]) == 2, 15)
        assert "died (exit code -9): restarting it" in n.log()
        assert all(ask_udp(n, dns.message.make_query("bit.", "SOA")).answer for _ in range(16))
        pids = worker_pids(n, helpers=True)
        assert len(pids) == 3, pids
        n.kill()                              # SIGKILL: the node runs no cleanup at all
        assert until(lambda: all(gone(p) for p in pids), 10), [p for p in pids if not gone(p)]
    finally:
        n.stop()
        shutil.rmtree(n.datadir, ignore_errors=True)


@pytest.mark.parametrize("flags,env,match", [
    (("--dns-workers", "0"), {}, "--dns-workers must be 1 to 64"),
    ((), {"DOTBIT_RESOLVER_DNS_WORKERS": "65"}, "--dns-workers must be 1 to 64"),
    (("--dns-workers", "2", "--axfr-allow", "127.0.0.1/32"), {}, "cannot serve zone transfers"),
])
def test_unusable_worker_settings_are_one_line(tmp_path, flags, env, match):
    run = subprocess.run([sys.executable, "-m", "node.cli", "--network", "regtest", "--datadir", str(tmp_path),
                          "--dns-port", "0", *flags], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env})
    lines = run.stderr.strip().splitlines()
    assert run.returncode != 0 and len(lines) == 1 and match in lines[0], run.stderr
