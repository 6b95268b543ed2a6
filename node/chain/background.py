"""The helpers of the connecting thread (signature worker processes, the batch writer) run
at a lower scheduling priority than it.

Why: in a --par reindex the connecting thread is the pipeline's critical path, while its
helpers have slack: a worker holds the next block's checks ahead, the writer is one batch
behind, LevelDB's compaction (started from the writer, whose priority it inherits) has far
more. With more runnable threads than cores, an equal share left the connecting thread
waiting in the run queue for a third of a reindex; a lower weight for the helpers lets it run
and them fill the gaps. Where nothing competes, priorities change nothing.
"""
from __future__ import annotations

import os

NICE = 5           # CFS weight 335 against 1024 at nice 0: about three quarters of a shared core


def lower_priority() -> None:
    """Lowers the calling thread's priority by NICE (on Linux PRIO_PROCESS 0 is the calling
    thread). Best effort: a system that refuses leaves it as it was."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICE))
    except (OSError, AttributeError):       # AttributeError: no setpriority on this platform
        pass
