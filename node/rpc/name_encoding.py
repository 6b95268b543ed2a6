"""How names and values cross the RPC boundary, as Namecoin Core's src/names/encoding.cpp does.

Consensus lets a name or value hold any bytes, so an RPC encoding may be unable to show one:
- ascii: every byte in [0x20, 0x80) (0x7F included, as in Namecoin);
- utf8: valid UTF-8, control characters allowed;
- hex: lower-case hex out, any even-length hex in ("" is the empty string).

On output a record that the chosen encoding cannot show is never an error and never lossy:
the field is replaced by `name_error` / `value_error` ("invalid data for ascii") and
`name_encoding` / `value_encoding` still say which encoding was asked for, so one odd name
on chain cannot fail a whole listing (ncdns's zone dumper pages through name_scan). On input
a string the encoding cannot hold is RPC_NAME_INVALID_ENCODING (-1000).

Defaults are Namecoin's: ascii for names and values, changed per node with the
name_encoding / value_encoding settings (-nameencoding / -valueencoding in Namecoin) and per
call with the nameEncoding / valueEncoding options.
"""
from __future__ import annotations

import re

from node.rpc.registry import NAME_INVALID_ENCODING, TYPE_ERROR, RPCError

ENCODINGS = ("ascii", "utf8", "hex")
DEFAULT_NAME_ENCODING = "ascii"
DEFAULT_VALUE_ENCODING = "ascii"
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


def check_setting(what: str, enc) -> str:
    """A node setting is checked at start-up: a typo there must not silently mean ascii."""
    if enc not in ENCODINGS:
        raise ValueError(f"{what}: unknown encoding {enc!r} (use {', '.join(ENCODINGS)})")
    return enc


def encode(data: bytes, enc: str) -> str | None:
    """`data` as text in `enc`, or None when `enc` cannot show it."""
    if enc == "hex":
        return data.hex()
    if enc == "ascii":
        return data.decode("ascii") if all(0x20 <= c < 0x80 for c in data) else None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode(text, enc: str) -> bytes:
    """RPC input text -> bytes; -1000 when the text is not valid in `enc`."""
    if not isinstance(text, str):
        raise RPCError(TYPE_ERROR, f"JSON value of type {json_type(text)} is not of expected type string")
    if enc == "hex":
        ok = _HEX.fullmatch(text) is not None
    elif enc == "ascii":
        ok = all(0x20 <= ord(c) < 0x80 for c in text)
    else:
        # JSON text is Unicode already; lone surrogates are the one thing UTF-8 cannot carry.
        ok = not any(0xD800 <= ord(c) < 0xE000 for c in text)
    if not ok:
        raise RPCError(NAME_INVALID_ENCODING, f"Name/value is invalid for encoding {enc}")
    return bytes.fromhex(text) if enc == "hex" else text.encode("utf-8")


def put(obj: dict, key: str, data: bytes, enc: str) -> None:
    """obj[key] = data in enc, or obj[key + "_error"] when enc cannot show it; then
    obj[key + "_encoding"] either way (Namecoin's AddEncodedNameToUniv)."""
    text = encode(data, enc)
    if text is None:
        obj[key + "_error"] = f"invalid data for {enc}"
    else:
        obj[key] = text
    obj[key + "_encoding"] = enc


def from_options(options: dict, field: str, default: str) -> str:
    """The encoding an options object asks for. A non-string is RPC_TYPE_ERROR; an unknown
    name falls back to the node's default, as Namecoin does (it only logs it)."""
    if field not in options or options[field] is None:
        return default
    value = options[field]
    if not isinstance(value, str):
        raise RPCError(TYPE_ERROR, f"JSON value of type {json_type(value)} for field {field} is not of "
                                   "expected type string")
    return value if value in ENCODINGS else default


def for_message(data: bytes) -> str:
    """A name inside an error message: 'quoted' when ascii can show it, else 0x-hex."""
    text = encode(data, "ascii")
    return f"'{text}'" if text is not None else "0x" + data.hex()


def json_type(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"
