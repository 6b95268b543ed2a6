"""P2P message codecs and framing: every message round-trips; truncated, oversized, wrongly
shaped or foreign-magic input is rejected with DecodeError (never another exception)."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.encoding import pack
from core.errors import DecodeError
from core.params import REGTEST
from p2p import messages as M

MAGIC = REGTEST.magic
h32 = st.binary(min_size=32, max_size=32)
u64 = st.integers(0, 2**64 - 1)
inv_items = st.lists(st.tuples(st.sampled_from(M.INV_TYPES), h32), max_size=20).map(tuple)

MESSAGE = st.one_of(
    st.builds(M.Version, st.integers(0, 2**32 - 1), u64, st.integers(0, 2**32 - 1), u64, u64,
              st.integers(0, 65535), st.binary(max_size=M.MAX_USER_AGENT)),
    st.just(M.Verack()), st.just(M.GetAddr()),
    st.builds(M.Ping, u64), st.builds(M.Pong, u64),
    st.builds(M.Addr, st.lists(st.tuples(st.from_regex(r"[a-z0-9.:]{1,40}", fullmatch=True),
                                         st.integers(0, 65535), u64), max_size=10).map(tuple)),
    st.builds(M.Inv, inv_items), st.builds(M.GetData, inv_items), st.builds(M.NotFound, inv_items),
    st.builds(M.GetHeaders, st.lists(h32, max_size=M.MAX_LOCATOR).map(tuple), h32),
    st.builds(M.Headers, st.lists(st.binary(min_size=112, max_size=112), max_size=5).map(tuple)),
    st.builds(M.BlockMsg, st.binary(max_size=3000)), st.builds(M.TxMsg, st.binary(max_size=3000)),
    st.builds(M.EphKey, st.binary(max_size=M.MAX_EPHKEY)),
)


@settings(max_examples=300, deadline=None)
@given(MESSAGE)
def test_round_trip(msg):
    frame = M.encode_frame(MAGIC, msg)
    assert M.decode_frame(MAGIC, frame) == msg
    # every strict prefix is rejected, never mis-decoded
    for cut in {0, 3, 7, 8, len(frame) - 1}:
        if 0 <= cut < len(frame):
            with pytest.raises(DecodeError):
                M.decode_frame(MAGIC, frame[:cut])


def test_every_message_type_is_covered():
    assert set(M.MESSAGES) == {"version", "verack", "ping", "pong", "getaddr", "addr", "inv", "getdata",
                               "notfound", "getheaders", "headers", "block", "tx", "ephkey"}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_payload_never_crashes(data):
    try:
        M.decode_payload(data)
    except DecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(MESSAGE, st.binary(min_size=1, max_size=4))
def test_trailing_bytes_rejected(msg, extra):
    frame = M.encode_frame(MAGIC, msg)
    body = frame[8:] + extra
    with pytest.raises(DecodeError):
        M.decode_frame(MAGIC, frame[:4] + struct.pack("<I", len(body)) + body)


def test_frame_header_checks():
    with pytest.raises(DecodeError) as e:
        M.decode_frame_header(MAGIC, b"\0\0\0\0" + struct.pack("<I", 10))
    assert e.value.reason == "bad-magic"
    with pytest.raises(DecodeError) as e:
        M.decode_frame_header(MAGIC, MAGIC + struct.pack("<I", M.MAX_FRAME + 1))
    assert e.value.reason == "oversize-frame"
    assert M.decode_frame_header(MAGIC, MAGIC + struct.pack("<I", M.MAX_FRAME)) == M.MAX_FRAME
    with pytest.raises(ValueError):
        M.encode_frame(MAGIC, M.EphKey(b"x" * (M.MAX_FRAME + 1)))


@pytest.mark.parametrize("obj", [
    ["version", [1, 1, 1, 1, 1, 1]],                        # wrong arity
    ["version", [1, 1, 1, 1, 1, 70000, b""]],                # port out of range
    ["version", [1, 1, 1, 1, 1, 1, "text"]],                 # str where bin is required
    ["ping", [True]],                                       # bool is not an integer
    ["inv", [[9, bytes(32)]]],                              # unknown inventory type
    ["inv", [[1, bytes(31)]]],                              # short hash
    ["inv", [[1, bytes(32)]] * (M.MAX_INV + 1)],            # too many items
    ["headers", [bytes(111)]],
    ["headers", [bytes(112)] * (M.MAX_HEADERS + 1)],
    ["getheaders", [[bytes(32)] * (M.MAX_LOCATOR + 1), bytes(32)]],
    ["addr", [[b"\xff", 1, 1]]],
    ["ephkey", [b"x" * (M.MAX_EPHKEY + 1)]],
    ["block", [b"x" * (M.MAX_FRAME - 100)]],
    [b"ping", [1]],                                         # type must be text
    ["ping"],
])
def test_bad_shapes_rejected(obj):
    with pytest.raises(DecodeError):
        M.decode_payload(pack(obj))


def test_unknown_type_is_ignored_not_fatal():
    assert M.decode_payload(pack(["sendcmpct", [1]])) is None
