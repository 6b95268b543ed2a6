"""One connection inside a tunnel: a reliable, ordered byte stream each way, TCP-like
(docs/protocol.md "Tunnel streams"). Pure: times are passed in.

Sending: bytes are numbered from 0; a segment stays in flight until the peer's cumulative
ack passes it and is sent again when the tunnel's retransmission timer fires or three
duplicate acks arrive. Nothing is sent beyond the window the peer last advertised (flow
control). Receiving: out-of-order segments wait, within the window we advertise, until the
gap fills; duplicates are dropped, so a replayed or retransmitted segment is delivered once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

RECV_WINDOW = 256 * 1024        # bytes a stream buffers for the application (flow control)
SEND_BUFFER = 256 * 1024        # bytes a writer may queue before it is told to wait


@dataclass(slots=True)
class Segment:
    length: int
    fin: bool
    sent_at: float
    retransmitted: bool = False


class SendSide:
    def __init__(self):
        self.buf = bytearray()       # bytes from `base` on start at buf[off]: in flight, then unsent
        self.off = 0                 # acked bytes still at the head of buf (compacted lazily: a
                                     # large write must not be moved once per ack)
        self.base = 0                # lowest unacked byte
        self.next = 0                # next byte never sent before
        self.fin_queued = False
        self.fin_acked = False
        self.peer_window = RECV_WINDOW   # until the first ack says otherwise
        self.flight: dict[int, Segment] = {}    # by seq, inserted in increasing seq order
        self.flight_bytes = 0
        self.dup_acks = 0
        self.resent_below = 0        # bytes below this were sent before: their acks time nothing

    @property
    def end(self) -> int:
        return self.base + len(self.buf) - self.off

    def queued(self) -> int:
        return len(self.buf) - self.off

    def _slice(self, seq: int, n: int) -> bytes:
        i = self.off + seq - self.base
        with memoryview(self.buf) as view:      # one copy (a bytearray slice would be a second)
            return bytes(view[i:i + n])

    def in_flight(self) -> int:
        return self.flight_bytes

    def has_new(self) -> bool:
        return self.next < self.end or (self.fin_queued and not self._fin_sent())

    def _fin_sent(self) -> bool:
        return any(s.fin for s in self.flight.values()) or self.fin_acked

    def take(self, room: int, now: float):
        """(seq, data, fin) of the next new segment of at most `room` bytes, within the
        peer's window; None if there is nothing to send or no window."""
        limit = self.base + self.peer_window
        n = min(room, self.end - self.next, max(0, limit - self.next))
        fin = self.fin_queued and self.next + n == self.end and not self._fin_sent()
        if n <= 0 and not fin:
            return None
        if n < room and n < self.end - self.next and len(self.flight) >= 2:
            return None      # silly window avoidance: two unacked segments bring an ack at once
        seq = self.next
        data = self._slice(seq, n)
        self.flight[seq] = Segment(n, fin, now, seq < self.resent_below)
        self.flight_bytes += n
        self.next += n
        return seq, data, fin

    def resend(self, seq: int, now: float):
        seg = self.flight[seq]
        seg.sent_at, seg.retransmitted = now, True
        return seq, self._slice(seq, seg.length), seg.fin

    def rewind(self) -> None:
        """After a retransmission timeout: everything in flight counts as lost and is sent
        again from the first unacked byte (TCP's go-back-N without SACK)."""
        self.resent_below = max(self.resent_below, self.next + 1)
        self.flight.clear()
        self.flight_bytes = 0
        self.next = self.base

    def first_in_flight(self) -> int | None:
        return min(self.flight) if self.flight else None

    def on_ack(self, ack: int, window: int, now: float):
        """(bytes newly acked, an RTT sample or None, fast-retransmit wanted)."""
        self.peer_window = window
        fin_end = self.end + 1 if self.fin_queued else self.end
        if ack <= self.base or ack > fin_end:
            self.dup_acks += ack == self.base and bool(self.flight)
            return 0, None, self.dup_acks == 3
        sample = None
        done = []
        for seq, seg in self.flight.items():
            if seq + seg.length + seg.fin > ack:
                break
            done.append(seq)
            if not seg.retransmitted:       # Karn: a resent segment's ack times nothing
                sample = now - seg.sent_at
            self.fin_acked |= seg.fin
        for seq in done:
            self.flight_bytes -= self.flight.pop(seq).length
        acked = min(ack, self.end) - self.base
        self.off += acked
        self.base += acked
        if self.off > 65536 and self.off * 2 > len(self.buf):
            del self.buf[:self.off]
            self.off = 0
        self.next = max(self.next, self.base)
        self.dup_acks = 0
        return acked, sample, False


class RecvSide:
    def __init__(self, window: int = RECV_WINDOW):
        self.capacity = window
        self.expected = 0
        self.ooo: dict[int, bytes] = {}
        self.ooo_bytes = 0
        self.unread = 0              # delivered to the application, not yet consumed by it
        self.fin_at: int | None = None
        self.eof = False

    def window(self) -> int:
        return max(0, self.capacity - self.unread - self.ooo_bytes)

    def on_data(self, seq: int, data: bytes, fin: bool) -> bytes:
        """In-order bytes this segment releases (possibly b''); duplicates, and data beyond
        the advertised window, are dropped."""
        if fin:
            end = seq + len(data)
            if self.fin_at is None or self.fin_at == end:
                self.fin_at = end
        if seq + len(data) > self.expected + self.capacity - self.unread:
            return b""                      # beyond the window: a misbehaving sender
        if seq > self.expected:
            if seq not in self.ooo and data:
                self.ooo[seq] = data
                self.ooo_bytes += len(data)
            return b""
        if seq == self.expected and not self.ooo:     # the common case: in order, no copies
            self.expected += len(data)
            self.unread += len(data)
            if self.fin_at is not None and self.expected >= self.fin_at:
                self.eof = True
            return data
        out = bytearray(data[self.expected - seq:])
        self.expected += len(out)
        while self.expected in self.ooo:
            more = self.ooo.pop(self.expected)
            self.ooo_bytes -= len(more)
            out += more
            self.expected += len(more)
        for s in [s for s in self.ooo if s < self.expected]:     # overlapped by what arrived
            self.ooo_bytes -= len(self.ooo.pop(s))
        self.unread += len(out)
        if self.fin_at is not None and self.expected >= self.fin_at:
            self.eof = True
        return bytes(out)

    def ack_value(self) -> int:
        return self.expected + (1 if self.eof else 0)      # a FIN takes one number, as in TCP

    def consumed(self, n: int) -> None:
        self.unread = max(0, self.unread - n)


@dataclass
class StreamState:
    sid: int
    send: SendSide = field(default_factory=SendSide)
    recv: RecvSide = field(default_factory=RecvSide)
    on_data: object = None           # callable(bytes) set by the application
    on_eof: object = None            # callable()
    on_acked: object = None          # callable(): some of our bytes were acknowledged
    eof_told: bool = False
    reset: bool = False

    def done(self) -> bool:
        return self.reset or (self.eof_told and self.send.fin_acked)
