"""The DNS workers' parts in one process: the shared rate limit (two limiters on one table meter
one budget, the way two worker processes do) and the lookup link's framing (a stale reply is
skipped by its sequence number; a broken link is reported)."""
from __future__ import annotations

import multiprocessing
import socket
import threading

import pytest

from node.resolver.ratelimit import ALLOW, DROP, SLIP
from node.resolver.sharedlimit import SharedRateLimiter, new_table
from node.resolver.worker_link import FrameBuffer, LookupFailed, NodeLink, frame, unframe
from node.resolver.worker_pool import MAX_GETM, WorkerPool
from core.names.rules import NameRecord
from core.params import REGTEST


def test_two_limiters_on_one_table_share_one_budget():
    now = [100.0]
    table, lock = new_table(multiprocessing.get_context("spawn"))
    a, b = (SharedRateLimiter(10, table, lock, b"k" * 16, exempt=["10.9.0.0/16"], clock=lambda: now[0])
            for _ in range(2))
    verdicts = [(a if i % 2 else b).check(f"192.0.2.{i}") for i in range(30)]      # one /24, both workers
    assert verdicts.count(ALLOW) == 10 and verdicts[10:] == [DROP, SLIP] * 10
    assert b.check("192.0.3.1") == ALLOW                              # another network: its own bucket
    assert all(a.check("10.9.1.1") == ALLOW for _ in range(50))        # exempt: never metered
    now[0] += 0.5                                                      # 5 tokens back, shared
    assert [a.check("192.0.2.1") for _ in range(3)] + [b.check("192.0.2.2") for _ in range(3)] == [ALLOW] * 5 + [DROP]
    assert a.allowed + b.allowed == 10 + 1 + 50 + 5
    other = SharedRateLimiter(10, table, lock, b"x" * 16, clock=lambda: now[0])     # another key: another slot
    assert other.check("192.0.2.1") == ALLOW
    with pytest.raises(ValueError):
        SharedRateLimiter(0, table, lock, b"k" * 16)


def test_a_batch_lookup_answers_as_each_get_alone():
    """ "getm" (a UDP batch's names in one frame) is "get" for each name: absent and expired
    names None, at most MAX_GETM names."""
    height = 500
    recs = {f"d/n{i}".encode(): NameRecord(f"d/n{i}".encode(), b'{"ip":"10.0.0.%d"}' % i, b"a" * 20,
                                           height - 10 * i, b"t" * 32, 0) for i in range(80)}

    class Names:
        def get(self, name):
            return recs.get(name)

    class Chain:
        names = Names()

    class Resolver:
        chain, params = Chain(), REGTEST

    Chain.height = height
    pool = WorkerPool(1, Resolver(), "127.0.0.1", 0)
    asked = [b"d/nosuch"] + list(recs)
    got = pool.lookup(["getm", asked])
    assert len(got) == MAX_GETM
    assert got == [pool.lookup(["get", n]) for n in asked[:MAX_GETM]]
    assert got[0] is None and got[1] == recs[b"d/n0"].to_obj()
    assert None in got[2:]                  # the oldest registrations have expired at this height


def test_the_link_skips_stale_replies_and_reports_failures():
    ours, node = socket.socketpair()
    broken = []
    link = NodeLink(ours, lambda: broken.append(True))

    def serve():
        buf = FrameBuffer()
        while True:
            data = node.recv(65536)
            if not data:
                return
            for seq, op, *args in buf.feed(data):
                if op == "get":
                    node.sendall(frame([seq - 1, True, "stale"]) + frame([seq, True, args[0]]))
                elif op == "fail":
                    node.sendall(frame([seq, False, "KeyError: x"]))
                else:
                    node.close()
                    return

    t = threading.Thread(target=serve)
    t.start()
    assert link.call("get", b"d/x") == b"d/x"
    assert link.call("get", "twice") == "twice"
    with pytest.raises(LookupFailed):
        link.call("fail")
    assert not broken
    with pytest.raises(ConnectionError):
        link.call("close")
    assert broken
    t.join()
    ours.close()
    assert unframe(frame([1, "a", b"b", None])[4:]) == [1, "a", b"b", None]


def test_call_many_sends_together_and_pairs_replies_by_seq():
    ours, node = socket.socketpair()
    broken = []
    link = NodeLink(ours, lambda: broken.append(True))
    link.call_many([])                  # nothing to ask: no write, no wait
    reads = []

    def serve():
        buf = FrameBuffer()
        data = node.recv(65536)
        reads.append(buf.feed(data))
        asked = reads[0]
        # a stale reply first, then the rest in reverse order, one failing
        replies = [frame([asked[0][0] - 1, True, "stale"])]
        replies += [frame([seq, op != "fail", args[0] if op == "get" else "KeyError: x"])
                    for seq, op, *args in reversed(asked)]
        node.sendall(b"".join(replies))
        node.recv(65536)                # then the link breaks: the node goes away mid-answer
        node.sendall(frame([0, True, None])[:3])
        node.close()

    t = threading.Thread(target=serve)
    t.start()
    got = link.call_many([["get", b"d/a"], ["fail", b"d/b"], ["get", b"d/c"]])
    assert got == [(True, b"d/a"), (False, "KeyError: x"), (True, b"d/c")]
    assert len(reads[0]) == 3 and not broken          # the three questions came in one read
    with pytest.raises(ConnectionError):
        link.call_many([["get", b"d/x"]])
    assert broken
    t.join()
    ours.close()
