"""One native signature-check thread of node/chain/sigpool.py (node/chain/_sigthread.c), behind
the handle a worker process has (node/chain/sigworker.WorkerHandle): send, send_ahead, claim,
harvest, wait, stuck, close. SigPool uses these when the extension is built, processes when
it is not (or when asked: the tests that kill a worker need one).

The thread checks core.sigcheck's jobs with the same libsecp256k1 functions and context as
core/crypto.py (coincurve's, their addresses passed in), so a verdict is job_ok's; it copies
each message's jobs when it is sent and never touches a Python object, so the connecting
thread pays no pickle or pipe per message and no GIL hand-over per answer."""
from __future__ import annotations

import time
from collections import deque

from coincurve._libsecp256k1 import ffi, lib

from core.crypto import _CTX

try:
    from node.chain import _sigthread
except ImportError:              # pragma: no cover - exercised on machines without a compiler
    _sigthread = None

AVAILABLE = _sigthread is not None
# As the worker process's (sigworker.WORKER_NICE): the connecting thread is the one everything
# waits on, and whatever the thread has not checked at a block's end is checked there in line.
THREAD_NICE = 10
_CHUNK, _AHEAD = 0, 1            # what a pending message was: a block's chunk, or jobs sent ahead


def _address(cdata) -> int:
    return int(ffi.cast("uintptr_t", cdata))


def new_verifier():
    return _sigthread.Verifier(_address(ffi.addressof(lib, "secp256k1_ecdsa_signature_parse_compact")),
                               _address(ffi.addressof(lib, "secp256k1_ec_pubkey_parse")),
                               _address(ffi.addressof(lib, "secp256k1_ecdsa_verify")),
                               _address(_CTX), THREAD_NICE)


class ThreadHandle:
    __slots__ = ("verifier", "pending")
    pid = None                   # no process of its own

    def __init__(self):
        self.verifier = new_verifier()
        # (kind, owner, start or jobs, ticket, sent at) not answered yet, in order
        self.pending: deque = deque()

    def send(self, owner, start: int, end: int) -> None:
        ticket = self.verifier.submit(owner.jobs[start:end])
        self.pending.append((_CHUNK, owner, start, ticket, time.monotonic()))

    def send_ahead(self, jobs: list, known: dict) -> int:
        ticket = self.verifier.submit(jobs)
        self.pending.append((_AHEAD, known, jobs, ticket, time.monotonic()))
        return ticket

    def claim(self, slot: int) -> bool:
        """True when the thread had not started message `slot` (its ticket) and now never will."""
        return self.verifier.cancel(slot)

    def harvest(self) -> int:
        """Takes every answer already there, in order (as WorkerHandle.harvest). A claimed
        message's answer is empty: nothing is recorded for it."""
        taken = 0
        result, pending = self.verifier.result, self.pending
        while pending:
            kind, owner, start, ticket, _ = pending[0]
            answer = result(ticket)
            if answer is None:
                break
            pending.popleft()
            if kind is _AHEAD:
                owner.update(zip(start, map(bool, answer)))
            elif answer:
                owner.results[start] = answer.find(0)        # first_bad: -1 when all hold
            taken += 1
        return taken

    def wait(self, ms: float) -> bool:
        """Blocks up to `ms` (the GIL released) for the oldest message's answer."""
        return bool(self.pending) and self.verifier.wait(self.pending[0][3], ms)

    def stuck(self, timeout: float) -> bool:
        return bool(self.pending) and time.monotonic() - self.pending[0][4] > timeout

    def close(self) -> None:
        """Stops the thread (after the message it is on; the rest are dropped)."""
        self.verifier.close()

    def join(self) -> None:
        pass

    kill = close
