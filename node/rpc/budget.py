"""What one RPC call may cost: calls whose work the caller chooses (a scan with a regexp, a
name's whole history, a verbose block, an address's history) run off the event loop, in a
small pool of their own, under a deadline they check as they go; DNS, HTTP and p2p keep being
served meanwhile (issue 15 §6).

Why a deadline checked by the method, not `wait_for` around the thread: a thread cannot be
cancelled, so a call that merely timed out outside would go on burning a worker and the GIL.
The deadline travels in a context variable, so the methods' signatures stay the RPC's own.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from concurrent.futures import ThreadPoolExecutor

from node.rpc.registry import MISC_ERROR, RPCError

CALL_SECONDS = 5.0           # wall time an offloaded call may take before it stops with an error
WORKERS = 2                  # offloaded calls running at once; more wait their turn

# (monotonic deadline, the seconds it allowed), or None outside an offloaded call
_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("rpc_deadline", default=None)


def check(what: str) -> None:
    """Raise a clear RPC error once the call's deadline has passed (no-op outside one)."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline[0]:
        raise RPCError(MISC_ERROR, f"{what} stopped after {deadline[1]:g} s: narrow it "
                                   f"(a start, a prefix, a smaller count) and ask again")


class Offloader:
    """Runs a method in the pool with a deadline; `stopped` counts calls cut short (/metrics)."""

    def __init__(self, seconds: float = CALL_SECONDS, workers: int = WORKERS):
        self.seconds = seconds
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc-call")
        self.stopped = 0

    async def run(self, fn, *args, **kwargs):
        ctx = contextvars.copy_context()
        ctx.run(_deadline.set, (time.monotonic() + self.seconds, self.seconds))
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, call)
        except RPCError as e:
            if "stopped after" in e.message:
                self.stopped += 1
            raise

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
