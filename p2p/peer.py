"""One peer connection: a reader task that decodes frames, a writer task that drains a
bounded send queue, and the per-peer state the network keeps (known inventory, score,
in-flight requests, rate limits).

Reading and writing are separate tasks so that two peers serving each other large blocks
never wait on each other's reads (a reader that awaited its own drain could deadlock).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict, deque

from core.errors import DecodeError

from p2p.messages import FRAME_HEADER, Message, decode_frame_header, decode_payload, encode_frame

log = logging.getLogger("dotbit.p2p")

MAX_SEND_QUEUE = 8 << 20          # bytes queued for a peer that does not read: then drop it
MAX_KNOWN_INV = 50_000
MAX_GETDATA_QUEUE = 50_000
MSG_RATE = 2000.0                 # messages/s sustained per peer ...
MSG_BURST = 8000.0                # ... with this burst; beyond it the peer is flooding
MAX_ADDR_TOKENS = 1000.0          # addr entries a peer may send at once (one full addr message)

_ids = itertools.count(1)


class BoundedSet:
    """Insertion-ordered set that forgets its oldest members (known inventory per peer)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._d: OrderedDict = OrderedDict()

    def add(self, item) -> None:
        self._d[item] = None
        self._d.move_to_end(item)
        if len(self._d) > self.limit:
            self._d.popitem(last=False)

    def __contains__(self, item) -> bool:
        return item in self._d

    def __len__(self) -> int:
        return len(self._d)


class Peer:
    def __init__(self, net, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 inbound: bool, target: tuple[str, int] | None = None):
        self.net = net
        self.id = next(_ids)
        self.reader = reader
        self.writer = writer
        self.inbound = inbound
        peername = writer.get_extra_info("peername") or ("?", 0)
        self.host, self.port = peername[0], peername[1]
        self.target = target                  # the (host, port) we dialled, for outbound
        self.version = None                   # their Version once received
        self.verack = False
        self.connected_at = time.time()
        self.last_recv = self.last_send = time.monotonic()
        self.bytes_recv = self.bytes_sent = 0
        self.score = 0
        self.blocks_recv = 0
        self.msgs_recv: dict[str, int] = {}   # per message type, to see relay is not a storm
        self.best_height = 0                  # highest block we know they have
        self.known = BoundedSet(MAX_KNOWN_INV)
        self.inflight: dict[bytes, float] = {}   # block hash -> monotonic time requested
        self.block_progress = 0.0             # last time they delivered (or began to owe) a block
        self.inv_queue: list = []              # tx/ephkey announcements, sent in batches
        self.sent_addr = False
        self.feeler = False                   # a short outbound dial only to learn it is alive
        # addr entries it may still send us (Bitcoin Core starts at 1 and adds MAX_ADDR per getaddr)
        self.addr_tokens = 1.0
        self._addr_refill = time.monotonic()
        self.lacks: set[bytes] = set()           # blocks they answered notfound for
        self.getdata: deque = deque()           # (type, hash) they asked us for
        self.ping_nonce: int | None = None
        self.ping_sent = 0.0
        self.ping_time: float | None = None
        self.headers_asked = 0.0              # monotonic time of our outstanding getheaders
        self.unconnecting = 0
        self.closed = asyncio.Event()
        self._queue: deque = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._tokens = MSG_BURST
        self._refill = time.monotonic()
        self._tasks: list[asyncio.Task] = []

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ready(self) -> bool:
        return self.version is not None and self.verack and not self.closed.is_set()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._write_loop())]

    # --- sending ---------------------------------------------------------------------------

    def send(self, msg: Message) -> None:
        if self.closed.is_set():
            return
        data = encode_frame(self.net.magic, msg)
        self._queued += len(data)
        if self._queued > MAX_SEND_QUEUE:
            self.close("send queue full (peer not reading)")
            return
        self._queue.append(data)
        self._wake.set()

    def queue_getdata(self, items) -> bool:
        if len(self.getdata) + len(items) > MAX_GETDATA_QUEUE:
            return False
        self.getdata.extend(items)
        self._wake.set()
        return True

    async def _write_loop(self) -> None:
        try:
            while not self.closed.is_set():
                if self._queue:
                    data = self._queue.popleft()
                    self._queued -= len(data)
                elif self.getdata:
                    # Served one item at a time, only when nothing else waits: memory stays
                    # bounded by one block however much a peer asks for.
                    data = self.net.serve_getdata(self)
                    if data is None:
                        continue
                else:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self.writer.write(data)
                self.bytes_sent += len(data)
                self.last_send = time.monotonic()
                await self.writer.drain()
        except (ConnectionError, OSError) as e:
            self.close(f"write failed: {e}")
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("peer %d (%s): writer failed", self.id, self.addr)
            self.close("internal error")

    # --- receiving -------------------------------------------------------------------------

    def _rate_ok(self) -> bool:
        now = time.monotonic()
        self._tokens = min(MSG_BURST, self._tokens + (now - self._refill) * MSG_RATE)
        self._refill = now
        self._tokens -= 1
        return self._tokens >= 0

    def take_addr_tokens(self, n: int, rate: float) -> int:
        """How many of n addr entries fit its allowance (refilled at `rate` per second up to
        MAX_ADDR_TOKENS; rate 0: no limit); those are spent."""
        if rate <= 0:
            return n
        now = time.monotonic()
        if self.addr_tokens < MAX_ADDR_TOKENS:
            self.addr_tokens = min(MAX_ADDR_TOKENS, self.addr_tokens + (now - self._addr_refill) * rate)
        self._addr_refill = now
        allowed = min(n, int(self.addr_tokens))
        self.addr_tokens -= allowed
        return allowed

    def _answers_us(self, msg) -> bool:
        # What we asked for does not count against the rate limit: a fast sync of small blocks
        # must not look like a flood.
        cmd = msg.command if msg is not None else ""
        return (cmd == "block" and bool(self.inflight)) or (cmd == "headers" and bool(self.headers_asked))

    async def _read_loop(self) -> None:
        magic = self.net.magic
        try:
            while not self.closed.is_set():
                head = await self.reader.readexactly(FRAME_HEADER.size)
                length = decode_frame_header(magic, head)
                payload = await self.reader.readexactly(length)
                self.bytes_recv += len(head) + length
                self.last_recv = time.monotonic()
                msg = decode_payload(payload)
                if not self._answers_us(msg) and not self._rate_ok():
                    self.net.misbehave(self, 100, "message flood")
                    self.close("message flood")
                    return
                if msg is None:
                    continue
                self.msgs_recv[msg.command] = self.msgs_recv.get(msg.command, 0) + 1
                await self.net.handle(self, msg)
        except DecodeError as e:
            # After a bad frame the stream cannot be trusted to be in step: always hang up.
            self.net.misbehave(self, e.ban_score, f"{e.reason}: {e.detail}")
            self.close(f"bad frame: {e.reason}")
        except asyncio.IncompleteReadError:
            self.close("connection closed by peer")
        except (ConnectionError, OSError) as e:
            self.close(f"read failed: {e}")
        except asyncio.CancelledError:
            pass
        except Exception:
            # A bug triggered by one peer's input must cost that connection, not the node.
            log.exception("peer %d (%s): handler failed", self.id, self.addr)
            self.close("internal error")

    # --- closing ---------------------------------------------------------------------------

    def close(self, reason: str = "") -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        log.info("peer %d (%s) disconnected: %s", self.id, self.addr, reason)
        try:
            self.writer.close()
        except Exception:
            pass
        for t in self._tasks:
            if t is not asyncio.current_task():
                t.cancel()
        self.net.on_closed(self)

    def info(self) -> dict:
        v = self.version
        return {"id": self.id, "addr": self.addr, "inbound": self.inbound,
                "version": v.version if v else 0, "subver": v.user_agent.decode("ascii", "replace") if v else "",
                "services": f"{v.services:016x}" if v else "", "startingheight": v.height if v else -1,
                "synced_blocks": self.best_height, "conntime": int(self.connected_at),
                "bytessent": self.bytes_sent, "bytesrecv": self.bytes_recv,
                "pingtime": self.ping_time, "banscore": self.score, "inflight": len(self.inflight),
                "blocks_recv": self.blocks_recv,
                "msgs_recv": dict(self.msgs_recv),
                "handshake_done": self.ready}
