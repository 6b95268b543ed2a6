"""The tunnel's wire format (docs/protocol.md "Tunnel"): datagrams and the frames inside them.

Pure: bytes in, dataclasses out. Every decoder rejects short input, unknown kinds and
leftover bytes with PacketError, the one exception a stranger's datagram may raise here;
the endpoints drop (and count) such datagrams and never answer them.

Datagram kinds (first byte), integers big-endian:
  OPEN   0x01 | tid 8 | pn 8 | key_id 4 | client_pub 32 | time 8 | challenge 16 | solution 8 | sealed
  DATA   0x02 | tid 8 | pn 8 | sealed
  PUZZLE 0x03 | tid 8 | challenge 16
`sealed` is ChaCha20-Poly1305 ciphertext + 16-byte tag of a frame list; the datagram's
header (every byte before `sealed`) is its associated data. An OPEN is at most BASE_DATAGRAM
bytes; DATA may be larger up to MAX_DATAGRAM once path MTU discovery proved it (tunnel/pmtu.py).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

OPEN, DATA, PUZZLE = 1, 2, 3
TID_LEN, PUB_LEN, KEY_ID_LEN, CHALLENGE_LEN, SOLUTION_LEN, TAG_LEN = 8, 32, 4, 16, 8, 16
OPEN_HEADER = 1 + TID_LEN + 8 + KEY_ID_LEN + PUB_LEN + 8 + CHALLENGE_LEN + SOLUTION_LEN   # 85
DATA_HEADER = 1 + TID_LEN + 8                                                          # 17
PUZZLE_SIZE = 1 + TID_LEN + CHALLENGE_LEN                                              # 25
BASE_DATAGRAM = 1400         # below common path MTUs after IP/UDP headers: no fragmentation
MAX_DATAGRAM = 65507         # the largest UDP payload over IPv4: what path MTU probing may reach
MAX_PLAINTEXT = BASE_DATAGRAM - OPEN_HEADER - TAG_LEN    # in an OPEN, and in any datagram at BASE
assert OPEN_HEADER == 85 and DATA_HEADER == 17 and PUZZLE_SIZE == 25

# Frame types inside a sealed payload.
F_PAD, F_STREAM, F_ACK, F_RESET, F_NEXT_TID, F_NEXT_TID_ACK, F_PING, F_CLOSE, F_PROBE, F_PROBE_ACK = range(10)
STREAM_HEAD = 1 + 4 + 8 + 1 + 2       # type | sid | seq | flags | len
FIN = 0x01


class PacketError(Exception):
    """A datagram or frame list that does not parse: dropped, never answered."""


@dataclass(frozen=True, slots=True)
class Open:
    tid: bytes
    pn: int
    key_id: bytes
    client_pub: bytes
    time: int               # the client's clock (unix seconds): bounds how long a replay is remembered
    challenge: bytes
    solution: bytes
    sealed: bytes

    def header(self) -> bytes:
        return (bytes([OPEN]) + self.tid + self.pn.to_bytes(8, "big") + self.key_id + self.client_pub
                + self.time.to_bytes(8, "big") + self.challenge + self.solution)

    def to_bytes(self) -> bytes:
        return self.header() + self.sealed


@dataclass(frozen=True, slots=True)
class Data:
    tid: bytes
    pn: int
    sealed: bytes

    def header(self) -> bytes:
        return bytes([DATA]) + self.tid + self.pn.to_bytes(8, "big")

    def to_bytes(self) -> bytes:
        return self.header() + self.sealed


@dataclass(frozen=True, slots=True)
class Puzzle:
    tid: bytes
    challenge: bytes

    def to_bytes(self) -> bytes:
        return bytes([PUZZLE]) + self.tid + self.challenge


def parse_datagram(data: bytes) -> Open | Data | Puzzle:
    if not data or len(data) > MAX_DATAGRAM:
        raise PacketError("datagram size")
    kind = data[0]
    if kind == OPEN:
        if len(data) < OPEN_HEADER + TAG_LEN:
            raise PacketError("short open")
        if len(data) > BASE_DATAGRAM:        # no path is proven before the open: 0-RTT data stays small
            raise PacketError("open size")
        o = 1 + TID_LEN
        pn = int.from_bytes(data[o:o + 8], "big")
        o += 8
        key_id, o = data[o:o + KEY_ID_LEN], o + KEY_ID_LEN
        pub, o = data[o:o + PUB_LEN], o + PUB_LEN
        when, o = int.from_bytes(data[o:o + 8], "big"), o + 8
        challenge, o = data[o:o + CHALLENGE_LEN], o + CHALLENGE_LEN
        solution, o = data[o:o + SOLUTION_LEN], o + SOLUTION_LEN
        return Open(data[1:1 + TID_LEN], pn, key_id, pub, when, challenge, solution, data[o:])
    if kind == DATA:
        if len(data) < DATA_HEADER + TAG_LEN:
            raise PacketError("short data")
        return Data(data[1:1 + TID_LEN], int.from_bytes(data[9:17], "big"), data[DATA_HEADER:])
    if kind == PUZZLE:
        if len(data) != PUZZLE_SIZE:
            raise PacketError("puzzle size")
        return Puzzle(data[1:1 + TID_LEN], data[1 + TID_LEN:])
    raise PacketError(f"unknown kind {kind}")


# --- frames ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Stream:
    sid: int
    seq: int            # byte offset of data[0] in the stream
    data: bytes
    fin: bool = False


@dataclass(frozen=True, slots=True)
class Ack:
    sid: int
    ack: int            # every byte below this offset arrived
    window: int         # bytes beyond `ack` the receiver will buffer (flow control)


@dataclass(frozen=True, slots=True)
class Reset:
    sid: int


@dataclass(frozen=True, slots=True)
class NextTid:
    tid: bytes
    pub: bytes          # MinimaLT sends a fresh public key so a rekey looks like an open


@dataclass(frozen=True, slots=True)
class NextTidAck:
    tid: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Close:
    pass


@dataclass(frozen=True, slots=True)
class Probe:
    """A path MTU probe: padding follows it up to the size probed (tunnel/pmtu.py)."""


@dataclass(frozen=True, slots=True)
class ProbeAck:
    size: int           # the length of the probe datagram that arrived


def max_plaintext(datagram: int) -> int:
    """The frames a DATA datagram of `datagram` bytes holds (an OPEN's longer header fits
    MAX_PLAINTEXT into BASE_DATAGRAM, so DATA keeps the same margin)."""
    return datagram - OPEN_HEADER - TAG_LEN


def probe_plaintext(datagram: int) -> bytes:
    """The frames of a probe DATA datagram of exactly `datagram` bytes."""
    return bytes([F_PROBE]) + bytes(datagram - DATA_HEADER - TAG_LEN - 1)


def encode_frames(frames) -> bytes:
    return b"".join(encode_frame(f) for f in frames)


def encode_frame(f) -> bytes:
    if isinstance(f, Stream):
        return struct.pack(">BIQBH", F_STREAM, f.sid, f.seq, FIN if f.fin else 0, len(f.data)) + f.data
    if isinstance(f, Ack):
        return struct.pack(">BIQI", F_ACK, f.sid, f.ack, f.window)
    if isinstance(f, Reset):
        return struct.pack(">BI", F_RESET, f.sid)
    if isinstance(f, NextTid):
        return bytes([F_NEXT_TID]) + f.tid + f.pub
    if isinstance(f, NextTidAck):
        return bytes([F_NEXT_TID_ACK]) + f.tid
    if isinstance(f, Ping):
        return bytes([F_PING])
    if isinstance(f, Close):
        return bytes([F_CLOSE])
    if isinstance(f, Probe):
        return bytes([F_PROBE])
    if isinstance(f, ProbeAck):
        return struct.pack(">BI", F_PROBE_ACK, f.size)
    raise TypeError(f"not a frame: {f!r}")


def frame_size(f) -> int:
    return STREAM_HEAD + len(f.data) if isinstance(f, Stream) else len(encode_frame(f))


def decode_frames(data: bytes) -> list:
    out, o, n = [], 0, len(data)
    while o < n:
        t = data[o]
        if t == F_PAD:            # padding: zero bytes to the end
            if any(data[o:]):
                raise PacketError("non-zero padding")
            break
        frame, o = _decode_one(t, data, o + 1, n)
        out.append(frame)
    return out


def _need(o: int, k: int, n: int) -> None:
    if o + k > n:
        raise PacketError("truncated frame")


def _decode_one(t: int, data: bytes, o: int, n: int):
    if t == F_STREAM:
        _need(o, 15, n)
        sid, seq, flags, ln = struct.unpack_from(">IQBH", data, o)
        if flags & ~FIN:
            raise PacketError("unknown stream flags")
        _need(o + 15, ln, n)
        return Stream(sid, seq, bytes(data[o + 15:o + 15 + ln]), bool(flags & FIN)), o + 15 + ln
    if t == F_ACK:
        _need(o, 16, n)
        return Ack(*struct.unpack_from(">IQI", data, o)), o + 16
    if t == F_RESET:
        _need(o, 4, n)
        return Reset(struct.unpack_from(">I", data, o)[0]), o + 4
    if t == F_NEXT_TID:
        _need(o, TID_LEN + PUB_LEN, n)
        return NextTid(bytes(data[o:o + TID_LEN]), bytes(data[o + TID_LEN:o + TID_LEN + PUB_LEN])), \
            o + TID_LEN + PUB_LEN
    if t == F_NEXT_TID_ACK:
        _need(o, TID_LEN, n)
        return NextTidAck(bytes(data[o:o + TID_LEN])), o + TID_LEN
    if t == F_PING:
        return Ping(), o
    if t == F_CLOSE:
        return Close(), o
    if t == F_PROBE:
        return Probe(), o
    if t == F_PROBE_ACK:
        _need(o, 4, n)
        return ProbeAck(struct.unpack_from(">I", data, o)[0]), o + 4
    raise PacketError(f"unknown frame type {t}")
