"""Signature checks of a connecting block spread over workers (`--par N`).

As Bitcoin Core's -par, N counts the connecting thread too: N - 1 workers verify signatures
while the connecting thread does the coin and name work that needs the store and builds the
block's batch; only before that batch commits does it collect the workers' answers,
verifying itself whatever is still queued (ChainState._connect). The jobs are
core.sigcheck's plain tuples. When the next block is known, its jobs go out as this block
starts to connect (check_ahead).

The workers are native threads (node/chain/sigthread.py, node/chain/_sigthread.c) where that
extension is built, else processes (node/chain/sigworker.py); both have the same handle.
Threads win because the connecting thread is the bound: a process costs it a pickle per
message and a poll and read per answer, and its check ran slower (73-75 us against 58 in
line, where a thread's costs what one in line does: bench/validate.py); p2p sync with
--par 2 went from 1.26x to 1.40x of --par 1 on one core (same-hour rounds, BENCHMARKS.md). A
Python thread would not do: it needs the GIL back after every libsecp256k1 call, and a busy
connecting thread hands it over only every switch interval (5 ms); the native one never
needs it. Processes, where they serve: a pipe each and no
concurrent.futures (an executor's feeder and result threads need the GIL to move each
chunk, which starved the workers in measurement), started by forkserver (spawn where there
is none: fork would copy the node's event loop, sockets and LevelDB handle). The workers
start on the first block big enough to use them (regtest blocks never are) and stop with
the node.

The answer never depends on the workers: a bad block gets the first error in serial order
(core/sigcheck.py). Nor does the connecting thread wait on them for long: a chunk a worker
has not answered within WAIT_MS once the block's other checks are done is checked in line
(the same pure answer; the worker's later one is dropped). Jobs sent ahead that the worker
has not started by then are claimed first (a thread's queue, or a flag in shared memory a
process reads before each message): the connecting thread checks them while the worker
finishes the ones before, where it would otherwise sit idle, and no job is checked twice. A
worker that dies, or has not answered for WORKER_TIMEOUT, is given up: the workers are ended
(logged) and new ones start on the next big block; after MAX_FAILURES failures in a row the
node stays in line.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os

from core.sigcheck import first_bad, job_error, job_ok
from node.chain import sigthread
from node.chain.sigworker import WorkerHandle

log = logging.getLogger("dotbit.chain")

MAX_PAR = 16                 # as Core's cap on script threads: more adds processes, not speed
MIN_PARALLEL_INPUTS = 32     # below this a block is checked in line: a round trip costs more
CHUNK = 8                    # jobs per hand-out: ~0.4 ms of work against ~0.04 ms of pickling
WORKER_TIMEOUT = 20.0        # seconds without an answer before a worker is given up
WAIT_MS = 20                 # at a block's end, how long one answer is waited for before the
                             # connecting thread checks the rest itself (see BlockSigs.finish)
MAX_FAILURES = 3             # worker failures in a row before the node stops starting them
AHEAD_CHUNKS = 16            # messages of jobs sent ahead (check_ahead) a worker may hold, each
AHEAD_STEP = 8               # of this many jobs: small enough that the connecting thread can take
                             # over those the worker has not started (BlockSigs._claim_unstarted),
                             # and that the one it has started is soon done: at 16 the connecting
                             # thread waited 0.65-0.75 s a reindex for started messages, at 8
                             # 0.38-0.45 s, and --par 2 took 10.2-11.4 s against 11.2-12.0 s
                             # (same hour, 4 rounds); at 4 fewer checks were sent ahead (69 %)


def resolve_par(par: int | None, cores: int | None = None) -> int:
    """The --par setting as a thread count: None or 0 = every core (capped at MAX_PAR)."""
    if par is None or par == 0:
        return max(1, min(cores or os.cpu_count() or 1, MAX_PAR))
    if not 1 <= par <= MAX_PAR:
        raise ValueError(f"--par: {par} is out of range (0 = every core, or 1 to {MAX_PAR})")
    return par


def _context():
    methods = mp.get_all_start_methods()
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


class SigPool:
    """The signature workers of one chain state; `par` 1 keeps every check in line."""

    def __init__(self, par: int = 1, *, min_inputs: int = MIN_PARALLEL_INPUTS, chunk: int = CHUNK,
                 timeout: float = WORKER_TIMEOUT, kind: str = "auto"):
        if kind not in ("auto", "thread", "process"):
            raise ValueError(f"signature workers: unknown kind {kind!r}")
        if kind == "thread" and not sigthread.AVAILABLE:
            raise ValueError("signature workers: the native thread extension is not built")
        # Native threads where node/chain/_sigthread.c is built (no pickle, pipe or GIL
        # hand-over per message), else processes; "process" keeps processes (the tests that
        # kill a worker).
        if kind == "auto":
            kind = "thread" if sigthread.AVAILABLE else "process"
        self.kind = kind
        self.size = max(0, par - 1)
        self.min_inputs = max(1, min_inputs)
        self.chunk = max(1, chunk)
        self.timeout = timeout
        self.workers: list = []                  # WorkerHandle or sigthread.ThreadHandle
        self.failures = 0            # worker failures in a row
        self.fallbacks = 0           # worker failures since start (each checked in line)
        # Signature checks of spread blocks answered by a worker / done by the connecting
        # thread (never handed out, or not answered in time): the benches report the share.
        self.by_workers = 0
        self.in_line = 0
        self.by_ahead = 0            # of by_workers: answered ahead of their block (check_ahead)
        # Jobs of the next block sent to a worker while this one was still connecting
        # (check_ahead): job -> None while in flight, then its verdict. That block's check
        # skips the good ones and awaits the ones in flight (BlockSigs.finish) rather than
        # sending them again. Only the latest block's are kept here (the block connecting
        # holds its own in its BlockSigs).
        self.known: dict = {}
        self.ahead_msgs: list = []   # (worker, slot, jobs) of the messages that filled `known`
        self.known_pending = False   # check_ahead sent jobs the next begin() may find answered

    def begin(self, block) -> "BlockSigs | None":
        """The collector for `block`'s signature jobs, or None to verify them in line."""
        if not self.size or self.failures >= MAX_FAILURES:
            return None
        if sum(len(tx.inputs) for tx in block.txs) < self.min_inputs:
            return None
        self.start()
        sigs = BlockSigs(self)
        if self.known_pending:
            self.known_pending = False
            self.free_worker(0)                  # the verdicts already there, before any job
        return sigs

    def start(self) -> None:
        """The workers, unless they run already."""
        if self.size and not self.workers:
            if self.kind == "thread":
                self.workers = [sigthread.ThreadHandle() for _ in range(self.size)]
            else:
                ctx = _context()
                self.workers = [WorkerHandle(ctx) for _ in range(self.size)]
            log.info("block validation: %d signature worker %s(%s) started", self.size, self.kind,
                     "s" if self.kind == "thread" else "es")

    def check_ahead(self, jobs: list) -> None:
        """Hands the next block's signature jobs, as the coins look before this block
        connects (blockcheck.send_ahead), to workers with room: they work on them while this
        block is checked and written, queued behind this block's own. Only an answer for the very
        same job is ever used (a pure fact about it); a guess that turns out wrong (the
        block fails, a coin differs) is simply never asked for."""
        if not self.workers or len(jobs) < self.min_inputs:
            return
        self.known = known = {}
        self.ahead_msgs = msgs = []
        self.free_worker(0)                      # answers taken, a stuck or dead worker retired
        step = AHEAD_STEP
        for start in range(0, len(jobs), step):
            # The least loaded worker, so that with several each gets a share of the block.
            worker = min(self.workers, key=lambda w: len(w.pending), default=None)
            if worker is None or len(worker.pending) >= AHEAD_CHUNKS:
                return
            try:
                part = jobs[start:start + step]
                msgs.append((worker, worker.send_ahead(part, known), part))
                known.update(dict.fromkeys(part))        # in flight: no verdict yet
                self.known_pending = True
            except OSError as e:
                self.retire(f"{type(e).__name__}: {e}")
                return

    def free_worker(self, most: int = 2):
        """A worker with fewer than `most` chunks outstanding (2: one running, one queued),
        after taking the answers there are."""
        try:
            for w in self.workers:
                if w.harvest():
                    self.failures = 0
                if w.stuck(self.timeout):
                    self.retire(f"no answer in {self.timeout:g} s")
                    return None
                if len(w.pending) < most:
                    return w
        except (EOFError, OSError) as e:
            self.retire(f"{type(e).__name__}: {e}")
        return None

    def wait_answer(self, ms: int = WAIT_MS) -> bool:
        """Blocks up to `ms` for the next answer of a worker with chunks out, and takes the
        answers there are then; False when none came in time (or none is out)."""
        for w in self.workers:
            if w.wait(ms):
                self.free_worker(most=0)
                return True
        return False

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self.workers if w.pid is not None]

    def retire(self, why: str) -> None:
        """Gives up on the current workers: logged, and ended (a process killed, a thread stopped)."""
        self.failures += 1
        self.fallbacks += 1
        last = self.failures >= MAX_FAILURES
        log.warning("block validation: a signature worker failed (%s); checking in line%s", why,
                    ", and from now on" if last else "; new workers on the next big block")
        workers, self.workers = self.workers, []
        for w in workers:
            w.kill()

    def close(self) -> None:
        workers, self.workers = self.workers, []
        for w in workers:
            w.close()
        for w in workers:
            w.join()


class BlockSigs:
    """One block's signature jobs: `jobs` is filled in serial order by check_tx_inputs;
    dispatch() hands full chunks to workers, flush() the rest once the jobs are complete;
    finish() raises the first failure (once: a second call returns)."""

    __slots__ = ("pool", "jobs", "sent", "chunks", "results", "finished")

    def __init__(self, pool: SigPool):
        self.pool = pool
        self.jobs = _Jobs(pool.known, pool.ahead_msgs)
        self.sent = 0
        self.chunks: list[tuple[int, int]] = []      # (start, end) handed out, in job order
        self.results: dict[int, int] = {}            # chunk start -> first_bad within it
        self.finished = False

    def dispatch(self) -> None:
        """Full chunks to workers with room (called after each transaction's checks). Jobs
        that went out ahead are not polled for here, transaction by transaction (a system
        call each): those still in flight are `covered`, their verdicts taken at finish()."""
        if len(self.jobs) - self.sent >= self.pool.chunk:
            self._hand_out(self.pool.chunk)

    def flush(self) -> None:
        """Every job is in: the rest, a last short chunk included, to workers with room (the
        connecting thread still has the block's batch to build before it needs the answers)."""
        self._hand_out(1)

    def _hand_out(self, least: int) -> None:
        pool, jobs = self.pool, self.jobs
        while len(jobs) - self.sent >= least:
            worker = pool.free_worker()
            if worker is None:
                return
            start, end = self.sent, min(self.sent + pool.chunk, len(jobs))
            try:
                worker.send(self, start, end)
            except OSError as e:
                pool.retire(f"{type(e).__name__}: {e}")
                return
            self.chunks.append((start, end))
            self.sent = end

    def finish(self) -> None:
        """Every job checked; raises job_error of the earliest failing one in job order.
        What was never handed out is shared: a chunk to each worker that falls idle, the
        rest checked here meanwhile. Then the chunks out are awaited in the order the workers
        answer them: checking one here as well would be the same work twice, on a core the
        worker and the batch writer need. An answer that takes longer than WAIT_MS (a worker
        the scheduler keeps waiting) ends the wait: the rest is checked here, the last first."""
        if self.finished:
            return
        self.finished = True
        jobs, step = self.jobs, self.pool.chunk
        here = set()                                 # chunk starts checked by this thread
        while self.sent < len(jobs):
            start, end = self.sent, min(self.sent + step, len(jobs))
            self.sent = end
            self.chunks.append((start, end))
            worker = self.pool.free_worker(most=1)
            if worker is not None:
                try:
                    worker.send(self, start, end)
                    continue
                except OSError as e:
                    self.pool.retire(f"{type(e).__name__}: {e}")
            self.results[start] = first_bad(jobs[start:end])
            here.add(start)
        for start, _ in self.chunks:
            while start not in self.results and self.pool.wait_answer():
                pass
            if start not in self.results:
                break
        for start, end in reversed(self.chunks):
            self.pool.free_worker(most=0)                # takes answers that came meanwhile
            if start not in self.results:
                self.results[start] = first_bad(jobs[start:end])
                here.add(start)
        covered_bad, covered_here = self._settle_covered()
        done_here = sum(end - start for start, end in self.chunks if start in here) + covered_here
        ahead = jobs.skipped + len(jobs.covered) - covered_here
        self.pool.in_line += done_here
        self.pool.by_workers += len(jobs) + len(jobs.covered) - done_here + jobs.skipped
        self.pool.by_ahead += ahead
        first = next((jobs[start + self.results[start]] for start, _ in self.chunks if self.results[start] >= 0),
                     None)
        # Jobs hold (tx position, input index) first: the earlier of the two is serial order's.
        if covered_bad is not None and (first is None or covered_bad[:2] < first[:2]):
            first = covered_bad
        if first is not None:
            raise job_error(first)

    def _settle_covered(self) -> tuple:
        """The verdicts of this block's jobs that went out ahead and were still in flight when
        appended: awaited from their worker (as finish() does with chunks), else checked here,
        the last first. Returns (the earliest bad one or None, how many were checked here)."""
        known, covered = self.jobs.known, self.jobs.covered
        here = self._claim_unstarted() if covered else 0
        for job in covered:
            while known.get(job) is None and self.pool.wait_answer():
                pass
            if known.get(job) is None:
                break
        for job in reversed(covered):
            if known.get(job) is None:
                self.pool.free_worker(most=0)            # takes answers that came meanwhile
                if known.get(job) is None:
                    known[job] = job_ok(job)
                    here += 1
        return next((job for job in covered if not known[job]), None), here


    def _claim_unstarted(self) -> int:
        """This block's messages sent ahead that their worker has not started, the last first,
        are checked here (claimed: the worker skips them), rather than awaited while it works
        through those before them; the first one it has started ends the claims (it takes them
        in order). Returns how many of the block's jobs were checked here."""
        known, workers = self.jobs.known, self.pool.workers
        need = {job for job in self.jobs.covered if known.get(job) is None}
        here = 0
        for worker, slot, part in reversed(self.jobs.msgs):
            mine = [job for job in part if job in need and known.get(job) is None]
            if not mine:
                continue
            if worker not in workers or not worker.claim(slot):
                break
            for job in mine:
                known[job] = job_ok(job)
            here += len(mine)
        return here


class _Jobs(list):
    """A block's signature jobs as check_tx_inputs appends them, less those a worker already
    found good ahead of the block (SigPool.check_ahead), and less those still in flight
    there (`covered`: their verdicts are awaited, not asked for twice). The same job has the
    same answer, so serial order's first failure is among the jobs kept and covered."""

    __slots__ = ("known", "msgs", "skipped", "covered")

    def __init__(self, known: dict, msgs: list = ()):
        super().__init__()
        self.known = known
        self.msgs = msgs
        self.skipped = 0
        self.covered: list = []

    def append(self, job) -> None:
        verdict = self.known.get(job, False)
        if verdict is True:
            self.skipped += 1
        elif verdict is None:
            self.covered.append(job)
        else:
            super().append(job)
