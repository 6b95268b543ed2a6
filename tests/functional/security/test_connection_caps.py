"""One client must not take every connection slot (issue 15 §5): per-address caps, deadlines for
a request head and for each DNS-over-TCP message, and eviction of the biggest holder's idlest
connection when a server is full. The attacker is this test, opening sockets from 127.0.0.1;
the honest client binds 127.0.0.2, another source on Linux loopback."""
from __future__ import annotations

import http.client
import logging
import re
import shutil
import socket
import struct
import time

import dns.message
import dns.query
import pytest

from support.resolver import ResolverNode, new_datadir

log = logging.getLogger("test.connection_caps")

HONEST = "127.0.0.2"
ANSWER_WITHIN = 3.0          # seconds an honest request may take while the attack holds


@pytest.fixture(scope="module")
def node():
    n = ResolverNode(new_datadir())
    n.start()
    yield n
    n.stop()
    shutil.rmtree(n.datadir, ignore_errors=True)


def open_many(port: int, count: int, first: bytes = b"") -> list[socket.socket]:
    """`count` connections from 127.0.0.1, each having sent `first`; refused ones are kept too
    (the server closes them), so the caller sees how many the server really holds."""
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            if first:
                s.sendall(first)
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


def still_open(socks: list[socket.socket]) -> int:
    """How many of `socks` the server has not closed (a closed one reads EOF or an error)."""
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            data = s.recv(4096)
            if data == b"":
                continue
            if data.startswith(b"HTTP/1.1 503"):
                continue                        # refused: the 503 and the close are on their way
        except BlockingIOError:
            pass
        except OSError:
            continue
        n += 1
    return n


def honest_http(port: int) -> tuple[int, float]:
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_WITHIN + 2, source_address=(HONEST, 0))
    conn.request("GET", "/v1/resolver")
    status = conn.getresponse().status
    conn.close()
    return status, time.monotonic() - t0


def honest_dns_tcp(port: int) -> float:
    t0 = time.monotonic()
    q = dns.message.make_query("bit.", "SOA")
    r = dns.query.tcp(q, "127.0.0.1", port=port, timeout=ANSWER_WITHIN + 2, source=HONEST)
    assert r.answer
    return time.monotonic() - t0


def metric(node, name: str, **labels) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=5, source_address=(HONEST, 0))
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{name}{{{re.escape(lab)}}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def close_all(socks) -> None:
    for s in socks:
        s.close()


def test_a_slowloris_from_one_address_does_not_keep_others_from_http(node):
    log.info("1,100 connections from 127.0.0.1, each with a head that never ends")
    socks = open_many(node.http_port, 1100, b"GET /v1/resolver HTTP/1.1\r\nX-Slow: ")
    try:
        time.sleep(0.5)
        for _ in range(3):
            status, took = honest_http(node.http_port)
            log.info("honest GET from %s: %d in %.3f s", HONEST, status, took)
            assert status == 200 and took < ANSWER_WITHIN, (status, took)
        held = still_open(socks)
        log.info("the server holds %d of them", held)
        assert held <= 64 + 8, held                            # the per-address cap, with room for timing
        assert metric(node, "dotbit_connections_refused_total", server="http") >= 1000
    finally:
        close_all(socks)


def test_a_request_head_has_a_deadline_however_slowly_it_trickles(node):
    s = open_many(node.http_port, 1, b"GET /v1/resolver HTTP/1.1\r\n")[0]
    t0 = time.monotonic()
    got = b""
    try:
        while time.monotonic() - t0 < 16:
            try:
                s.sendall(b"X")                                # a byte every second: never idle
            except OSError:
                break
            s.settimeout(1.0)
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            if not data:
                break
            got += data
        took = time.monotonic() - t0
        log.info("closed after %.1f s with %r", took, got[:40])
        assert got.startswith(b"HTTP/1.1 408") and 9.0 < took < 13.0, (got[:40], took)
    finally:
        s.close()


def test_idle_dns_tcp_connections_from_one_address_do_not_lock_others_out(node):
    log.info("300 idle DNS-over-TCP connections from 127.0.0.1 (the old cap was 256)")
    socks = open_many(node.dns_port, 300)
    try:
        time.sleep(0.5)
        for _ in range(3):
            assert honest_dns_tcp(node.dns_port) < ANSWER_WITHIN
        assert still_open(socks) <= 16 + 4
        assert metric(node, "dotbit_connections_refused_total", server="dns_tcp") >= 250
    finally:
        close_all(socks)


def test_a_dns_tcp_message_has_a_deadline_however_slowly_it_trickles(node):
    wire = dns.message.make_query("bit.", "SOA").to_wire()
    s = open_many(node.dns_port, 1, struct.pack(">H", len(wire)))[0]
    t0 = time.monotonic()
    try:
        for byte in wire:
            time.sleep(1.0)
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    break
            except BlockingIOError:
                continue
            except OSError:
                break
        took = time.monotonic() - t0
        log.info("closed after %.1f s", took)
        assert 4.0 < took < 8.0, took
    finally:
        s.close()


def test_when_full_the_biggest_holder_makes_room_for_another_source():
    """Per-source caps lifted so one address can fill all 256 DNS-over-TCP slots: a newcomer
    from elsewhere still gets in, by eviction, not a reset."""
    n = ResolverNode(new_datadir(), "--conns-per-addr", "5000", "--conns-per-net", "5000")
    n.start()
    socks = []
    try:
        socks = open_many(n.dns_port, 256)
        time.sleep(0.5)
        assert still_open(socks) == 256
        for _ in range(3):                  # the first takes an attacker's slot, the others its own again
            assert honest_dns_tcp(n.dns_port) < ANSWER_WITHIN
        time.sleep(0.3)
        assert still_open(socks) <= 255
        assert metric(n, "dotbit_connections_evicted_total", server="dns_tcp") >= 1
    finally:
        close_all(socks)
        n.stop()
        shutil.rmtree(n.datadir, ignore_errors=True)


def test_rpc_connections_from_one_address_are_capped_and_others_are_served(node):
    log.info("300 idle JSON-RPC connections from 127.0.0.1 (half the 256 slots per address)")
    socks = open_many(node.rpc_port, 300)
    try:
        time.sleep(0.5)
        conn = http.client.HTTPConnection("127.0.0.1", node.rpc_port, timeout=ANSWER_WITHIN,
                                          source_address=(HONEST, 0))
        t0 = time.monotonic()
        conn.request("POST", "/", body=b"{}")
        assert conn.getresponse().status == 401 and time.monotonic() - t0 < ANSWER_WITHIN
        conn.close()
        assert still_open(socks) <= 128 + 4
        assert metric(node, "dotbit_connections_refused_total", server="rpc") >= 150
    finally:
        close_all(socks)
