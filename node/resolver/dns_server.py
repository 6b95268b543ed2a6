"""DNS over UDP and TCP on loopback: moves bytes between sockets and `Responder.handle`.

TCP follows RFC 7766: two-byte length framing, several queries per connection, idle
connections closed after a timeout, a deadline per message, a bound on open connections with
per-source caps and eviction (core/connlimit.py).
"""
from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import socket

from core.connlimit import ConnCaps
from light.dnstcp import serve_dns_tcp
from node.resolver.dns_answer import Responder
from node.resolver.ratelimit import ALLOW, SLIP, truncated_reply

try:                                    # optional C drain (pyproject.toml); the Python one serves without it
    from node.resolver import _udpfast
except ImportError:                     # pragma: no cover - exercised on machines without a compiler
    _udpfast = None
NATIVE = _udpfast is not None

log = logging.getLogger("dotbit.resolver.dns")

MAX_TCP_CONNECTIONS = 256
START_ATTEMPTS = 5       # free ports tried when asked for any (port 0): see DNSServer.start


UDP_BATCH = 256          # datagrams handled per wake-up before yielding to other tasks
SEND_BATCH = 16          # uncached answers held for one send at most (~1 ms of rendering and signing)
SO_ATTACH_REUSEPORT_CBPF = 51     # Linux <asm/socket.h>


class _Insn(ctypes.Structure):          # struct sock_filter
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Prog(ctypes.Structure):          # struct sock_fprog
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_Insn))]


def spread_evenly(sock: socket.socket, count: int) -> bool:
    """Each datagram to the port goes to a random one of the `count` SO_REUSEPORT sockets
    (a classic BPF program for the group: A = random; A %= count; return A). The kernel's
    default picks by the 4-tuple hash, so a client with few source ports (dnsperf -c 8) loaded
    one worker near twice the other, and that worker capped the whole port. A socket index the
    group lacks (a worker restarting) falls back to the hash. False where Linux refuses it."""
    insns = (_Insn * 3)(_Insn(0x20, 0, 0, (-0x1000 + 56) & 0xFFFFFFFF),     # ld [SKF_AD_OFF + SKF_AD_RANDOM]
                        _Insn(0x94, 0, 0, count),                          # mod #count
                        _Insn(0x16, 0, 0, 0))                              # ret a
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, bytes(_Prog(3, insns)))
    except OSError as e:
        log.info("DNS UDP: datagrams spread by source address (no reuseport program: %s)", e)
        return False
    return True


class _UDPFastPath:
    """UDP without a transport: on each readiness event drain up to UDP_BATCH datagrams
    with plain recvfrom/sendto. A cached answer then costs two syscalls and a dict lookup,
    not the per-datagram protocol machinery of asyncio, which roughly doubles throughput.

    With `cached` (Responder.cached) the batch is read first and its cached answers sent; the
    rest are handed to `prefetch` (worker.py: the names they will read, fetched from the node in
    one round trip instead of one per query) and then answered one by one, sent SEND_BATCH at a
    time. With the optional C drain (_udpfast.c, given `responder`) the cached part runs in one C
    call per batch, with recvmmsg/sendmmsg and the same rate-limiter check per datagram (`_cached`
    is its reference), and the other answers go out in one sendmmsg per SEND_BATCH."""

    def __init__(self, sock: socket.socket, handle, limiter=None, wake=None, cached=None, prefetch=None,
                 responder=None):
        self.sock = sock
        self.responder = responder  # with _udpfast built: the Responder whose kept answers C sends
        self.handle = handle
        self.limiter = limiter      # a ratelimit.ResponseRateLimiter, or None
        self.wake = wake            # called before each batch, or None (worker.py: apply pending events)
        self.cached = cached        # query -> its kept answer or None (Responder.cached), or None
        self.prefetch = prefetch    # called with the batch's uncached queries, or None

    def readable(self) -> None:
        if self.wake is not None:
            self.wake()
        if self.cached is None:
            return self._each()
        misses = self._native() if self.responder is not None else self._cached()
        if misses:
            handle, replies = self.handle, []
            if self.prefetch is not None:
                self.prefetch([data for data, _, verdict in misses if not verdict])
            for data, addr, verdict in misses:
                if verdict:
                    out = truncated_reply(data) if verdict == SLIP else None
                else:
                    out = handle(data, False)
                if out is not None:
                    replies.append((out, addr))
                    if len(replies) >= SEND_BATCH:
                        self._reply(replies)
                        replies = []
            self._reply(replies)

    def _reply(self, replies: list) -> None:
        """Answers sent back to back (with the C drain, in one sendmmsg): a client then wakes
        once for several, not once per answer between two renders."""
        if self.responder is not None and replies:
            try:
                return _udpfast.send(self.sock.fileno(), replies)
            except (TypeError, ValueError):
                pass            # an address sendmmsg is not given here (an IPv6 scope): from Python
        for out, addr in replies:
            _send(self.sock, out, addr)

    def _native(self) -> list:
        """_udpfast.drain: the batch's cached answers sent from C; the rest, rate-limiter verdict
        included, returned for the Python path (the same check per datagram as _cached)."""
        r = self.responder
        return _udpfast.drain(self.sock.fileno(), r._raw, r.counts, self.limiter.check if self.limiter else None,
                              UDP_BATCH)

    def _cached(self) -> list:
        """The batch's cached answers sent; the rest returned as (query, address, verdict)."""
        sock, cached, limiter = self.sock, self.cached, self.limiter
        misses = []
        for data, addr in _datagrams(sock):
            verdict = limiter.check(addr[0]) if limiter is not None else ALLOW
            if verdict or len(data) < 12 or (out := cached(data)) is None:
                misses.append((data, addr, verdict))
            else:
                _send(sock, out, addr)
        return misses

    def _each(self) -> None:
        """Each datagram answered as it is read (a responder without `cached`: SignedResponder)."""
        sock, handle, limiter = self.sock, self.handle, self.limiter
        for data, addr in _datagrams(sock):
            if limiter is not None and (verdict := limiter.check(addr[0])):
                out = truncated_reply(data) if verdict == SLIP else None
            else:
                out = handle(data, False)
            if out is not None:
                _send(sock, out, addr)


def _datagrams(sock: socket.socket):
    """Up to UDP_BATCH waiting datagrams, as (data, address), until the socket has none."""
    for _ in range(UDP_BATCH):
        try:
            yield sock.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            continue        # ICMP errors from clients that went away


def _send(sock: socket.socket, out: bytes, addr) -> None:
    try:
        sock.sendto(out, addr)
    except OSError:
        pass        # full buffer: the client retries, as over any UDP path


class DNSServer:
    def __init__(self, responder, host: str = "127.0.0.1", port: int = 0, transfer=None, limiter=None,
                 caps: ConnCaps | None = None, reuse_port: bool = False, wake=None, prefetch=None,
                 native: bool = True, spread: int = 0):
        self.responder = responder
        self.reuse_port = reuse_port    # one of several DNS worker processes on the port (worker.py)
        self.spread = spread            # with reuse_port: datagrams spread at random over this many sockets
        # Called before answering (each UDP batch, each TCP message): a worker applies the cache
        # drops the node has pushed, so an answer never predates an event already sent to it.
        self.wake = wake
        self.prefetch = prefetch        # worker.py: fetches the names a UDP batch's uncached queries read
        self.native = native            # False: the Python drain even with _udpfast built (tests compare)
        self.limiter = limiter          # a ratelimit.ResponseRateLimiter for UDP, or None
        self.transfer = transfer        # a zone_transfer.ZoneTransfer answering AXFR/IXFR, or None
        self.host = host
        self.port = port
        self._udp = None
        self._tcp = None
        self.udp_path = None            # the _UDPFastPath serving the UDP socket once started
        self.tcp_limiter = (caps or ConnCaps()).limiter(MAX_TCP_CONNECTIONS)   # read by /metrics
        self.tcp_timeouts = 0           # clients closed for an idle or too slow message (read by /metrics)

    async def start(self) -> None:
        # Port 0: UDP takes a free port from the kernel and TCP the same number, which a TCP
        # socket may already hold (seen in CI: EADDRINUSE): then both try another one.
        tries = START_ATTEMPTS if self.port == 0 else 1
        for attempt in range(tries):
            try:
                return await self._start_once()
            except OSError as e:
                if e.errno != errno.EADDRINUSE or attempt + 1 == tries:
                    raise
                self.port = 0

    async def _start_once(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            if self.reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        if self.reuse_port and self.spread > 1:
            spread_evenly(sock, self.spread)
        sock.setblocking(False)
        self._udp = sock
        self.port = sock.getsockname()[1]
        # Only a plain Responder's kept answers are sent unseen: SignedResponder must see every query.
        plain = isinstance(self.responder, Responder)
        udp = _UDPFastPath(sock, self.responder.handle, self.limiter, self.wake, self.responder.cached if plain else None,
                           self.prefetch, self.responder if plain and NATIVE and self.native else None)
        self.udp_path = udp
        loop.add_reader(sock.fileno(), udp.readable)
        try:
            self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port,
                                                   reuse_port=self.reuse_port or None)
        except OSError:
            loop.remove_reader(sock.fileno())
            sock.close()
            self._udp = None
            raise
        log.info("DNS for bit. on %s:%d (UDP and TCP)", self.host, self.port)

    async def stop(self) -> None:
        if self._udp is not None:
            asyncio.get_running_loop().remove_reader(self._udp.fileno())
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for w in self.tcp_limiter.holders():
                w.close()
            await self._tcp.wait_closed()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answer = lambda wire: self.responder.handle(wire, True)      # noqa: E731
        if self.wake is not None:
            answer = lambda wire: self.wake() or self.responder.handle(wire, True)     # noqa: E731
        if self.transfer is not None:
            peer = (writer.get_extra_info("peername") or (None,))[0]
            answer = lambda wire: self.transfer.handle(wire, peer) or self.responder.handle(wire, True)  # noqa: E731
        if await serve_dns_tcp(reader, writer, answer, self.tcp_limiter):
            self.tcp_timeouts += 1
