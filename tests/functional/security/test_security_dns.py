"""DNS as an amplifier, and what keeps it small: UDP answers within what the query allows
(512 without EDNS, the EDNS size clamped to 1232, TC=1 beyond), minimal ANY (RFC 8482), and
response rate limiting per client network (token bucket, drop with a TC=1 slip)."""
from __future__ import annotations

import http.client
import re
import shutil
import socket
import time

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from node.resolver.ratelimit import ALLOW, DROP, SLIP, ResponseRateLimiter, truncated_reply
from support.resolver import ResolverNode, new_datadir, sample_names, started_resolver_node

WIDE = {"ip6": [f"2001:db8::{i:x}" for i in range(1, 51)]}      # 50 AAAA: ~1.4 kB, ~1.5 kB signed


@pytest.fixture(scope="module")
def node():
    def setup(n):
        n.fund(blocks=110)
        n.register({**sample_names(), b"d/wide": WIDE})
    yield from started_resolver_node(setup)


@pytest.fixture(scope="module")
def limited():
    """A resolver limiting every source (loopback included) to 20 answers/s."""
    n = ResolverNode(new_datadir(), "--dns-rate-limit", "20", "--dns-rate-limit-exempt", "none")
    n.start()
    yield n
    n.stop()
    shutil.rmtree(n.datadir, ignore_errors=True)


def udp(node, q, source="127.0.0.1") -> tuple[bytes, dns.message.Message]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.settimeout(5)
        s.sendto(q.to_wire(), ("127.0.0.1", node.dns_port))
        wire = s.recv(65535)
    return wire, dns.message.from_wire(wire)


# --- sizes ---------------------------------------------------------------------------------------

SIZES = [(True, 512, 512), (True, 1232, 1232), (True, 1400, 1232), (True, 4096, 1232), (True, 65535, 1232)]


# DO rides in EDNS, so the query without EDNS is asked only without DO.
@pytest.mark.parametrize("edns,payload,limit,do", [(False, None, 512, False)] + [(*s, do) for s in SIZES
                                                                                 for do in (False, True)])
def test_udp_answers_fit_what_the_query_allows(node, edns, payload, limit, do):
    for qname, qtype in (("wide.bit.", "AAAA"), ("big.bit.", "TXT"), ("example.bit.", "ANY"),
                         ("nothing.bit.", "A"), ("bit.", "DNSKEY")):
        kw = {"use_edns": 0, "payload": payload, "want_dnssec": do} if edns else {"use_edns": False}
        q = dns.message.make_query(qname, qtype, **kw)
        wire, r = udp(node, q)
        assert len(wire) <= limit, (qname, qtype, len(wire))
        if edns:
            assert r.payload <= 1232
        full = dns.query.tcp(q, "127.0.0.1", port=node.dns_port, timeout=5)
        if len(full.to_wire()) > limit:
            assert r.flags & dns.flags.TC and not r.answer, (qname, qtype)      # truncated: go to TCP
        else:
            assert not r.flags & dns.flags.TC and r.answer == full.answer
    # the wide name really is bigger than any UDP answer, and complete over TCP
    q = dns.message.make_query("wide.bit.", "AAAA", use_edns=0, payload=4096, want_dnssec=True)
    full = dns.query.tcp(q, "127.0.0.1", port=node.dns_port, timeout=5)
    assert len(full.to_wire()) > 1232 and len(full.answer[0]) == 50


# --- ANY -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("tcp", [False, True])
def test_any_is_answered_with_one_signed_rrset(node, tcp):
    dnskey = dns.query.tcp(dns.message.make_query("bit.", "DNSKEY", want_dnssec=True), "127.0.0.1",
                           port=node.dns_port, timeout=5).answer
    keys = {dns.name.from_text("bit."): next(r for r in dnskey if r.rdtype == dns.rdatatype.DNSKEY)}
    for qname in ("example.bit.", "www.example.bit.", "bit.", "_443._tcp.example.bit."):
        q = dns.message.make_query(qname, "ANY", want_dnssec=True)
        fn = dns.query.tcp if tcp else dns.query.udp
        r = fn(q, "127.0.0.1", port=node.dns_port, timeout=5)
        assert r.rcode() == dns.rcode.NOERROR
        data = [rr for rr in r.answer if rr.rdtype != dns.rdatatype.RRSIG]
        sigs = [rr for rr in r.answer if rr.rdtype == dns.rdatatype.RRSIG]
        assert len(data) == 1 and len(sigs) == 1, (qname, r.answer)       # RFC 8482: one RRset
        dns.dnssec.validate(data[0], sigs[0], keys)
    # example.bit has A, AAAA, MX, TXT, SSHFP...: ANY is not the way to get them all
    q = dns.message.make_query("example.bit.", "ANY")
    assert len(dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5).answer) == 1


# --- response rate limiting ---------------------------------------------------------------------

def flood(node, source: str, n: int, qname="bit.") -> dict:
    """n queries from `source` as fast as the socket takes them; counts full and TC replies."""
    q = dns.message.make_query(qname, "SOA")
    got = {"full": 0, "tc": 0}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for i in range(n):
            q.id = i
            s.sendto(q.to_wire(), ("127.0.0.1", node.dns_port))
        s.settimeout(0.5)
        try:
            while True:
                wire = s.recv(65535)
                r = dns.message.from_wire(wire)
                assert len(wire) <= len(q.to_wire()) or r.answer     # slips never amplify
                got["tc" if r.flags & dns.flags.TC else "full"] += 1
        except socket.timeout:
            pass
    return got


def test_a_flood_from_one_network_is_limited_and_others_are_served(limited):
    t0 = time.monotonic()
    hit = flood(limited, "127.0.0.1", 400)
    elapsed = time.monotonic() - t0
    # burst 20, then 20/s: everything beyond is dropped, every 2nd refusal a TC=1 slip
    assert 20 <= hit["full"] <= 20 + 20 * elapsed + 5, (hit, elapsed)
    assert 150 <= hit["tc"] <= 200, hit
    # the same /24 shares the bucket (refilled by ~10 during the half second spent reading) ...
    same = flood(limited, "127.0.0.77", 40)
    assert same["full"] <= 16 and same["tc"] >= 10, same
    # ... another network is answered in full at once
    assert flood(limited, "127.0.1.1", 15) == {"full": 15, "tc": 0}
    # and the flooded network is served again once the bucket refills
    time.sleep(1.2)
    assert flood(limited, "127.0.0.1", 10)["full"] == 10
    assert limited.proc.poll() is None
    conn = http.client.HTTPConnection("127.0.0.1", limited.http_port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    counts = dict(re.findall(r'dotbit_dns_rate_limited_total\{action="(\w+)"\} (\d+)', text))
    assert int(counts["slip"]) >= hit["tc"] and int(counts["drop"]) >= 150, counts


def test_loopback_is_exempt_by_default(node):
    assert flood(node, "127.0.0.1", 300)["full"] == 300


def test_limiter_buckets_slip_and_memory_bound():
    now = [0.0]
    rl = ResponseRateLimiter(10, slip=3, exempt=["10.9.0.0/16"], clock=lambda: now[0], max_buckets=100)
    assert [rl.check("192.0.2.1") for _ in range(10)] == [ALLOW] * 10
    assert [rl.check("192.0.2.200") for _ in range(6)] == [DROP, DROP, SLIP, DROP, DROP, SLIP]   # same /24
    assert rl.check("192.0.3.1") == ALLOW                                                       # next /24
    assert all(rl.check("10.9.1.1") == ALLOW for _ in range(100))                               # exempt
    now[0] += 0.1
    assert rl.check("192.0.2.5") == ALLOW and rl.check("192.0.2.5") != ALLOW                    # 1 token/0.1 s
    # IPv6: one bucket per /56
    for _ in range(10):
        rl.check("2001:db8:0:ff::1")
    assert rl.check("2001:db8:0:1::2") != ALLOW and rl.check("2001:db8:0:100::1") == ALLOW
    # a spoofer rotating networks cannot grow the table past its bound
    for i in range(10_000):
        rl.check(f"198.{i % 256}.{i // 256}.1")
    assert len(rl._buckets) <= 100 and len(rl._keys) <= 100
    with pytest.raises(ValueError):
        ResponseRateLimiter(0)


def test_truncated_reply_is_small_and_well_formed():
    for qname, qtype in (("example.bit.", "A"), ("a.b.c.example.bit.", "TLSA"), ("bit.", "ANY")):
        q = dns.message.make_query(qname, qtype, want_dnssec=True)
        wire = q.to_wire()
        out = truncated_reply(wire)
        assert out is not None and len(out) <= len(wire)
        r = dns.message.from_wire(out)
        assert r.id == q.id and r.flags & dns.flags.TC and r.flags & dns.flags.QR and r.question == q.question
        assert q.is_response(r)
    for junk in (b"", b"\x00" * 12, wire[:15], wire[:2] + b"\x80" + wire[3:]):
        assert truncated_reply(junk) is None


def test_a_random_name_flood_costs_little_memory_per_query():
    """Random nonexistent names (the "water torture" pattern) each need a fresh NSEC white lie:
    neither their signatures nor their empty lookups may take long-lived cache slots; only
    the rendered answer is kept (bounded by the response cache size)."""
    import random
    import tracemalloc

    from core.names.rules import NameRecord
    from core.params import REGTEST
    from node.resolver.dns_answer import Responder
    from node.resolver.dnssec import OnlineSigner
    from node.resolver.identity import ResolverKey
    from core.records import NameSource

    real = NameRecord(b"d/real", b'{"ip":"192.0.2.1"}', bytes(20), 1, bytes(32), 0)
    source = NameSource(lambda n: real if n == b"d/real" else None, lambda: 5, REGTEST)
    signer = OnlineSigner(ResolverKey(bytes(32)))
    r = Responder(source, signer, lambda: 5)
    rng = random.Random(5)
    queries = [dns.message.make_query(f"x{rng.getrandbits(48):x}.bit.", "A", want_dnssec=True).to_wire()
               for _ in range(1500)]
    r.handle(queries[0])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for q in queries[1:]:
            assert r.handle(q)[3] & 0xF == dns.rcode.NXDOMAIN
        per_query = (tracemalloc.get_traced_memory()[0] - before) / (len(queries) - 1)
    finally:
        tracemalloc.stop()
    assert per_query < 1600, per_query          # was ~2,800 B with every cache taking a share
    # real names are still cached and signed from cache
    q = dns.message.make_query("real.bit.", "A", want_dnssec=True).to_wire()
    first = r.handle(q)
    r.invalidate()
    assert r.handle(q)[2:] == first[2:]


def test_dns_can_listen_apart_from_rpc(tmp_path):
    """Serving DNS to others must not need JSON-RPC off loopback: --resolver-bind moves only
    the resolver (here to 127.0.0.2, standing in for a public address)."""
    n = ResolverNode(str(tmp_path / "n"), "--resolver-bind", "127.0.0.2")
    n.start()
    try:
        q = dns.message.make_query("bit.", "SOA")
        assert dns.query.udp(q, "127.0.0.2", port=n.dns_port, timeout=5).answer
        with pytest.raises((dns.exception.Timeout, ConnectionError, OSError)):
            dns.query.udp(q, "127.0.0.1", port=n.dns_port, timeout=1)
        assert n.call("getblockcount") == 0                      # RPC still on 127.0.0.1
    finally:
        n.stop()
