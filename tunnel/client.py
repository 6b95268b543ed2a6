"""The client end and the Python API:

    info = await resolve_server(light_client, "example.bit")      # tunnel/resolve.py
    async with Tunnel(info) as t:
        conn = t.connection()
        conn.write(b"GET / HTTP/1.0\\r\\n\\r\\n")                   # rides in the first datagram
        page = await conn.reader.read()

The tunnel opens lazily: the first flush after data was written sends ONE datagram with a
fresh Curve25519 key, a random tunnel ID and that data sealed (0-RTT). If the server answers
with a puzzle, a new key pair and tunnel ID are made and the open is sent again with the
solution (a re-sent open never reuses a nonce under a key). The client rekeys on a timer,
after a byte count and when its address changes (`rebind()`); it is the only side that does.
"""
from __future__ import annotations

import asyncio
import os
import time

from nacl.bindings import crypto_box_keypair

from tunnel import crypto as C
from tunnel import packet as P
from tunnel.conn import Connection
from tunnel.session import Session
from tunnel import udp

TICK = 0.01
MAX_PUZZLE_BITS = 24        # what a server asks at most (ServerLimits.max_difficulty): PUZZLEs are
                            # unauthenticated, so a harder one is a forgery meant to burn our CPU
NO_PUZZLE = bytes(P.CHALLENGE_LEN), bytes(P.SOLUTION_LEN)


class TunnelError(Exception):
    """The tunnel could not be opened or broke: `check` names what failed."""

    def __init__(self, check: str, message: str):
        super().__init__(f"{check}: {message}")
        self.check = check


class Tunnel:
    def __init__(self, info, *, rekey_bytes: int = 1 << 30, rekey_interval: float = 600.0,
                 open_timeout: float = 5.0):
        self.info = info
        self.addr = (info.host, info.port)
        self.rekey_bytes, self.rekey_interval = rekey_bytes, rekey_interval
        self.open_timeout = open_timeout
        self.transport = None
        self.session: Session | None = None
        self.puzzles = 0
        self._kicked = False
        self._ticker = None
        self._opened_at = 0.0
        self._solving = False

    async def __aenter__(self) -> "Tunnel":
        await self._bind()
        self._new_keys()
        self._ticker = asyncio.ensure_future(self._tick())
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        if self.session:
            self.session.close(time.monotonic())
        if self.transport:
            self.transport.close()

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: _Proto(self), remote_addr=self.addr)
        udp.tune(self.transport)

    async def rebind(self) -> None:
        """A new local port, as after a change of network: the tunnel carries on under its ID,
        and we rekey (seed 004 §4.3.4)."""
        old = self.transport
        await self._bind()
        old.close()
        self.session.new_path()
        self.session.start_rekey(time.monotonic())
        self.kick(self.session)

    def _new_keys(self) -> None:
        """A fresh key pair and tunnel ID, and keys agreed with the server's published ones."""
        pub, secret = crypto_box_keypair()
        tid = os.urandom(P.TID_LEN)
        keys = C.client_keys(secret, self.info.eph_key, self.info.id_key, tid)
        self.client_pub = pub
        if self.session is None:
            self.session = Session(tid, keys, True, self._send, self.addr)
        else:                                 # after a puzzle: same streams, new tunnel
            self.session.tid, self.session.keys, self.session.send_pn = tid, keys, 0
            for st in self.session.streams.values():
                st.send.flight.clear()
                st.send.next = st.send.base
        self.session.key_since = time.monotonic()

    def _send(self, data: bytes, addr) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.sendto(data)

    # --- the API ---------------------------------------------------------------------------

    def connection(self) -> Connection:
        return Connection(self, self.session, self.session.open_stream())

    def kick(self, session=None) -> None:
        if not self._kicked:
            self._kicked = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self, challenge_solution=NO_PUZZLE) -> None:
        self._kicked = False
        s, now = self.session, time.monotonic()
        if not s.confirmed and s.open_datagram is None and not self._solving \
                and any(st.send.has_new() for st in s.streams.values()):
            self._opened_at = now
            self._send(s.build_open(C.key_id(self.info.eph_key), self.client_pub, *challenge_solution, now,
                                    int(time.time())), None)
            return
        s.flush(now)

    async def wait_open(self) -> None:
        """Until the server's first authenticated reply; TunnelError if none comes in time
        (a wrong or stale key: the server cannot read our open, so it stays silent)."""
        end = time.monotonic() + self.open_timeout
        while not self.session.confirmed:
            if time.monotonic() > end:
                raise TunnelError("handshake", f"no authenticated reply from {self.addr[0]}:{self.addr[1]} "
                                               f"(server keys not the published ones, or unreachable)")
            await asyncio.sleep(0.005)

    # --- datagrams and timers --------------------------------------------------------------

    def datagram(self, data: bytes) -> None:
        try:
            pkt = P.parse_datagram(data)
        except P.PacketError:
            return
        s, now = self.session, time.monotonic()
        if isinstance(pkt, P.Puzzle):
            if not s.confirmed and pkt.tid == s.tid and not self._solving and pkt.challenge[4] <= MAX_PUZZLE_BITS:
                self._solving = True
                asyncio.ensure_future(self._solve(pkt.challenge))
            return
        if isinstance(pkt, P.Data) and s.on_datagram(pkt, self.addr, now):
            s.flush(now)

    async def _solve(self, challenge: bytes) -> None:
        self.puzzles += 1
        self._new_keys()
        s = self.session
        s.open_datagram = None
        try:
            solution = await asyncio.get_running_loop().run_in_executor(
                None, C.solve, challenge, s.tid, self.client_pub)
        finally:
            self._solving = False
        self._flush((challenge, solution))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            s, now = self.session, time.monotonic()
            if s.confirmed and (s.key_bytes > self.rekey_bytes or now - s.key_since > self.rekey_interval):
                s.start_rekey(now)
            s.on_timer(now)
            s.flush(now, tick=True)


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, tunnel: Tunnel):
        self.tunnel = tunnel

    def datagram_received(self, data, addr):
        self.tunnel.datagram(data)

    def error_received(self, exc):
        pass                 # ICMP from a server not there yet: the open is resent
