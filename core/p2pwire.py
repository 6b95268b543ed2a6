"""P2P messages and their framing (DESIGN §5). Pure: bytes in, objects out, no I/O. Shared by
the node's p2p/ and the light client, which syncs headers from full nodes with it.

Frame: magic4 | length4 (u32 little-endian) | msgpack [type, body]. The type is a short
text tag; the body is a msgpack array whose shape each message class checks on decode.
Blocks and transactions travel as `bin` holding their own canonical encoding, so a node
serves them straight from its store and decodes them with the chain's own size limits.
Decoding refuses anything but the exact shape (DecodeError, ban score 100); the frame length
is checked before a single body byte is read, so no peer can make us buffer more than
MAX_FRAME.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from core.encoding import expect_bytes, expect_list, expect_uint, pack, unpack
from core.errors import DecodeError
from core.primitives import HEADER_SIZE, MAX_BLOCK_DECODE, MAX_HEADER_WIRE, MAX_TX_DECODE

PROTOCOL_VERSION = 1
NODE_NETWORK = 1                 # services bit: serves full blocks
FRAME_HEADER = struct.Struct("<4sI")
MAX_HEADERS = 2000
# A full block plus room for the envelope, or a full headers message of merge-mined headers
# (each with its AuxPoW), whichever is larger: about 4.3 MB.
MAX_FRAME = max(MAX_BLOCK_DECODE, MAX_HEADERS * (MAX_HEADER_WIRE + 3)) + 64 * 1024
MAX_INV = 20_000                 # x ~37 bytes: well inside one frame
MAX_LOCATOR = 64
MAX_ADDR = 1000
MAX_EPHKEY = 4096
MAX_USER_AGENT = 256

INV_TX, INV_BLOCK, INV_EPHKEY = 1, 2, 3
INV_TYPES = (INV_TX, INV_BLOCK, INV_EPHKEY)


class Message:
    """Base: subclasses define `command`, `to_obj()` and `from_obj(obj)`."""
    command = ""

    def to_obj(self) -> list:
        return []

    @classmethod
    def from_obj(cls, obj):
        expect_list(obj, 0, cls.command)
        return cls()


@dataclass(frozen=True, slots=True)
class Version(Message):
    version: int
    services: int
    height: int
    nonce: int
    time: int
    listen_port: int          # 0 when the sender does not accept connections
    user_agent: bytes = b""
    command = "version"

    def to_obj(self):
        return [self.version, self.services, self.height, self.nonce, self.time, self.listen_port,
                self.user_agent]

    @classmethod
    def from_obj(cls, obj):
        expect_list(obj, 7, "version")
        return cls(expect_uint(obj[0], 32, "version"), expect_uint(obj[1], 64, "services"),
                   expect_uint(obj[2], 32, "height"), expect_uint(obj[3], 64, "nonce"),
                   expect_uint(obj[4], 64, "time"), expect_uint(obj[5], 16, "listen port"),
                   expect_bytes(obj[6], what="user agent", max_len=MAX_USER_AGENT))


@dataclass(frozen=True, slots=True)
class Verack(Message):
    command = "verack"


@dataclass(frozen=True, slots=True)
class GetAddr(Message):
    command = "getaddr"


@dataclass(frozen=True, slots=True)
class Ping(Message):
    nonce: int
    command = "ping"

    def to_obj(self):
        return [self.nonce]

    @classmethod
    def from_obj(cls, obj):
        expect_list(obj, 1, cls.command)
        return cls(expect_uint(obj[0], 64, "nonce"))


@dataclass(frozen=True, slots=True)
class Pong(Ping):
    command = "pong"


@dataclass(frozen=True, slots=True)
class Addr(Message):
    """Peer addresses as (host text, port, last-seen unix time)."""
    addrs: tuple[tuple[str, int, int], ...]
    command = "addr"

    def to_obj(self):
        return [[h.encode(), p, t] for h, p, t in self.addrs]

    @classmethod
    def from_obj(cls, obj):
        items = expect_list(obj, what="addr")
        if len(items) > MAX_ADDR:
            raise DecodeError(f"addr: more than {MAX_ADDR}")
        out = []
        for a in items:
            expect_list(a, 3, "address")
            host = expect_bytes(a[0], what="host", max_len=255)
            try:
                text = host.decode("ascii")
            except UnicodeDecodeError:
                raise DecodeError("host: not ascii") from None
            out.append((text, expect_uint(a[1], 16, "port"), expect_uint(a[2], 64, "time")))
        return cls(tuple(out))


@dataclass(frozen=True, slots=True)
class Inv(Message):
    """Inventory vectors (type, hash32): announcements, requests and misses share the shape."""
    items: tuple[tuple[int, bytes], ...]
    command = "inv"

    def to_obj(self):
        return [[t, h] for t, h in self.items]

    @classmethod
    def from_obj(cls, obj):
        items = expect_list(obj, what=cls.command)
        if len(items) > MAX_INV:
            raise DecodeError(f"{cls.command}: more than {MAX_INV} items")
        out = []
        for it in items:
            expect_list(it, 2, "inv item")
            t = expect_uint(it[0], 8, "inv type")
            if t not in INV_TYPES:
                raise DecodeError(f"inv type {t} unknown")
            out.append((t, expect_bytes(it[1], 32, "inv hash")))
        return cls(tuple(out))


@dataclass(frozen=True, slots=True)
class GetData(Inv):
    command = "getdata"


@dataclass(frozen=True, slots=True)
class NotFound(Inv):
    command = "notfound"


@dataclass(frozen=True, slots=True)
class GetHeaders(Message):
    locator: tuple[bytes, ...]
    stop: bytes = bytes(32)
    command = "getheaders"

    def to_obj(self):
        return [list(self.locator), self.stop]

    @classmethod
    def from_obj(cls, obj):
        expect_list(obj, 2, "getheaders")
        loc = expect_list(obj[0], what="locator")
        if len(loc) > MAX_LOCATOR:
            raise DecodeError(f"locator: more than {MAX_LOCATOR}")
        return cls(tuple(expect_bytes(h, 32, "locator hash") for h in loc),
                   expect_bytes(obj[1], 32, "stop hash"))


@dataclass(frozen=True, slots=True)
class Headers(Message):
    headers: tuple[bytes, ...]     # headers in wire form (with AuxPoW); the receiver parses and checks them
    command = "headers"

    def to_obj(self):
        return list(self.headers)

    @classmethod
    def from_obj(cls, obj):
        items = expect_list(obj, what="headers")
        if len(items) > MAX_HEADERS:
            raise DecodeError(f"headers: more than {MAX_HEADERS}")
        headers = tuple(expect_bytes(h, what="header", max_len=MAX_HEADER_WIRE) for h in items)
        if any(len(h) < HEADER_SIZE for h in headers):
            raise DecodeError(f"headers: a header shorter than {HEADER_SIZE} bytes")
        return cls(headers)


@dataclass(frozen=True, slots=True)
class BlockMsg(Message):
    raw: bytes                     # canonical block encoding
    command = "block"

    def to_obj(self):
        return [self.raw]

    @classmethod
    def from_obj(cls, obj):
        expect_list(obj, 1, cls.command)
        return cls(expect_bytes(obj[0], what=cls.command, max_len=MAX_BLOCK_DECODE))


@dataclass(frozen=True, slots=True)
class TxMsg(Message):
    raw: bytes
    command = "tx"

    def to_obj(self):
        return [self.raw]

    @classmethod
    def from_obj(cls, obj):
        expect_list(obj, 1, cls.command)
        return cls(expect_bytes(obj[0], what=cls.command, max_len=MAX_TX_DECODE))


@dataclass(frozen=True, slots=True)
class EphKey(Message):
    """An ephemeral-key update (DESIGN §5, MinimaLT). Opaque here: whoever registers the
    "ephkey" handler parses and checks it; p2p only frames, dedups and relays."""
    payload: bytes
    command = "ephkey"

    def to_obj(self):
        return [self.payload]

    @classmethod
    def from_obj(cls, obj):
        expect_list(obj, 1, cls.command)
        return cls(expect_bytes(obj[0], what=cls.command, max_len=MAX_EPHKEY))


MESSAGES: dict[str, type[Message]] = {m.command: m for m in (
    Version, Verack, Ping, Pong, GetAddr, Addr, Inv, GetData, NotFound, GetHeaders, Headers,
    BlockMsg, TxMsg, EphKey)}


def encode_frame(magic: bytes, msg: Message) -> bytes:
    payload = pack([msg.command, msg.to_obj()])
    if len(payload) > MAX_FRAME:
        raise ValueError(f"{msg.command}: {len(payload)} bytes exceeds frame limit")
    return FRAME_HEADER.pack(magic, len(payload)) + payload


assert len(pack([Inv.command, [[INV_TX, bytes(32)]] * MAX_INV])) < MAX_FRAME
assert len(pack([Headers.command, [bytes(MAX_HEADER_WIRE)] * MAX_HEADERS])) < MAX_FRAME


def decode_frame_header(magic: bytes, head: bytes) -> int:
    """Checks the 8-byte frame header and returns the payload length."""
    if len(head) != FRAME_HEADER.size:
        raise DecodeError("frame header truncated", "bad-frame")
    got, length = FRAME_HEADER.unpack(head)
    if got != magic:
        raise DecodeError(f"bad magic {got.hex()}", "bad-magic")
    if length > MAX_FRAME:
        raise DecodeError(f"frame of {length} bytes exceeds {MAX_FRAME}", "oversize-frame")
    return length


def decode_payload(payload: bytes) -> Message | None:
    """The message in a frame body; None for a well-formed message of an unknown type (newer
    peers may speak more than we do)."""
    obj = unpack(payload, MAX_FRAME)
    expect_list(obj, 2, "message")
    if type(obj[0]) is not str or len(obj[0]) > 16:
        raise DecodeError("message type: expected short text")
    cls = MESSAGES.get(obj[0])
    if cls is None:
        return None
    return cls.from_obj(obj[1])


def decode_frame(magic: bytes, data: bytes) -> Message | None:
    """A whole frame (header and body, nothing more) to its message."""
    length = decode_frame_header(magic, data[:FRAME_HEADER.size])
    if len(data) != FRAME_HEADER.size + length:
        raise DecodeError("frame length mismatch", "bad-frame")
    return decode_payload(data[FRAME_HEADER.size:])
