"""The link between the node and its DNS worker processes (--dns-workers N): msgpack frames,
each a 4-byte big-endian length and one msgpack array, over two socketpairs per worker
(made by the node and handed to the worker when it starts, so nothing else can connect):

  lookups  worker -> node, questions as [seq, op, args...] (one at a time, or a UDP batch's
           names in one write: NodeLink.call_many), each answered with
           [seq, True, answer] or [seq, False, error text] (a reply to a question the worker
           stopped waiting for is recognised by its seq and skipped):
           ["get", name]           -> the NameRecord as a list (NameRecord.to_obj), or None when
                                      the name is absent or expired at the node's tip
           ["getm", [name...]]     -> [answer of "get" for each name] (at most
                                      worker_pool.MAX_GETM names): a UDP batch's names in one frame
           ["ekey", name]          -> the current ephemeral-key update (EKeyUpdate bytes) or None
           ["names"]               -> the next batch of names in the index ([] at the end; None:
                                      too many to keep, ask for each), so a worker knows which
                                      names exist and answers a random name without asking
           ["alt", fqdn, qtype]    -> another record source's answer (sources.Policy.alternative)
                                      as [source, secure, [[owner, type, rdata]...], names_used],
                                      or None
  http     worker -> node, the HTTP API's questions (http_worker.py), many in flight, each
           [seq, op, args...] answered [seq, True, answer] or [seq, False, error text] in order:
           ["snaps", [[name...]...]] -> [height, hash, name_root, [[[name, record or None, proof]...]...]]:
                                      the tip and, for each list of names (one request's
                                      snapshot), each name's record (as stored, expired or not)
                                      and name-tree proof, all at one tip (the node answers one
                                      question at a time, between blocks): the snapshots a
                                      worker's event-loop turn asks for, in one frame each way,
                                      at most MAX_SNAP_NAMES names in all
           ["http", method, target, headers, body, close] -> the node's own answer, rendered
                                      (the endpoints a worker forwards whole)
  events   node -> worker: ["tip", height, SOA serial] and ["inv", name or None] (drop the answers that
           read the name, or all), pushed from the node's chain, name and ephemeral-key events;
           worker -> node: ["ready", port], ["error", text] and every second ["stats", {...}].

The node checks expiry itself ("get" answers None for an expired name): a worker's own idea
of the tip may lag by a frame, and expiry only grows with height, so the node's word wins.
"""
from __future__ import annotations

import asyncio
import socket
import struct

import msgpack

MAX_FRAME = 1 << 20          # a name record is at most a few KB; anything bigger is a bug
MAX_SNAP_NAMES = 80         # names in one "snaps" question (a domain reads at most 64: dvalue.DEFAULT_MAX_LOADS)
_LEN = struct.Struct(">I")


def frame(obj) -> bytes:
    data = msgpack.packb(obj, use_bin_type=True)
    return _LEN.pack(len(data)) + data


class Framer:
    """frame() by one kept Packer, for one link end used from one thread (the HTTP link's two
    ends): msgpack.packb makes a Packer, and its 256 KiB buffer, per call, which in a busy
    process cost more than packing a snapshot. The same bytes as frame()."""

    def __init__(self):
        self.packer = msgpack.Packer(use_bin_type=True)

    def __call__(self, obj) -> bytes:
        data = self.packer.pack(obj)
        return _LEN.pack(len(data)) + data


def unframe(data: bytes):
    return msgpack.unpackb(data, raw=False, use_list=True)


class LinkClosed(ConnectionError):
    """The other side went away."""


class FrameBuffer:
    """Incoming bytes -> whole frames (for a non-blocking reader)."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data: bytes) -> list:
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            n = _LEN.unpack_from(self.buf)[0]
            if n > MAX_FRAME:
                raise LinkClosed(f"frame of {n} bytes")
            if len(self.buf) < 4 + n:
                break
            out.append(unframe(bytes(self.buf[4:4 + n])))
            del self.buf[:4 + n]
        return out


class LookupFailed(RuntimeError):
    """The node could not answer a lookup (its error, as text): the query gets SERVFAIL."""


class NodeLink:
    """The worker's side of `lookups`: blocking calls, answered in order. A worker answers one
    query at a time, so a blocking call is the simplest correct thing; the node answers from
    its store in microseconds (TIMEOUT only bounds a node that stopped answering)."""

    TIMEOUT = 10.0

    def __init__(self, sock: socket.socket, on_broken=lambda: None):
        sock.setblocking(True)
        sock.settimeout(self.TIMEOUT)
        self.sock = sock
        self.calls = 0
        self.on_broken = on_broken      # the link cannot be trusted any more (the worker then ends)

    def call(self, *request):
        try:
            return self._call(request)
        except OSError:                 # a timeout may leave half a frame behind: never reuse the link
            self.on_broken()
            raise

    def _call(self, request):
        self.calls += 1
        seq = self.calls
        self.sock.sendall(frame([seq, *request]))
        while True:
            head = self._read(4)
            n = _LEN.unpack(head)[0]
            if n > MAX_FRAME:
                raise LinkClosed(f"frame of {n} bytes")
            got, ok, value = unframe(self._read(n))
            if got == seq:
                break
        if not ok:
            raise LookupFailed(value)
        return value

    def call_many(self, requests: list) -> list:
        """Several questions in one write and their (answered, answer or error text) in order: one
        round trip, not one each. The node answers every whole
        question of a read, so len(requests) replies must fit its socket buffer: callers keep
        it small (worker.PREFETCH_MAX)."""
        try:
            first = self.calls + 1
            self.calls += len(requests)
            self.sock.sendall(b"".join(frame([first + i, *r]) for i, r in enumerate(requests)))
            out, left, frames = [None] * len(requests), len(requests), FrameBuffer()
            while left:                 # the replies come together: read them in as few reads as fit
                data = self.sock.recv(1 << 16)
                if not data:
                    raise LinkClosed("the node closed the lookup link")
                for got, ok, value in frames.feed(data):
                    if first <= got < first + len(requests):
                        out[got - first] = (ok, value)
                        left -= 1
            return out
        except (OSError, ValueError):   # a timeout or a bad frame: never reuse the link
            self.on_broken()
            raise

    def _read(self, n: int) -> bytes:
        parts, left = [], n
        while left:
            chunk = self.sock.recv(left)
            if not chunk:
                raise LinkClosed("the node closed the lookup link")
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)


class AsyncLink(asyncio.Protocol):
    """The worker's side of `http`: many questions in flight, each answered by a callback. The
    questions asked while one batch of events is handled go out in one write, so the node wakes
    once for them all and answers them in one write too."""

    def __init__(self, on_broken=lambda: None):
        self.transport = None
        self.frames = FrameBuffer()
        self.waiting: dict[int, object] = {}      # seq -> callback(ok, value)
        self.outgoing: list[bytes] = []
        self.seq = 0
        self.calls = 0
        self.on_broken = on_broken
        self.frame = Framer()

    @classmethod
    async def open(cls, sock: socket.socket, on_broken) -> "AsyncLink":
        loop = asyncio.get_running_loop()
        _, link = await loop.create_unix_connection(lambda: cls(on_broken), sock=sock)
        return link

    def connection_made(self, transport):
        self.transport = transport

    def call(self, callback, *request, now: bool = False) -> None:
        """Ask; `callback(ok, value)` runs when the node answers (never before this returns).
        `now`: write at once, with whatever is queued (the caller gathered a loop turn's
        questions itself), not at the end of this loop turn."""
        self.seq += 1
        self.calls += 1
        self.waiting[self.seq] = callback
        if not self.outgoing and not now:
            asyncio.get_running_loop().call_soon(self._flush)
        self.outgoing.append(self.frame([self.seq, *request]))
        if now:
            self._flush()

    def _flush(self) -> None:
        data, self.outgoing = b"".join(self.outgoing), []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            replies = self.frames.feed(data)
        except (ValueError, ConnectionError):
            self.transport.close()
            return
        for seq, ok, value in replies:
            callback = self.waiting.pop(seq, None)
            if callback is not None:
                callback(ok, value)

    def connection_lost(self, exc) -> None:
        waiting, self.waiting = self.waiting, {}
        for callback in waiting.values():
            callback(False, "the node closed the link")
        self.on_broken()
