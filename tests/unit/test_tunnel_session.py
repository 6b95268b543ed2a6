"""Two tunnel sessions (the engine both endpoints run) joined by a seeded, simulated link that
loses, duplicates, reorders and delays datagrams, on a simulated clock: data both ways
arrives whole and in order, through many rekeys, and the old keys are gone afterwards."""
from __future__ import annotations

import random

import pytest
from nacl.bindings import crypto_box_keypair

from tunnel import crypto as C
from tunnel import packet as P
from tunnel.session import Session


class Link:
    def __init__(self, rng: random.Random, loss: float, dup: float, reorder: float):
        self.rng, self.loss, self.dup, self.reorder = rng, loss, dup, reorder
        self.queue: list = []                  # (deliver_at, seq, to_server, datagram)
        self.n = 0

    def send(self, now: float, to_server: bool, data: bytes) -> None:
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


def run_pair(seed: int, loss: float, up: bytes, down: bytes, rekey_bytes: int):
    rng = random.Random(seed)
    link, clock = Link(rng, loss, 0.05, 0.2), [0.0]
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
    while clock[0] < 120 and not (cst.send.fin_acked and cst.eof_told):
        clock[0] += 0.001
        now = clock[0]
        for _, _, to_server, data in link.due(now):
            (server if to_server else client).on_datagram(P.parse_datagram(data), "c" if to_server else "s", now)
        if client.confirmed and client.key_bytes > rekey_bytes:
            client.start_rekey(now)
        for s in (client, server):
            s.on_timer(now)
            s.flush(now, tick=True)
    return bytes(got_up), bytes(got_down), client, server


@pytest.mark.parametrize("seed, loss", [(1, 0.0), (2, 0.05), (3, 0.15)])
def test_data_both_ways_survives_a_bad_link_and_rekeys(seed, loss):
    up, down = random.Random(seed).randbytes(120_000), random.Random(-seed).randbytes(200_000)
    got_up, got_down, client, server = run_pair(seed, loss, up, down, rekey_bytes=30_000)
    assert got_up == up and got_down == down
    assert client.rekeys >= 3 and client.tid == server.tid and client.keys.send == server.keys.recv
    assert server.rekey is None           # the server switched: its old keys are gone
