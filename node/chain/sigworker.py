"""The loop of one signature worker process (node/chain/sigpool.py): a list of
core.sigcheck jobs in, the position of the first bad one (-1: none) out, until None or the
pipe closes. Kept apart so a worker imports only this and core/, not the chain state."""
from __future__ import annotations

import os
import select
import signal
import time

from core.sigcheck import first_bad

# After a chunk a worker watches its pipe this long before it sleeps in a blocking read.
# Waking a sleeping process costs the writer (the connecting thread) a wake-up in its write:
# measured on a 2-vCPU VM, a write to a sleeping worker took 0.5 ms on average, where its
# chunk of work is ~0.5 ms, so waking the worker for every chunk cost the connecting thread
# what the worker saved it. While blocks come (reindex, sync) the next chunk arrives well
# within this; an idle node's worker sleeps after it. sched_yield: on a busy core the watch
# gives way to anything else runnable.
SPIN = 0.01


def _wait(conn, spin: float) -> None:
    """Returns when the pipe is readable or `spin` seconds have passed."""
    watch = select.poll()
    watch.register(conn.fileno(), select.POLLIN)
    deadline = time.monotonic() + spin
    while not watch.poll(0) and time.monotonic() < deadline:
        os.sched_yield()


def serve(conn, spin: float = SPIN) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the node stops its workers
    # itself, so they must not die first with a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while True:
            _wait(conn, spin)
            jobs = conn.recv()
            if jobs is None:
                return
            conn.send(first_bad(jobs))
    except (EOFError, OSError):
        return                   # the node went away
