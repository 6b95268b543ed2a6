"""The HTTP per-source connection caps shared by DNS workers (node/resolver/connshare.py), over a
real shared-memory table: the caps hold in total across workers, a release frees a place for
any worker, exempt networks skip the table, and a restarted worker's row starts empty."""
from __future__ import annotations

import multiprocessing
import os

from core.connlimit import ConnCaps
from node.resolver.connshare import SharedSourceLimiter, new_table


def limiters(n: int, caps: ConnCaps, total: int = 1024):
    table, lock = new_table(multiprocessing.get_context("spawn"), n)
    salt = os.urandom(16)
    return [SharedSourceLimiter(caps.limiter(total), table, lock, salt, i, n) for i in range(n)], (table, lock, salt)


def test_the_per_address_cap_holds_in_total():
    (a, b), _ = limiters(2, ConnCaps(per_address=4, per_group=6))
    held = [object() for _ in range(10)]
    got = [(a if i % 2 else b).admit(c, "198.51.100.7")[0] for i, c in enumerate(held)]
    assert got.count(True) == 4 and a.refused + b.refused == 6
    # another address of the same /24: the network's cap (6) counts both workers too
    others = [b.admit(object(), "198.51.100.8")[0] for _ in range(5)]
    assert others.count(True) == 2
    # a release on one worker makes room on the other
    first = next(c for c, ok in zip(held, got) if ok)
    (a if first in a._keys else b).release(first)
    assert a.admit(object(), "198.51.100.7")[0]
    assert not b.admit(object(), "198.51.100.7")[0]


def test_exempt_sources_skip_the_table():
    (a, b), (table, _, _) = limiters(2, ConnCaps(per_address=1, exempt=("127.0.0.0/8",)))
    assert all(w.admit(object(), "127.0.0.1")[0] for w in (a, b) for _ in range(3))
    assert not any(table)


def test_a_restarted_worker_starts_with_an_empty_row():
    (a, b), (table, lock, salt) = limiters(2, ConnCaps(per_address=2))
    assert a.admit(object(), "203.0.113.5")[0] and a.admit(object(), "203.0.113.5")[0]
    assert not b.admit(object(), "203.0.113.5")[0]
    # worker 0 died with its connections; its successor clears its row
    SharedSourceLimiter(ConnCaps(per_address=2).limiter(1024), table, lock, salt, 0, 2)
    assert b.admit(object(), "203.0.113.5")[0]


def test_a_full_worker_evicts_its_own_and_uncounts_them():
    (a, b), _ = limiters(2, ConnCaps(per_address=3, per_group=100), total=4)
    xs = [object() for _ in range(3)]
    assert all(a.admit(c, "192.0.2.1")[0] for c in xs) and a.admit(object(), "192.0.2.2")[0]
    ok, victims = a.admit(object(), "198.51.100.1")     # a is full: its biggest holder gives one up
    assert ok and len(victims) == 1 and victims[0] in xs and len(a) == 4 and len(b) == 0
    assert b.admit(object(), "192.0.2.1")[0]             # 192.0.2.1 holds 2 now, anywhere: one more fits
    assert not b.admit(object(), "192.0.2.1")[0]
