"""One typed event: listeners subscribe, the owner emits; a failing listener is logged and the
others still run, so no consumer (resolver, CA, p2p, mempool) can break the chain or the stores
that publish to it (DESIGN §2: connected/disconnected blocks and name changes are events)."""
from __future__ import annotations

import logging
from typing import Callable, Generic, ParamSpec

P = ParamSpec("P")


class Event(Generic[P]):
    """Listeners run in subscription order, on the emitter's thread, after its state committed."""

    def __init__(self, log: logging.Logger, failed: str):
        self._log = log
        self._failed = failed      # the log line of a failed listener; {0} is the first argument
        self._listeners: list[Callable[P, object]] = []

    def subscribe(self, fn: Callable[P, object]) -> None:
        self._listeners.append(fn)

    def emit(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for fn in list(self._listeners):
            try:
                fn(*args, **kwargs)
            except Exception:    # a listener must never break the emitter
                self._log.exception(self._failed.format(*args))

    def __len__(self) -> int:
        return len(self._listeners)
