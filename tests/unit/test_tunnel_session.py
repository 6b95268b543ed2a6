"""Two tunnel sessions (the engine both endpoints run) joined by a seeded, simulated link that
loses, duplicates, reorders and delays datagrams, on a simulated clock: data both ways
arrives whole and in order, through many rekeys, and the old keys are gone afterwards."""
from __future__ import annotations

import random

import pytest
from nacl.bindings import crypto_box_keypair

from tunnel import crypto as C
from tunnel import packet as P
from tunnel.pmtu import MAX_PROBES, RAISE_AFTER, SIZES, PathMtu
from tunnel.session import Session


class Link:
    def __init__(self, rng: random.Random, loss: float, dup: float, reorder: float,
                 mtu: int = P.MAX_DATAGRAM, shrink: tuple | None = None):
        self.rng, self.loss, self.dup, self.reorder = rng, loss, dup, reorder
        self.queue: list = []                  # (deliver_at, seq, to_server, datagram)
        self.n = 0
        self.mtu, self.shrink = mtu, shrink    # shrink = (at, smaller mtu): a black hole appears
        self.too_big = 0
        self.largest = 0

    def send(self, now: float, to_server: bool, data: bytes) -> None:
        mtu = self.shrink[1] if self.shrink and now >= self.shrink[0] else self.mtu
        if len(data) > mtu:
            self.too_big += 1
            return
        self.largest = max(self.largest, len(data))
        if self.rng.random() < self.loss:
            return
        for _ in range(2 if self.rng.random() < self.dup else 1):
            delay = 0.005 + (self.rng.random() * 0.02 if self.rng.random() < self.reorder else 0)
            self.n += 1
            self.queue.append((now + delay, self.n, to_server, data))

    def due(self, now: float) -> list:
        ready = sorted(x for x in self.queue if x[0] <= now)
        self.queue = [x for x in self.queue if x[0] > now]
        return ready


def run_pair(seed: int, loss: float, up: bytes, down: bytes, rekey_bytes: int, **path):
    rng = random.Random(seed)
    link, clock = Link(rng, loss, 0.05, 0.2, **path), [0.0]
    (ip, isk), (ep, esk), (cp, csk) = crypto_box_keypair(), crypto_box_keypair(), crypto_box_keypair()
    tid = bytes(rng.randbytes(8))
    client = Session(tid, C.client_keys(csk, ep, ip, tid), True, lambda d, a: link.send(clock[0], True, d), "s")
    server = Session(tid, C.server_keys(esk, isk, cp, tid), False, lambda d, a: link.send(clock[0], False, d), "c")
    got_up, got_down = bytearray(), bytearray()

    def on_stream(st):
        st.on_data = lambda d: (got_up.extend(d), server.consumed(st, len(d)))
        server.write(st, down)
        server.finish(st)
    server.on_stream = on_stream
    cst = client.open_stream()
    cst.on_data = lambda d: (got_down.extend(d), client.consumed(cst, len(d)))
    client.write(cst, up)
    client.finish(cst)
    link.send(0.0, True, client.build_open(C.key_id(ep), cp, bytes(16), bytes(8), 0.0, 0))
    def done():
        return cst.send.fin_acked and cst.eof_told
    # After the transfer the client keeps talking (a PING every 50 ms) until a rekey it started
    # near the end has completed: the server switches on the first datagram under the new tid.
    while clock[0] < 120 and not (done() and client.rekey is None and server.rekey is None):
        clock[0] += 0.001
        now = clock[0]
        if done() and round(now * 1000) % 50 == 0:
            client.control.append(P.Ping())
        for _, _, to_server, data in link.due(now):
            (server if to_server else client).on_datagram(P.parse_datagram(data), "c" if to_server else "s", now)
        if client.confirmed and client.key_bytes > rekey_bytes:
            client.start_rekey(now)
        for s in (client, server):
            s.on_timer(now)
            s.flush(now, tick=True)
    return bytes(got_up), bytes(got_down), client, server, link


@pytest.mark.parametrize("seed, loss", [(1, 0.0), (2, 0.05), (3, 0.15)])
def test_data_both_ways_survives_a_bad_link_and_rekeys(seed, loss):
    up, down = random.Random(seed).randbytes(120_000), random.Random(-seed).randbytes(200_000)
    got_up, got_down, client, server, _ = run_pair(seed, loss, up, down, rekey_bytes=30_000)
    assert got_up == up and got_down == down
    assert client.rekeys >= 3 and client.tid == server.tid and client.keys.send == server.keys.recv
    assert server.rekey is None           # the server switched: its old keys are gone


# --- path MTU discovery (tunnel/pmtu.py) ----------------------------------------------------------

def test_probes_raise_the_datagram_size_to_what_the_path_carries():
    up, down = random.Random(4).randbytes(300_000), random.Random(-4).randbytes(2_000_000)
    got_up, got_down, client, server, link = run_pair(4, 0.0, up, down, rekey_bytes=1 << 30, mtu=20_000)
    assert got_up == up and got_down == down
    # 1472 and 8972 answered, 16384 fits too; 32768 was lost MAX_PROBES times: the search stopped.
    assert client.pmtu.size == server.pmtu.size == 16384 and link.largest == 16384
    assert client.mss == P.max_plaintext(16384) - 64
    # Only probes were too big (never data), and the server, sending the whole time, gave up on 32768.
    assert 0 < link.too_big <= 2 * MAX_PROBES and server.pmtu.next == len(SIZES)


def test_lost_probes_keep_the_base_size():
    up, down = random.Random(5).randbytes(100_000), random.Random(-5).randbytes(2_000_000)
    got_up, got_down, client, server, link = run_pair(5, 0.0, up, down, rekey_bytes=1 << 30, mtu=1400)
    assert got_up == up and got_down == down
    assert client.pmtu.size == server.pmtu.size == P.BASE_DATAGRAM
    # Three probes of 1472 bytes from the server (sending all along), then no more; at most
    # as many from the client, which stops probing when its data is all acknowledged.
    assert server.pmtu.next == len(SIZES) and MAX_PROBES <= link.too_big <= 2 * MAX_PROBES
    assert client.pmtu.black_holes == server.pmtu.black_holes == 0


@pytest.mark.parametrize("seed", [6, 7])
def test_a_black_hole_for_big_datagrams_falls_back_and_the_transfer_completes(seed):
    up, down = random.Random(seed).randbytes(100_000), random.Random(-seed).randbytes(3_000_000)
    got_up, got_down, client, server, link = run_pair(seed, 0.01, up, down, rekey_bytes=1 << 30, shrink=(0.05, 1400))
    assert got_up == up and got_down == down
    assert link.largest > 30_000 and link.too_big > 0          # big datagrams went through, then vanished
    assert server.pmtu.black_holes >= 1 and server.pmtu.size == P.BASE_DATAGRAM


def test_probe_answers_for_another_size_are_ignored_and_the_search_resumes_later():
    m = PathMtu()
    assert m.probe_due(0.0) == 1472
    m.sent(1472, 0.0, 0.1)
    m.on_ack(65507)                                 # not what was probed: a forged or stale answer
    assert m.size == P.BASE_DATAGRAM and m.probe_due(0.0) is None
    for i in range(MAX_PROBES):
        m.check(1.0 + i)
        if i < MAX_PROBES - 1:
            assert m.probe_due(1.0 + i) == 1472
            m.sent(1472, 1.0 + i, 0.1)
    assert m.probe_due(10.0) is None and m.probe_due(3.0 + RAISE_AFTER) == 1472


def test_a_datagram_of_many_probes_is_answered_once():
    rng = random.Random(8)
    tid, keys, sent = rng.randbytes(8), C.Keys(rng.randbytes(32), rng.randbytes(32)), []
    server = Session(tid, keys, False, lambda d, a: sent.append(d), "c")
    header = P.Data(tid, 0, b"").header()
    plain = bytes([P.F_PROBE]) * 5000            # 5,000 PROBE frames in one datagram
    assert server.on_datagram(P.Data(tid, 0, C.seal(keys.recv, 0, header, plain)), "c", 1.0)
    server.flush(1.0)
    (reply,) = sent
    pkt = P.parse_datagram(reply)                # sealed with the server's send key
    frames = P.decode_frames(C.unseal(keys.send, pkt.pn, pkt.header(), pkt.sealed))
    assert frames == [P.ProbeAck(P.DATA_HEADER + 5000 + P.TAG_LEN)]


def test_a_client_that_moves_is_sent_small_datagrams_until_probed_again():
    rng = random.Random(9)
    tid, keys = rng.randbytes(8), C.Keys(rng.randbytes(32), rng.randbytes(32))
    server = Session(tid, keys, False, lambda d, a: None, "c")
    server.pmtu.size, server.mss = P.MAX_DATAGRAM, P.max_plaintext(P.MAX_DATAGRAM) - 64   # as after probing
    header = P.Data(tid, 0, b"").header()
    assert server.on_datagram(P.Data(tid, 0, C.seal(keys.recv, 0, header, bytes([P.F_PING]))), "c", 1.0)
    assert server.pmtu.size == P.MAX_DATAGRAM                     # same address: same path
    header = P.Data(tid, 1, b"").header()
    assert server.on_datagram(P.Data(tid, 1, C.seal(keys.recv, 1, header, bytes([P.F_PING]))), "c2", 1.1)
    assert server.addr == "c2" and server.pmtu.size == P.BASE_DATAGRAM and server.mss == P.MAX_PLAINTEXT - 64
