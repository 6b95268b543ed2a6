"""Packetization-layer path MTU discovery for one direction of a tunnel (RFC 8899 DPLPMTUD,
as QUIC does it; docs/protocol.md "Datagram size"). Pure: times are passed in.

Every tunnel starts at BASE (1400-byte datagrams, below common path MTUs). While it has data
to send, the sender probes the next larger size with a PROBE frame padded to exactly that
size; the peer answers PROBE_ACK(size). An answered size becomes the datagram size; a size
whose MAX_PROBES probes all go unanswered ends the search there (until RAISE_AFTER has passed).
Probes carry no stream data, so their loss costs nothing but the probe: it is never resent
and never counts as congestion. A retransmission timeout while above BASE may be a black hole
(a path that stopped carrying big datagrams): the size drops back to BASE at once and the
search starts again from the bottom.
"""
from __future__ import annotations

from tunnel import packet as P

BASE = P.BASE_DATAGRAM
# Sizes searched upward: Ethernet's 1500 (IPv4), jumbo frames' 9000, then up to the largest
# UDP payload over IPv4 (loopback's MTU is 65536). IPv6 paths lose the probes above theirs.
SIZES = (1472, 8972, 16384, 32768, P.MAX_DATAGRAM)
MAX_PROBES = 3                 # RFC 8899 MAX_PROBES: unanswered probes before a size is given up
RAISE_AFTER = 600.0            # RFC 8899 PMTU_RAISE_TIMER: when a finished search starts again
MIN_PROBE_WAIT = 0.05          # a probe is lost after max(RTO, this) without its answer


class PathMtu:
    def __init__(self):
        self.size = BASE               # the datagram size in use (the PLPMTU)
        self.next = 0                  # index in SIZES of the size to probe next
        self.pending: tuple[int, float] | None = None    # (probed size, lost after)
        self.lost = 0                  # unanswered probes of SIZES[next]
        self.resume_at = 0.0           # a finished search waits until then
        self.black_holes = 0

    def probe_due(self, now: float) -> int | None:
        """The size to probe now, or None (a probe is out, or the search is over for now)."""
        if self.pending is not None:
            return None
        if self.next >= len(SIZES):
            if now < self.resume_at:
                return None
            self.next, self.lost = self._first_above(), 0
            if self.next >= len(SIZES):
                self.resume_at = now + RAISE_AFTER
                return None
        return SIZES[self.next]

    def sent(self, size: int, now: float, rto: float) -> None:
        self.pending = (size, now + max(rto, MIN_PROBE_WAIT))

    def on_ack(self, size: int) -> None:
        """The peer received a probe of `size` bytes: datagrams that big get through."""
        if self.pending is None or self.pending[0] != size:
            return                     # not the probe we sent (a late answer, or a forged size)
        self.pending, self.lost = None, 0
        self.size = max(self.size, size)
        self.next = self._first_above()
        if self.next >= len(SIZES):
            self.resume_at = float("inf")      # nothing larger to look for

    def check(self, now: float) -> None:
        """Counts an overdue probe as lost; MAX_PROBES lost at one size ends the search."""
        if self.pending is None or now < self.pending[1]:
            return
        self.pending = None
        self.lost += 1
        if self.lost >= MAX_PROBES:
            self.next, self.lost = len(SIZES), 0
            self.resume_at = now + RAISE_AFTER

    def on_timeout(self, now: float) -> bool:
        """A retransmission timeout: True if the size fell back to BASE (a possible black hole)."""
        if self.size <= BASE:
            return False
        self.size, self.pending, self.lost = BASE, None, 0
        self.next = 0
        self.black_holes += 1
        return True

    def _first_above(self) -> int:
        return next((i for i, s in enumerate(SIZES) if s > self.size), len(SIZES))
