"""The stored zone's signatures kept valid while no block comes: blocks re-sign the apex every
serial and the oldest owners a bounded batch at a time, but a chain that stalls longer than the
signatures' validity would let them all expire. This timer looks at the oldest expiration now and
then and, when it is within the refresh window (projection.REFRESH_AGE) and blocks have
stopped, re-signs a bounded batch as a new serial; the NOTIFY and the online SOA carry it, so
secondaries fetch it by IXFR. Blocks have stopped when the tip's time is QUIET behind the clock
and no block came since the last look: blocks do the refreshing while they come, each timer
refresh is a serial more (pushing blocks' steps out of the IXFR history), and a node syncing an
old chain (old tip times, signatures born expired) must not spend its time re-signing what the
next blocks re-sign anyway.

It runs on the event loop, the thread that connects blocks, so its batch and a block's never
interleave (projection.refresh_signatures says what a block arriving meanwhile finds).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from node.resolver.zone.projection import REFRESH_AGE, REFRESH_BATCH, ZoneProjection

log = logging.getLogger("dotbit.resolver.zone")

EVERY = 60.0          # seconds between looks: a million owners refreshed in ~8 h of the 7 days left
QUIET = 3600          # the tip's block time this far behind the clock: blocks have stopped
URGENT = 86400        # oldest signature expiring within a day (the node was off): catch up faster
URGENT_EVERY = 1.0    # between batches then, so blocks and queries are still served in between


class SignatureTimer:
    def __init__(self, zone: ZoneProjection, tip: Callable, on_serial: Callable[[int], None], *,
                 clock: Callable[[], float] = time.time, limit: int = REFRESH_BATCH):
        self.zone = zone
        self.tip = tip                   # () -> the chain's tip entry
        self.on_serial = on_serial       # called with each new serial (NOTIFY, SOA caches)
        self.clock = clock
        self.limit = limit
        self.refreshed = 0               # serials made by the timer
        self.seen: int | None = None     # the zone's serial after the last look

    def tick(self) -> float:
        """One look (one batch at most); returns the seconds until the next."""
        now = int(self.clock())
        current = self.zone.serial()
        moved, self.seen = self.seen is not None and current != self.seen, current
        oldest = self.zone.oldest_expiration()
        tip = self.tip()
        if moved or oldest is None or oldest >= now + REFRESH_AGE or tip.header.time > now - QUIET:
            return EVERY
        serial = self.zone.refresh_signatures(tip, now, self.limit)
        if serial:
            self.seen = serial
            self.refreshed += 1
            log.info("zone bit. signatures refreshed without a block: serial %d (oldest was to expire at %d)",
                     serial, oldest)
            self.on_serial(serial)
        return URGENT_EVERY if serial and oldest < now + URGENT else EVERY

    async def run(self) -> None:
        while True:
            try:
                wait = self.tick()
            except Exception:
                # A zone bug must not end the timer (nor the node): the next look tries again.
                log.exception("zone: signature refresh failed")
                wait = EVERY
            await asyncio.sleep(wait)
