"""One signature worker of node/chain/sigpool.py: the loop its process runs (serve), and the
node's handle on it (WorkerHandle). The loop: a list of core.sigcheck jobs in, the position of
the first bad one (-1: none) out; or ("ahead", jobs, slot) in, every job's verdict out
(core.sigcheck.verdicts; none when the connecting thread claimed the message first); until None
or the pipe closes. Kept apart so a worker process imports only this and core/, not the
chain state."""
from __future__ import annotations

import os
import select
import signal
import time
from collections import deque

from core.sigcheck import first_bad, verdicts

SLOTS = 64                   # claim flags per worker, reused round robin (more than it is ever
                             # sent ahead and not yet answered: sigpool.AHEAD_CHUNKS)
# The worker's CPU priority below the node's (nice +10): the connecting thread is the one
# everything waits on, and whatever the worker has not answered at a block's end is checked
# there in line, so a worker held back costs little while one that takes the connecting
# thread's core stretches every block. Measured on 2 cores (bench/validate.py, 2026-12-02):
# the connecting thread's run-queue wait 2.3 s -> 0.9 s a reindex, and --par 2 about 8 %
# faster.
WORKER_NICE = 10
CLAIM_TIMEOUT = 0.5          # seconds a claim waits for the flags' lock (a worker killed holding it)


def serve(conn, flags=None, lock=None) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the node stops its workers
    # itself, so they must not die first with a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.nice(WORKER_NICE)
    except OSError:
        pass                     # no priorities here: the worker runs as it is
    try:
        while True:
            jobs = conn.recv()
            if jobs is None:
                return
            if type(jobs) is not tuple:
                conn.send(first_bad(jobs))
            else:
                conn.send(verdicts(jobs[1]) if _start(flags, lock, jobs[2]) else b"")
    except (EOFError, OSError):
        return                   # the node went away


def _start(flags, lock, slot: int) -> bool:
    """Marks a message sent ahead as started, unless the connecting thread claimed it first
    (node/chain/sigpool.py: it then checks those jobs itself, and this answer is empty)."""
    with lock:
        if flags[slot]:
            return False
        flags[slot] = 2
        return True


class WorkerHandle:
    __slots__ = ("proc", "conn", "pending", "watch", "flags", "lock", "seq")

    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        # Per message sent ahead, a flag in shared memory: 0 sent, 1 claimed by the connecting
        # thread (the worker skips it), 2 started by the worker; set under the lock.
        self.flags = ctx.RawArray("b", SLOTS)
        self.lock = ctx.Lock()
        self.seq = 0
        self.proc = ctx.Process(target=serve, args=(child, self.flags, self.lock), daemon=True,
                                name="dotbit-sigcheck")
        self.proc.start()
        child.close()
        self.pending: deque = deque()     # (BlockSigs, start, sent at) not answered yet, in order
        # One poll object for the worker's life: Connection.poll(0) builds a selector per
        # call (5 us against 0.7 us), and the connecting thread asks after every chunk.
        self.watch = select.poll()
        self.watch.register(self.conn.fileno(), select.POLLIN)

    def send(self, owner, start: int, end: int) -> None:
        self.conn.send(owner.jobs[start:end])
        self.pending.append((owner, start, time.monotonic()))

    def send_ahead(self, jobs: list, known: dict) -> int:
        slot = self.seq % SLOTS
        self.seq += 1
        self.flags[slot] = 0     # its last message was answered: at most AHEAD_CHUNKS are held
        self.conn.send(("ahead", jobs, slot))
        self.pending.append((known, jobs, time.monotonic()))
        return slot

    def claim(self, slot: int) -> bool:
        """True when the worker had not started message `slot` and now never will (it answers
        it with no verdicts); False when it has started it, or its lock cannot be had."""
        if not self.lock.acquire(timeout=CLAIM_TIMEOUT):
            return False
        try:
            if self.flags[slot]:
                return False
            self.flags[slot] = 1
            return True
        finally:
            self.lock.release()

    def harvest(self) -> int:
        """Takes every answer already there (EOFError when the worker died). An answer for a
        chunk its block checked itself meanwhile is the same answer: it is simply kept. The
        verdicts for jobs sent ahead go into the dict they were sent for (job -> bool)."""
        taken = 0
        while self.pending and self.watch.poll(0):
            answer = self.conn.recv()
            owner, start, _ = self.pending.popleft()
            if type(answer) is bytes:            # owner: the known dict, start: the jobs
                owner.update(zip(start, map(bool, answer)))
            else:
                owner.results[start] = answer
            taken += 1
        return taken

    def wait(self, ms: float) -> bool:
        """Blocks up to `ms` for the oldest message's answer."""
        return bool(self.pending) and bool(self.watch.poll(ms))

    def stuck(self, timeout: float) -> bool:
        return bool(self.pending) and time.monotonic() - self.pending[0][2] > timeout

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        """Asks the worker to exit (join() then waits for it)."""
        try:
            self.conn.send(None)
        except OSError:
            pass

    def join(self) -> None:
        self.proc.join(5)
        if self.proc.is_alive():
            self.kill()
        self.conn.close()

    def kill(self) -> None:
        self.proc.kill()             # our own child; a stopped one would never exit otherwise
        self.proc.join(5)
        self.conn.close()
