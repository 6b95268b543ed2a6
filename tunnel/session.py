"""One tunnel, either end: keys and packet numbers, its streams, the congestion window, the
retransmission timer and rekeying (docs/protocol.md "Tunnel"). No sockets and no clock: the
endpoint feeds it datagrams and times and gives it a `transmit(datagram, addr)` function.

Congestion control is per tunnel, as in MinimaLT (seed 004 §4.3.7), and TCP's (Reno): slow
start to ssthresh, one MSS per RTT after, halve on a fast retransmit, one MSS after a timeout.
"""
from __future__ import annotations

import os

from tunnel import crypto as C
from tunnel import packet as P
from tunnel.pmtu import PathMtu
from tunnel.stream import StreamState

MSS = P.MAX_PLAINTEXT - 64          # at BASE: room for a stream segment beside acks in one datagram
INITIAL_CWND = 10 * MSS
MIN_RTO, MAX_RTO, INITIAL_RTO = 0.05, 10.0, 0.5
MAX_STREAMS = 256                   # per tunnel: a peer cannot make us hold more
RECV_BUDGET = 1 << 20               # bytes all of a tunnel's streams may hold unread or out of order


class Session:
    def __init__(self, tid: bytes, keys: C.Keys, is_client: bool, transmit, addr):
        self.tid = tid
        self.keys = keys
        self.is_client = is_client
        self.transmit = transmit          # transmit(datagram: bytes, addr)
        self.addr = addr                  # where the peer was last heard from (mobility)
        self.send_pn = 0
        self.window = C.PacketWindow()
        self.streams: dict[int, StreamState] = {}
        self.next_sid = 1
        self.ack_due: set[int] = set()
        self.ack_debt = 0                 # in-order data segments arrived since we last acked
        self.control: list = []           # frames sent once (acks of rekeys, pings, close)
        self.cwnd, self.ssthresh = INITIAL_CWND, 1 << 30
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = INITIAL_RTO
        self.timer: float | None = None   # when the retransmission timer fires
        self.confirmed = not is_client    # a client's tunnel is confirmed by the first reply
        self.open_datagram: bytes | None = None
        self.closed = False
        self.last_heard = 0.0
        self.key_bytes = 0                # bytes sealed or opened under the current keys
        self.key_since = 0.0
        self.rekey: tuple | None = None   # client: (new_tid, sent_at); server: (new_tid, keys)
        self.old_recv: tuple | None = None    # client: (tid, key, window) before a rekey, until the server switches
        self.highest_sid = 0              # server: streams at or below it were opened (maybe done)
        self.on_stream = None             # server: callable(StreamState) for a stream the peer opened
        self.on_tid = None                # server: callable(new_tid | None, old_tid) to re-route
        self.rekeys = 0
        self.pmtu = PathMtu()             # how big our datagrams may be (probed, tunnel/pmtu.py)
        self.mss = MSS
        self._arrived = 0                 # size of the datagram being handled (a probe's answer)

    # --- the application's side ------------------------------------------------------------

    def open_stream(self) -> StreamState:
        sid, self.next_sid = self.next_sid, self.next_sid + 2
        st = self.streams[sid] = StreamState(sid)
        return st

    def write(self, st: StreamState, data: bytes) -> None:
        st.send.buf += data

    def finish(self, st: StreamState) -> None:
        st.send.fin_queued = True

    def consumed(self, st: StreamState, n: int) -> None:
        before = self._window(st)
        st.recv.consumed(n)
        if before < P.MAX_PLAINTEXT <= self._window(st):      # window reopened: tell the sender
            self.ack_due.add(st.sid)

    def _held(self) -> int:
        return sum(st.recv.unread + st.recv.ooo_bytes for st in self.streams.values())

    def _window(self, st: StreamState) -> int:
        """What a stream may still send: its own window, within what the tunnel's shared
        budget has left, so many streams cannot make us hold many windows' worth."""
        return max(0, min(st.recv.window(), RECV_BUDGET - self._held()))

    def new_path(self) -> None:
        """The peer moved (or we did): what the old path carried proves nothing (as QUIC does
        on migration), so datagrams go back to 1400 bytes and probing starts over."""
        self.pmtu, self.mss = PathMtu(), MSS

    def in_flight(self) -> int:
        return sum(st.send.in_flight() for st in self.streams.values())

    # --- receiving -------------------------------------------------------------------------

    def on_datagram(self, pkt, addr, now: float) -> bool:
        """Handles an authenticated-or-not DATA (or a duplicate OPEN) for this tunnel; False if
        it did not authenticate or was a replay (dropped)."""
        plain = self._unseal(pkt)
        if plain is None:
            return False
        try:
            frames = P.decode_frames(plain)
        except P.PacketError:
            return False
        if not self.is_client and pkt.pn == self.window.highest:
            if addr != self.addr:
                self.new_path()
            self.addr = addr                 # the newest packet says where the client is now
        self.last_heard = now
        self.key_bytes += len(pkt.sealed)
        self._arrived = P.DATA_HEADER + len(pkt.sealed)
        if self.is_client and not self.confirmed:
            self.confirmed, self.open_datagram = True, None
        for f in frames:
            self._on_frame(f, now)
        return True

    def _unseal(self, pkt):
        header = pkt.header()
        if isinstance(pkt, P.Data) and self.rekey and not self.is_client and pkt.tid == self.rekey[0]:
            return self._switch_on_new_tid(pkt, header)
        if self.old_recv is not None and pkt.tid == self.old_recv[0]:
            return self._try_old_key(pkt, header)
        if pkt.tid != self.tid:
            return None
        try:
            plain = C.unseal(self.keys.recv, pkt.pn, header, pkt.sealed)
        except C.TunnelCryptoError:
            return None
        if not self.window.accept(pkt.pn):
            return None
        self.old_recv = None                 # the peer uses the new keys: the old one is erased
        return plain

    def _try_old_key(self, pkt, header):
        _, key, window = self.old_recv
        try:
            plain = C.unseal(key, pkt.pn, header, pkt.sealed)
        except C.TunnelCryptoError:
            return None
        return plain if window.accept(pkt.pn) else None

    def _switch_on_new_tid(self, pkt, header):
        new_tid, keys = self.rekey
        try:
            plain = C.unseal(keys.recv, pkt.pn, header, pkt.sealed)
        except C.TunnelCryptoError:
            return None
        old = self.tid
        self.tid, self.keys, self.rekey = new_tid, keys, None     # the old keys are gone
        self.window, self.send_pn, self.key_bytes = C.PacketWindow(), 0, 0
        self.window.accept(pkt.pn)
        self.rekeys += 1
        if self.on_tid:
            self.on_tid(None, old)
        return plain

    def _on_frame(self, f, now: float) -> None:
        if isinstance(f, P.Stream):
            self._on_stream_frame(f)
        elif isinstance(f, P.Ack):
            self._on_ack(f, now)
        elif isinstance(f, P.Reset):
            st = self.streams.get(f.sid)
            if st:
                st.reset = True
                if st.on_eof:
                    st.on_eof()
        elif isinstance(f, P.NextTid) and not self.is_client:
            self._on_next_tid(f)
        elif isinstance(f, P.NextTidAck) and self.is_client and self.rekey and f.tid == self.rekey[0]:
            self._switch_client(now)
        elif isinstance(f, P.Ping):
            self.ack_due.update(self.streams)
        elif isinstance(f, P.Close):
            self._end_streams()
        elif isinstance(f, P.Probe) and self._arrived:
            # One answer per datagram: a datagram of PROBE bytes must not buy 5 bytes each.
            self.control.append(P.ProbeAck(self._arrived))
            self._arrived = 0
        elif isinstance(f, P.ProbeAck):
            self.pmtu.on_ack(f.size)
            self.mss = P.max_plaintext(self.pmtu.size) - 64

    def _on_stream_frame(self, f) -> None:
        st = self.streams.get(f.sid)
        if st is None:
            if self.is_client or f.sid % 2 == 0:
                return
            if f.sid <= self.highest_sid or len(self.streams) >= MAX_STREAMS:
                self.control.append(P.Reset(f.sid))     # finished (its last ack was lost) or too many
                return
            st = self.streams[f.sid] = StreamState(f.sid)
            self.highest_sid = f.sid
            if self.on_stream:
                self.on_stream(st)
        self.ack_due.add(f.sid)
        # Delayed acks (TCP's, RFC 1122): every second segment, or at once for a gap (the
        # sender's duplicate acks), a FIN or a duplicate; the timer tick sends the rest.
        self.ack_debt += 1 if f.seq == st.recv.expected and not f.fin else 2
        if f.seq + len(f.data) > st.recv.expected and self._held() + len(f.data) > RECV_BUDGET:
            return                           # over the tunnel's budget: resent once there is room
        data = st.recv.on_data(f.seq, f.data, f.fin)
        if data and st.on_data:
            st.on_data(data)
        if st.recv.eof and not st.eof_told:
            st.eof_told = True
            if st.on_eof:
                st.on_eof()

    def _on_ack(self, f, now: float) -> None:
        st = self.streams.get(f.sid)
        if st is None:
            return
        acked, sample, fast = st.send.on_ack(f.ack, f.window, now)
        if sample is not None:
            self._rtt(sample)
        if acked:
            if st.on_acked:
                st.on_acked()
            if self.cwnd < self.ssthresh:
                self.cwnd += acked
            else:
                self.cwnd += max(1, self.mss * acked // self.cwnd)
            self.timer = now + self.rto if self.in_flight() else None
        if fast:
            self.ssthresh = max(2 * self.mss, self.in_flight() // 2)
            self.cwnd = self.ssthresh
            first = st.send.first_in_flight()
            if first is not None:
                self._send_frames([P.Stream(f.sid, *st.send.resend(first, now))], now)

    def _rtt(self, sample: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = sample, sample / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - sample)
            self.srtt = 0.875 * self.srtt + 0.125 * sample
        self.rto = min(MAX_RTO, max(MIN_RTO, self.srtt + 4 * self.rttvar))

    # --- rekeying --------------------------------------------------------------------------

    def start_rekey(self, now: float) -> None:
        """Client: announce a new tunnel ID inside this one (MinimaLT's nextTid)."""
        if self.is_client and self.confirmed and self.rekey is None:
            self.rekey = (os.urandom(P.TID_LEN), now)
            self.control.append(P.NextTid(self.rekey[0], os.urandom(P.PUB_LEN)))

    def _on_next_tid(self, f) -> None:
        if self.rekey is None or self.rekey[0] != f.tid:
            if self.rekey and self.on_tid:
                self.on_tid(None, self.rekey[0])
            self.rekey = (f.tid, C.next_keys(self.keys, False))
            if self.on_tid:
                self.on_tid(f.tid, None)
        self.control.append(P.NextTidAck(f.tid))

    def _switch_client(self, now: float) -> None:
        new_tid = self.rekey[0]
        self.old_recv = (self.tid, self.keys.recv, self.window)
        self.tid, self.keys, self.rekey = new_tid, C.next_keys(self.keys, True), None
        self.window, self.send_pn, self.key_bytes, self.key_since = C.PacketWindow(), 0, 0, now
        self.rekeys += 1
        self.control.append(P.Ping())        # the server switches on our first packet under the new tid

    # --- sending ---------------------------------------------------------------------------

    def flush(self, now: float, tick: bool = False) -> None:
        """Sends what is due: acks (delayed to every second segment unless `tick` or other
        frames go anyway) and control frames, then new data while the congestion window has
        room. A client tunnel not yet confirmed sends only its open datagram."""
        if self.is_client and not self.confirmed:
            return
        frames = self.control + self._new_segments(now)
        self.control = []
        if self.ack_due and (tick or frames or self.ack_debt >= 2):
            frames[:0] = [P.Ack(sid, st.recv.ack_value(), self._window(st))
                          for sid in sorted(self.ack_due) if (st := self.streams.get(sid))]
            self.ack_due.clear()
            self.ack_debt = 0
        self._send_frames(frames, now)
        if self.timer is not None:       # probe only a path in use (data in flight or waiting)
            self._probe(now)
        self._reap()

    def _probe(self, now: float) -> None:
        self.pmtu.check(now)
        size = self.pmtu.probe_due(now)
        if size is not None:
            self.pmtu.sent(size, now, self.rto)
            self._seal_and_send(None, P.probe_plaintext(size))

    def _new_segments(self, now: float) -> list:
        out, room = [], self.cwnd - self.in_flight()
        if room < self.mss and sum(len(st.send.flight) for st in self.streams.values()) >= 2:
            room = 0         # no runt segments while two unacked ones make the peer ack at once
        for st in list(self.streams.values()):
            while room > 0 and st.send.has_new() and not st.reset:
                seg = st.send.take(min(self.mss, room), now)
                if seg is None:
                    break
                out.append(P.Stream(st.sid, *seg))
                room -= len(seg[1]) + 1
        if self.timer is None and (out or any(st.send.has_new() for st in self.streams.values())):
            self.timer = now + self.rto          # retransmission, or the probe of a closed window
        return out

    def _send_frames(self, frames: list, now: float) -> None:
        batch, size, limit = [], 0, P.max_plaintext(self.pmtu.size)
        for f in frames:
            n = P.frame_size(f)
            if batch and size + n > limit:
                self._seal_and_send(batch)
                batch, size = [], 0
            batch.append(f)
            size += n
        if batch:
            self._seal_and_send(batch)

    def _seal_and_send(self, frames: list | None, plain: bytes = b"") -> None:
        pn, self.send_pn = self.send_pn, self.send_pn + 1
        header = P.Data(self.tid, pn, b"").header()
        sealed = C.seal(self.keys.send, pn, header, P.encode_frames(frames) if frames else plain)
        self.key_bytes += len(sealed)
        self.transmit(header + sealed, self.addr)

    def on_timer(self, now: float) -> None:
        """The retransmission timer: resend the open, or each stream's first unacked segment,
        and back off (TCP: one MSS, doubled RTO)."""
        if self.rekey and self.is_client and now - self.rekey[1] > max(self.rto, 0.2):
            self.control.append(P.NextTid(self.rekey[0], os.urandom(P.PUB_LEN)))
            self.rekey = (self.rekey[0], now)
        if self.timer is None or now < self.timer:
            return
        if self.open_datagram is None and not self.in_flight():
            # Data waiting on a closed window: probe (a PING is answered with every stream's
            # ack), or a lost window update would stall the stream for good (TCP's persist timer).
            waiting = any(st.send.has_new() for st in self.streams.values())
            self.timer = now + min(MAX_RTO, self.rto * 2) if waiting else None
            if waiting:
                self.control.append(P.Ping())
            return
        if self.open_datagram is not None:
            self.transmit(self.open_datagram, self.addr)
        else:
            if self.pmtu.on_timeout(now):    # maybe a black hole for big datagrams: back to BASE
                self.mss = MSS
            self.ssthresh = max(2 * self.mss, self.in_flight() // 2)
            self.cwnd = self.mss
            for st in self.streams.values():
                st.send.rewind()         # the next flush resends from each first unacked byte
        self.rto = min(MAX_RTO, self.rto * 2)
        self.timer = now + self.rto

    def build_open(self, key_id: bytes, client_pub: bytes, challenge: bytes, solution: bytes,
                   now: float, wall: int) -> bytes:
        """Client: the OPEN datagram, carrying as much queued stream data as fits (0-RTT); it
        is resent as is until the server's first reply confirms the tunnel."""
        frames, room = [], P.MAX_PLAINTEXT - 32
        for st in self.streams.values():
            seg = st.send.take(room, now) if room > 0 else None
            if seg:
                frames.append(P.Stream(st.sid, *seg))
                room -= P.STREAM_HEAD + len(seg[1])
        pn, self.send_pn = self.send_pn, self.send_pn + 1
        header = P.Open(self.tid, pn, key_id, client_pub, wall, challenge, solution, b"").header()
        self.open_datagram = header + C.seal(self.keys.send, pn, header, P.encode_frames(frames))
        self.timer = now + self.rto
        return self.open_datagram

    def ack_all(self) -> None:
        """A duplicate open: the client did not hear us, so say again what arrived."""
        self.ack_due.update(self.streams)

    def _reap(self) -> None:
        for sid in [sid for sid, st in self.streams.items() if st.done()]:
            del self.streams[sid]

    def close(self, now: float) -> None:
        if not self.closed and self.confirmed:
            self._send_frames([P.Close()], now)
        self._end_streams()

    def _end_streams(self) -> None:
        """The tunnel is gone: every reader sees the end, so nothing waits on it forever."""
        self.closed = True
        for st in self.streams.values():
            if st.on_eof and not st.eof_told:
                st.eof_told = True
                st.on_eof()
