"""The miner finds the nonces a plain double SHA-256 loop finds, uses worker processes, and
stops when asked."""
from __future__ import annotations

import hashlib
import threading
from dataclasses import replace

from core.primitives import Header
from node.mining.miner import Miner, search_nonce, solve_quick


def header(seed: int) -> Header:
    h = hashlib.sha256(b"%d" % seed).digest()
    return Header(1, h, hashlib.sha256(h).digest(), bytes(32), 1_700_000_000 + seed, 0x207fffff, 0)


def reference_first(data: bytes, target: int, start: int, count: int):
    for nonce in range(start, start + count):
        d = data[:108] + nonce.to_bytes(4, "little")
        if int.from_bytes(hashlib.sha256(hashlib.sha256(d).digest()).digest(), "big") <= target:
            return nonce
    return None


def test_search_matches_reference_loop():
    target = 1 << 248          # about 1 in 256 nonces
    for seed in range(5):
        data = header(seed).to_bytes()
        assert search_nonce(data, target, 0, 4000) == reference_first(data, target, 0, 4000)
        assert search_nonce(data, target, 1000, 3000) == reference_first(data, target, 1000, 3000)
    assert search_nonce(header(1).to_bytes(), 0, 0, 500) is None


def test_solved_header_meets_target():
    target = 1 << 244
    solved = solve_quick(header(9), target)
    assert solved is not None
    digest = hashlib.sha256(hashlib.sha256(solved.to_bytes()).digest()).digest()
    assert int.from_bytes(digest, "big") <= target
    assert replace(solved, nonce=0) == header(9)


def test_pool_finds_a_nonce_beyond_the_first_chunk():
    """With a target of ~1 in 200,000 the answer usually lies in a later chunk, which only
    another work unit (in another process) covers."""
    target = (1 << 256) // 200_000
    miner = Miner(2)
    try:
        solved = miner.solve(header(3), target)
        assert solved is not None
        data = header(3).to_bytes()
        assert solved.nonce == reference_first(data, target, 0, solved.nonce + 1)  # the first one
    finally:
        miner.close()


def test_pool_stops_when_asked():
    miner = Miner(2)
    stop = threading.Event()
    stop.set()
    try:
        assert miner.solve(header(4), 0, stop) is None       # impossible target, stopped at once
    finally:
        miner.close()
