"""node/chain/_sigthread.c against core/sigcheck.job_ok, which it stands in for: the same
verdict on every job (good ones, and each way a job can be wrong or malformed), and its queue's
rules: answers in order, a claimed message never checked, nothing accepted once closed, the
thread below the node's priority. The chain-level equivalence (blocks, reindex, groups) runs
with both kinds of worker in tests/unit/test_parallel_validation.py."""
from __future__ import annotations

import os
import random
import time

import pytest
from hypothesis import given, settings, strategies as st

from core.crypto import hash160, sighash, sign_digest
from core.sigcheck import job_ok
from node.chain import sigthread
from support.chain import Key

if os.environ.get("DOTBIT_REQUIRE_NATIVE"):
    assert sigthread.AVAILABLE, "CI: the build must have made node/chain/_sigthread.c"
else:
    pytest.importorskip("node.chain._sigthread", reason="built without a compiler: signature workers are processes")

KEY, OTHER = Key.from_seed(41), Key.from_seed(42)
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def job(txid: bytes = bytes(range(32)), n: int = 0, value: int = 50_000, key: Key = KEY):
    sig = sign_digest(key.secret, sighash(txid, n, value, key.address))
    return (1, n, txid, value, key.address, key.pubkey, sig)


def alter(j, **kw):
    fields = dict(zip(("pos", "n", "txid", "value", "address", "pubkey", "sig"), j))
    fields.update(kw)
    return tuple(fields.values())


GOOD = job()
HIGH_S = GOOD[6][:32] + (N - int.from_bytes(GOOD[6][32:], "big")).to_bytes(32, "big")
CASES = {
    "good": GOOD,
    "good, largest index and value": job(n=2**32 - 1, value=2**64 - 1),
    "another key's signature": alter(GOOD, sig=job(key=OTHER)[6]),
    # signed by OTHER over the coin's own address: only the key's hash gives it away
    "key that does not own the coin": alter(GOOD, pubkey=OTHER.pubkey,
                                            sig=sign_digest(OTHER.secret, sighash(GOOD[2], 0, 50_000, KEY.address))),
    "signature over another value": alter(GOOD, value=50_001),
    "signature over another input": alter(GOOD, n=1),
    "signature over another txid": alter(GOOD, txid=bytes(32)),
    "one bit flipped in the signature": alter(GOOD, sig=bytes([GOOD[6][0] ^ 1]) + GOOD[6][1:]),
    "high-S twin of a good signature": alter(GOOD, sig=HIGH_S),
    "r of zero": alter(GOOD, sig=bytes(32) + GOOD[6][32:]),
    "r out of range": alter(GOOD, sig=b"\xff" * 32 + GOOD[6][32:]),
    "signature of 63 bytes": alter(GOOD, sig=GOOD[6][:63]),
    "signature of 65 bytes": alter(GOOD, sig=GOOD[6] + b"\x00"),
    "key of 32 bytes": alter(GOOD, pubkey=GOOD[5][:32]),
    "key with a bad prefix": alter(GOOD, pubkey=b"\x05" + GOOD[5][1:]),
    "address of 19 bytes": alter(GOOD, address=GOOD[4][:19]),
    "address of the key, key not on the curve": alter(GOOD, pubkey=b"\x02" + b"\xff" * 32,
                                                       address=hash160(b"\x02" + b"\xff" * 32)),
}


@pytest.fixture(scope="module")
def verifier():
    v = sigthread.new_verifier()
    yield v
    v.close()


def check(v, jobs: list) -> bytes:
    ticket = v.submit(jobs)
    assert v.wait(ticket, 20_000)
    return v.result(ticket)


def test_the_native_workers_are_the_default():
    from node.chain.sigpool import SigPool
    assert sigthread.AVAILABLE and SigPool(2).kind == "thread"


@pytest.mark.parametrize("case", CASES)
def test_each_case_gets_job_ok_s_verdict(verifier, case):
    j = CASES[case]
    assert check(verifier, [j]) == bytes([job_ok(j)])
    assert job_ok(j) == case.startswith("good")


def test_a_message_of_every_case_in_order(verifier):
    jobs = list(CASES.values()) * 3
    random.Random(7).shuffle(jobs)
    assert check(verifier, jobs) == bytes(job_ok(j) for j in jobs)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 63), st.integers(0, 255)), min_size=1, max_size=12))
def test_random_corruptions_agree(verifier, edits):
    """Any field changed: the input index or value moved, or any byte of the txid, address,
    key or signature set (sometimes to what it was: still good)."""
    jobs = []
    for field, at, byte in edits:
        j = list(GOOD)
        if field == 1:
            j[1] = at
        elif field == 3:
            j[3] = (j[3] + at) % 2**64
        else:
            raw = bytearray(j[field])
            raw[at % len(raw)] = byte
            j[field] = bytes(raw)
        jobs.append(tuple(j))
    assert check(verifier, jobs) == bytes(job_ok(j) for j in jobs)


@pytest.mark.parametrize("bad", [
    "not a list", [], [GOOD[:6]], [alter(GOOD, txid=bytes(31))], [alter(GOOD, n=2**32)], [alter(GOOD, value=-1)],
    [alter(GOOD, n="0")], [GOOD] * 4097,
])
def test_a_caller_s_bad_message_is_refused_whole(verifier, bad):
    with pytest.raises((TypeError, ValueError, OverflowError)):
        verifier.submit(bad)
    assert check(verifier, [GOOD]) == b"\x01"             # the queue goes on


def test_answers_wait_and_claims():
    v = sigthread.new_verifier()
    try:
        long = v.submit([GOOD] * 4096)                      # ~0.2 s of work: what follows waits
        behind = v.submit([GOOD, alter(GOOD, value=1)])
        last = v.submit([GOOD])
        assert v.result(behind) is None and not v.wait(behind, 1)
        assert v.cancel(behind)                             # not started: claimed
        assert not v.cancel(behind)
        assert v.result(behind) == b""                      # a claimed message's answer is empty
        with pytest.raises(KeyError):
            v.result(behind)                                # given once
        assert v.wait(last, 20_000) and v.result(last) == b"\x01"
        assert v.wait(long, 0) and v.result(long) == b"\x01" * 4096
        done = v.submit([GOOD])
        assert v.wait(done, 20_000) and not v.cancel(done)  # started (and done): no claim
        assert v.result(done) == b"\x01"
    finally:
        v.close()
    with pytest.raises(OSError):
        v.submit([GOOD])
    v.close()                                               # twice is harmless


def test_close_drops_what_was_not_started():
    v = sigthread.new_verifier()
    first = v.submit([GOOD] * 4096)                        # ~0.2 s: started within the sleep
    queued = v.submit([GOOD] * 8)
    time.sleep(0.05)
    v.close()
    assert v.result(queued) == b""                          # never checked
    assert v.result(first) in (b"\x01" * 4096, b"")         # finished whole, or (not started) dropped


def test_the_thread_runs_below_the_node_s_priority():
    def niced() -> set[int]:
        out = set()
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[16]) == expected:
                    out.add(int(tid))
        return out
    expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + sigthread.THREAD_NICE)
    before = niced()
    v = sigthread.new_verifier()
    try:
        deadline = time.monotonic() + 10
        while not niced() - before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(niced() - before) == 1 and os.getpriority(os.PRIO_PROCESS, 0) != expected
    finally:
        v.close()


def test_without_the_extension_the_workers_are_processes(monkeypatch):
    from node.chain.sigpool import SigPool
    monkeypatch.setattr(sigthread, "AVAILABLE", False)
    assert SigPool(2).kind == "process"
    with pytest.raises(ValueError, match="not built"):
        SigPool(2, kind="thread")
    with pytest.raises(ValueError, match="unknown kind"):
        SigPool(2, kind="fibre")


def test_a_claimed_message_leaves_its_verdicts_to_the_claimer():
    """The handle's view of a claim (BlockSigs._claim_unstarted): the thread never answers a
    claimed message, so what the connecting thread wrote for it stays; the answers before and
    after it land where they were sent."""
    h = sigthread.ThreadHandle()
    try:
        long_jobs = [alter(GOOD, n=i) for i in range(4096)]      # bad (signed for input 0) but for the first
        known: dict = {}
        h.send_ahead(long_jobs, known)
        claimed = [alter(GOOD, value=4), alter(GOOD, value=2)]
        slot = h.send_ahead(claimed, known)
        after = [alter(GOOD, value=3), GOOD]
        h.send_ahead(after, known)
        assert h.claim(slot)
        known[claimed[1]] = "checked here"
        deadline = time.monotonic() + 20
        while h.pending and time.monotonic() < deadline:
            h.wait(100)
            h.harvest()
        assert not h.pending
        assert known[claimed[1]] == "checked here" and claimed[0] not in known
        assert known[after[0]] is False and known[long_jobs[0]] is True and known[long_jobs[1]] is False
    finally:
        h.close()


def test_a_verifier_starts_once():
    v = sigthread.new_verifier()
    try:
        with pytest.raises(RuntimeError):
            v.__init__(1, 1, 1, 1)
        assert check(v, [GOOD]) == b"\x01"
    finally:
        v.close()
    with pytest.raises(RuntimeError):
        v.__init__(1, 1, 1, 1)                              # nor again once closed
