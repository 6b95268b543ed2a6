"""The loop of one signature worker process (node/chain/sigpool.py): a list of
core.sigcheck jobs in, the position of the first bad one (-1: none) out; or ("ahead", jobs)
in, every job's verdict out (core.sigcheck.verdicts); until None or the pipe closes. Kept apart so a worker imports only this and core/, not the chain state."""
from __future__ import annotations

import signal

from core.sigcheck import first_bad, verdicts


def serve(conn) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the node stops its workers
    # itself, so they must not die first with a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while True:
            jobs = conn.recv()
            if jobs is None:
                return
            conn.send(verdicts(jobs[1]) if type(jobs) is tuple else first_bad(jobs))
    except (EOFError, OSError):
        return                   # the node went away
