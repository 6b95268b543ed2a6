"""The C drain of the DNS UDP socket (node/resolver/_udpfast.c) against the Python drain it stands
in for (dns_server._UDPFastPath._cached): over real loopback sockets, the same queries get the
same bytes back, the same answers are counted, and a rate-limited client goes through the same
limiter once per datagram with the same verdicts; junk and responses reach the Python path; the
answers the Python path makes are sent in one sendmmsg per batch, the same bytes as a sendto each."""
from __future__ import annotations

import os
import random
import socket

import dns.message
import pytest

from node.resolver.dns_server import UDP_BATCH, _UDPFastPath
from node.resolver.ratelimit import ResponseRateLimiter
from unit.test_fastanswer import responder

if os.environ.get("DOTBIT_REQUIRE_NATIVE"):
    from node.resolver import _udpfast           # CI: the build must have made it
else:
    _udpfast = pytest.importorskip("node.resolver._udpfast", reason="built without a compiler: Python drain in use")


def queries(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    names = ["example.bit.", "www.example.bit.", "nosuch.bit.", "x.sub.example.bit.", "alias.example.bit.",
             "example.com.", "big.bit."]
    out = []
    for i in range(120):
        q = dns.message.make_query(rng.choice(names), rng.choice(["A", "AAAA", "TXT", "MX"]),
                                   want_dnssec=rng.random() < 0.5, use_edns=0 if rng.random() < 0.7 else False)
        q.id = i
        out.append(q.to_wire())
    good = out[0]
    out += [b"", b"\x00" * 5, good[:11], good[:2] + bytes([good[2] | 0x80]) + good[3:], good[:-1],
            bytes(rng.randrange(256) for _ in range(60))]
    return out


def exchange(path: _UDPFastPath, server: socket.socket, wires: list[bytes]) -> list[bytes]:
    """Each wire sent from its own client socket (so replies pair up with queries), the server
    drained, and what each client got back (b"" for nothing)."""
    clients = []
    for w in wires:
        c = socket.socket(server.family, socket.SOCK_DGRAM)
        c.settimeout(0.2)
        c.sendto(w, server.getsockname())
        clients.append(c)
    for _ in range(len(wires) // UDP_BATCH + 2):
        path.readable()
    got = []
    for c in clients:
        try:
            got.append(c.recv(65535))
        except socket.timeout:
            got.append(b"")
        c.close()
    return got


def server_socket(family=socket.AF_INET) -> socket.socket:
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
    s.setblocking(False)
    return s


def paths(r, server, limiters=(None, None)):
    """The Python and the C drain over one Responder; each path's `calls` counts the queries it
    left to the Python handle (the misses)."""
    def counting(path):
        def handle(wire, tcp):
            path.calls += 1
            return r.handle(wire, tcp)
        path.handle, path.calls = handle, 0
        return path
    python = counting(_UDPFastPath(server, r.handle, limiters[0], cached=r.cached))
    native = counting(_UDPFastPath(server, r.handle, limiters[1], cached=r.cached, responder=r))
    return python, native


def test_the_c_drain_sends_the_same_bytes_and_counts_the_same():
    r = responder()
    with server_socket() as server:
        python, native = paths(r, server)
        wires = queries(1)
        first = exchange(python, server, wires)               # renders and keeps the answers
        first_calls = python.calls
        assert sum(1 for b in first if b) >= 115
        before = (list(r.counts), r.cache_misses)
        by_python = exchange(python, server, wires)
        mid = (list(r.counts), r.cache_misses)
        by_c = exchange(native, server, wires)
        assert by_c == by_python                              # byte for byte, query by query
        grew = [b - a for a, b in zip(before[0], mid[0])]
        assert [b - a for a, b in zip(mid[0], r.counts)] == grew and sum(grew) > 100
        assert r.cache_misses - mid[1] == mid[1] - before[1]  # the same queries reached the Python path
        assert native.calls == python.calls - first_calls < len(wires) // 2      # the hits never did


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_uncached_answers_sent_together_are_the_bytes_sent_one_by_one(family):
    """The answers the Python path renders (every query a miss: fresh responders, one clock) go
    out in one sendmmsg per dns_server.SEND_BATCH with the C drain, one sendto each without it:
    every client gets the same bytes either way, over IPv4 and IPv6 (the addresses C rebuilds)."""
    try:
        server = server_socket(family)
    except OSError:
        pytest.skip("no IPv6 loopback")
    with server:
        r1, r2 = responder(), responder()
        python = _UDPFastPath(server, r1.handle, cached=r1.cached)
        native = _UDPFastPath(server, r2.handle, cached=r2.cached, responder=r2)
        wires = queries(3)
        by_python = exchange(python, server, wires)
        by_c = exchange(native, server, wires)
        assert by_c == by_python and sum(1 for b in by_c if b) >= 115
        assert r1.cache_misses == r2.cache_misses > 60 and r1.counts == r2.counts
    with pytest.raises(ValueError):             # more than one sendmmsg: refused, nothing sent
        _udpfast.send(0, [(b"x", ("127.0.0.1", 53))] * 65)
    with pytest.raises(ValueError):             # not numeric: the Python sendto takes it
        _udpfast.send(0, [(b"x", ("localhost", 53))])


def test_a_rate_limited_client_meets_the_same_limiter_once_per_datagram():
    now = [1000.0]

    def limiter():
        return ResponseRateLimiter(rate=5, burst=5, slip=2, exempt=(), clock=lambda: now[0])
    r = responder()
    with server_socket() as server:
        python_limit, c_limit = limiter(), limiter()
        python, native = paths(r, server, (python_limit, c_limit))
        wires = queries(2)[:60]
        exchange(_UDPFastPath(server, r.handle, cached=r.cached), server, wires)       # answers kept
        by_python = exchange(python, server, wires)
        by_c = exchange(native, server, wires)
        assert by_c == by_python
        counted = lambda lim: (lim.allowed, lim.dropped, lim.slipped)                  # noqa: E731
        assert counted(c_limit) == counted(python_limit) and sum(counted(c_limit)) == len(wires)
        assert c_limit.dropped and c_limit.slipped and c_limit.allowed == 5


def test_the_native_drain_is_the_one_in_use_for_a_plain_responder():
    import asyncio
    from node.resolver.dns_server import DNSServer

    async def main():
        server = DNSServer(responder(), port=0)
        await server.start()
        try:
            q = dns.message.make_query("example.bit.", "A")
            loop = asyncio.get_running_loop()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.setblocking(False)
                for _ in range(2):               # rendered, then sent by the C drain from the cache
                    await loop.sock_sendto(c, q.to_wire(), ("127.0.0.1", server.port))
                    reply = await asyncio.wait_for(loop.sock_recv(c, 65535), 5)
                    assert dns.message.from_wire(reply).answer
            assert server.responder.cache_misses == 1 and sum(server.responder.counts) == 2
            assert server.udp_path.responder is server.responder         # the C drain serves it
        finally:
            await server.stop()
    asyncio.run(main())


def test_a_tcp_port_taken_after_udp_got_it_makes_both_try_another():
    """Port 0: UDP gets a free port and TCP must take the same number, which a TCP socket may
    hold already (a CI run failed so). The first attempt's UDP socket is closed and both
    start on another port; a configured port that is taken still fails at once."""
    import asyncio
    import errno
    from unittest import mock
    from node.resolver import dns_server
    from node.resolver.dns_server import DNSServer

    real = asyncio.start_server
    calls = []

    async def taken_once(*a, **k):
        calls.append(a[2])
        if len(calls) == 1:
            raise OSError(errno.EADDRINUSE, "address already in use")
        return await real(*a, **k)

    async def main():
        server = DNSServer(responder(), port=0)
        with mock.patch.object(dns_server.asyncio, "start_server", taken_once):
            await server.start()
        try:
            assert len(calls) == 2 and server.port == calls[1] != 0
            assert server._udp.getsockname()[1] == server.port
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.connect(("127.0.0.1", server.port))        # TCP on the same number
        finally:
            await server.stop()
        fixed = DNSServer(responder(), port=server.port)
        calls.clear()
        with mock.patch.object(dns_server.asyncio, "start_server", taken_once), pytest.raises(OSError):
            await fixed.start()
        assert fixed._udp is None and len(calls) == 1
    asyncio.run(main())
