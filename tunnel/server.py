"""The server end: one UDP socket, tunnels by ID (never by address: a client may move), opens
checked cheaply first, puzzles when busy, a replay cache per ephemeral key.

The order an OPEN is checked in is the order of its cost: known key id, then (when busy) the
puzzle (an HMAC and a SHA-256, no state), then the replay cache, and only then the two
X25519 operations and the AEAD check. An open that fails any check is dropped unanswered,
except that an unsolved open while busy gets a 25-byte PUZZLE (smaller than any open, so
puzzles amplify nothing).
"""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

from tunnel import crypto as C
from tunnel import packet as P
from tunnel.conn import Connection
from tunnel.session import Session
from tunnel import udp

TICK = 0.01
IDLE = 120.0                 # a tunnel silent this long is forgotten
PUZZLE_EPOCH = 30            # seconds a challenge stays good (this epoch and the last)
OPEN_WINDOW = 60             # an open's time may differ this much from ours (clock skew + delay)


@dataclass
class ServerLimits:
    max_tunnels: int = 1024          # with RECV_BUDGET: at most 1 GiB of buffered stream data
    replay_limit: int = 1 << 16      # opens remembered per key within OPEN_WINDOW (then opens are refused)
    puzzle_above: int = 500          # open attempts per second above which opens need a puzzle
    base_difficulty: int = 12        # leading zero bits asked at the threshold, +1 per doubling
    max_difficulty: int = 24


@dataclass
class EphKey:
    secret: bytes
    public: bytes
    accept_until: float              # the overlap: served clients may still use it until then
    replay: C.ReplayCache = field(default=None)


class Server:
    def __init__(self, id_secret: bytes, limits: ServerLimits | None = None, on_connection=None):
        self.id_secret = id_secret
        self.limits = limits or ServerLimits()
        self.on_connection = on_connection    # async callable(Connection)
        self.keys: dict[bytes, EphKey] = {}
        self.tunnels: dict[bytes, Session] = {}
        self.client_pubs: dict[bytes, bytes] = {}     # tid -> the open's client key (duplicate opens)
        self.puzzle_secret = os.urandom(32)
        self.transport = None
        self.stats = {"opens": 0, "puzzled": 0, "replays": 0, "stale": 0, "bad": 0, "unknown-key": 0, "full": 0}
        self._attempts, self._window_start, self._rate = 0, 0.0, 0.0
        self._ticker = None
        self._kicked: set = set()        # sessions the application gave something to send
        self._tasks: set = set()

    def set_eph_keys(self, pairs, now: float | None = None) -> None:
        """(secret, accept_until) pairs: the keys opens may be sealed to. A key already held
        keeps its replay cache; a dropped key's cache goes with it (no open to it is accepted)."""
        new = {}
        for secret, until in pairs:
            pub = C.public_of(secret)
            kid = C.key_id(pub)
            old = self.keys.get(kid)
            new[kid] = EphKey(secret, pub, until,
                              old.replay if old else C.ReplayCache(self.limits.replay_limit, OPEN_WINDOW))
        self.keys = new

    async def start(self, host: str, port: int):
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: _Proto(self), local_addr=(host, port))
        udp.tune(self.transport)
        self._ticker = asyncio.ensure_future(self._tick())
        return self.transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        for s in self.tunnels.values():
            s.close(time.monotonic())
        if self.transport:
            self.transport.close()

    def kick(self, session) -> None:
        if not self._kicked:
            asyncio.get_running_loop().call_soon(self._flush_kicked)
        self._kicked.add(session)

    def _flush_kicked(self) -> None:
        kicked, self._kicked = self._kicked, set()
        now = time.monotonic()
        for s in kicked:
            if not s.closed:
                s.flush(now)

    def _send(self, data: bytes, addr) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    # --- datagrams -------------------------------------------------------------------------

    def datagram(self, data: bytes, addr) -> None:
        now = time.monotonic()
        try:
            pkt = P.parse_datagram(data)
        except P.PacketError:
            self.stats["bad"] += 1
            return
        if isinstance(pkt, P.Open):
            self._open(pkt, addr, now)
        elif isinstance(pkt, P.Data) and (s := self.tunnels.get(pkt.tid)):
            if s.on_datagram(pkt, addr, now):
                s.flush(now)
            else:
                self.stats["bad"] += 1
        else:
            self.stats["bad"] += 1

    def _open(self, pkt: P.Open, addr, now: float) -> None:
        if pkt.tid in self.tunnels:
            if self.client_pubs.get(pkt.tid) == pkt.client_pub:     # our reply was lost
                self.tunnels[pkt.tid].ack_all()
                self.tunnels[pkt.tid].flush(now)
            return
        self._count_attempt(now)
        key, wall = self.keys.get(pkt.key_id), time.time()
        if key is None or key.accept_until < wall:
            self.stats["unknown-key"] += 1
            return
        if abs(wall - pkt.time) > OPEN_WINDOW:
            self.stats["stale"] += 1
            return
        if self._busy() and not self._solved(pkt, now):
            self.stats["puzzled"] += 1
            self._send(P.Puzzle(pkt.tid, self._challenge(now)).to_bytes(), addr)
            return
        if pkt.client_pub in key.replay.seen or key.replay.full(wall):
            self.stats["replays" if pkt.client_pub in key.replay.seen else "full"] += 1
            return
        if len(self.tunnels) >= self.limits.max_tunnels:
            self.stats["full"] += 1
            return
        try:
            keys = C.server_keys(key.secret, self.id_secret, pkt.client_pub, pkt.tid)
            C.unseal(keys.recv, pkt.pn, pkt.header(), pkt.sealed)
        except C.TunnelCryptoError:
            self.stats["bad"] += 1
            return
        key.replay.check_and_add(pkt.client_pub, pkt.time, wall)
        self._new_tunnel(pkt, keys, addr, now)

    def _new_tunnel(self, pkt: P.Open, keys: C.Keys, addr, now: float) -> None:
        s = Session(pkt.tid, keys, False, self._send, addr)
        s.key_since = now
        s.on_stream = lambda st: self._stream(s, st)
        s.on_tid = lambda new, old, s=s: self._route(s, new, old)
        self.tunnels[pkt.tid] = s
        self.client_pubs[pkt.tid] = pkt.client_pub
        self.stats["opens"] += 1
        s.on_datagram(pkt, addr, now)
        s.flush(now)

    def _route(self, s: Session, new: bytes | None, old: bytes | None) -> None:
        if new is not None and new not in self.tunnels:
            self.tunnels[new] = s
        if old is not None and self.tunnels.get(old) is s:
            del self.tunnels[old]
            self.client_pubs.pop(old, None)

    def _stream(self, s: Session, st) -> None:
        conn = Connection(self, s, st)
        if self.on_connection:
            task = asyncio.ensure_future(self.on_connection(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # --- load and puzzles ------------------------------------------------------------------

    def _count_attempt(self, now: float) -> None:
        if now - self._window_start >= 1.0:
            self._rate = self._attempts / max(1.0, now - self._window_start) if self._window_start else 0.0
            self._attempts, self._window_start = 0, now
        self._attempts += 1

    def load(self) -> float:
        """Open attempts per second: the larger of the last full second and the current one."""
        return max(self._rate, float(self._attempts))

    def _busy(self) -> bool:
        return self.load() > self.limits.puzzle_above

    def difficulty(self) -> int:
        over, d = self.load() / max(1, self.limits.puzzle_above), self.limits.base_difficulty
        while over >= 2 and d < self.limits.max_difficulty:
            over, d = over / 2, d + 1
        return d

    def _challenge(self, now: float) -> bytes:
        return C.make_challenge(self.puzzle_secret, int(time.time()) // PUZZLE_EPOCH, self.difficulty())

    def _solved(self, pkt: P.Open, now: float) -> bool:
        fields = C.challenge_fields(self.puzzle_secret, pkt.challenge)
        if fields is None or int(time.time()) // PUZZLE_EPOCH - fields[0] not in (0, 1):
            return False
        return C.puzzle_ok(pkt.challenge, pkt.tid, pkt.client_pub, pkt.solution)

    # --- timers ----------------------------------------------------------------------------

    async def _tick(self) -> None:
        """Retransmission timers every TICK, for the tunnels that have one running (an idle
        tunnel costs nothing here); once a second, idle tunnels and expired keys go."""
        ticks = 0
        while True:
            await asyncio.sleep(TICK)
            now, ticks = time.monotonic(), ticks + 1
            for s in set(self.tunnels.values()):
                if s.timer is not None or s.rekey is not None or s.ack_due:
                    s.on_timer(now)
                    s.flush(now, tick=True)
            if ticks % int(1 / TICK) == 0:
                self._sweep(now)

    def _sweep(self, now: float) -> None:
        for tid, s in list(self.tunnels.items()):
            if s.closed or now - s.last_heard > IDLE:
                self._route(s, None, tid)
        wall = time.time()
        self.keys = {k: v for k, v in self.keys.items() if v.accept_until >= wall}


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, server: Server):
        self.server = server

    def datagram_received(self, data, addr):
        self.server.datagram(data, addr)

    def error_received(self, exc):
        pass                 # ICMP unreachable from a vanished client: its tunnel idles out
