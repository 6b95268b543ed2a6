"""Canonical msgpack encoding shared by transactions, blocks, p2p and signed envelopes.

Bytes are always msgpack `bin`, never `str`; decoding refuses trailing bytes and oversized
input. Ids are hashed over `pack(decoded)`, never over the received bytes, so a peer that
sends a non-canonical encoding (e.g. a wide integer) cannot change an id.
"""
from __future__ import annotations

import msgpack

from core.errors import DecodeError

_packer = msgpack.Packer(use_bin_type=True, autoreset=True)


def pack(obj) -> bytes:
    return _packer.pack(obj)


def pack_array_header(n: int) -> bytes:
    """What precedes an array's n items: an array is encoded as this and its items'
    encodings one after another (Block.to_bytes joins its txs' cached encodings)."""
    return _packer.pack_array_header(n)


def unpack(data: bytes, max_size: int) -> object:
    if len(data) > max_size:
        raise DecodeError(f"{len(data)} bytes exceeds limit {max_size}", "oversize")
    try:
        # msgpack str decodes to Python str, which the shape checks below refuse wherever bin
        # is required: bin/str confusion is an error, never silently converted.
        return msgpack.unpackb(
            data, raw=False, use_list=True, strict_map_key=True,
            max_bin_len=max_size, max_str_len=max_size, max_array_len=max_size,
            max_map_len=max_size, max_ext_len=0,
        )
    except msgpack.ExtraData:
        raise DecodeError("trailing bytes") from None
    except (ValueError, msgpack.UnpackException, TypeError, OverflowError) as e:
        raise DecodeError(f"msgpack: {e}") from None


def expect_list(obj, length: int | None = None, what: str = "array") -> list:
    if type(obj) is not list or (length is not None and len(obj) != length):
        raise DecodeError(f"{what}: expected array" + (f" of {length}" if length is not None else ""))
    return obj


def expect_bytes(obj, length: int | None = None, what: str = "bytes", max_len: int | None = None) -> bytes:
    if type(obj) is not bytes:
        raise DecodeError(f"{what}: expected bin")
    if length is not None and len(obj) != length:
        raise DecodeError(f"{what}: expected {length} bytes, got {len(obj)}")
    if max_len is not None and len(obj) > max_len:
        raise DecodeError(f"{what}: longer than {max_len}")
    return obj


def expect_uint(obj, bits: int, what: str = "integer") -> int:
    # bool is an int subclass in Python; msgpack true/false must not pass as 1/0.
    if type(obj) is not int or obj < 0 or obj >> bits:
        raise DecodeError(f"{what}: expected u{bits}")
    return obj
