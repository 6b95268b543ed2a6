"""The wallet RPC's error codes and argument checks, worded and numbered as bitcoind and
Namecoin Core do (their scripts match on both), with no node code: the wallet imports
only core/."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from wallet.txbuild import COIN

# bitcoind / Namecoin Core codes (src/rpc/protocol.h)
MISC_ERROR = -1
TYPE_ERROR = -3
WALLET_ERROR = -4
INVALID_ADDRESS = -5
INSUFFICIENT_FUNDS = -6
INVALID_PARAMETER = -8
CLIENT_NOT_CONNECTED = -9
UNLOCK_NEEDED = -13
PASSPHRASE_INCORRECT = -14
TRANSACTION_ERROR = -25
VERIFY_REJECTED = -26
NAME_INVALID_ENCODING = -1000      # the node's code for the same refusal (node/rpc/name_methods.py)
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
PARSE_ERROR = -32700

ENCODINGS = ("ascii", "utf8", "hex")
_JSON_TYPES = {str: "string", int: "number", float: "number", bool: "bool", dict: "object",
               list: "array", type(None): "null"}


class RPCError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _type_error(value, what: str, expected: str) -> RPCError:
    got = _JSON_TYPES.get(type(value), type(value).__name__)
    return RPCError(TYPE_ERROR, f"{what} is not of expected type {expected} (got {got})")


def str_arg(value, what: str) -> str:
    if not isinstance(value, str):
        raise _type_error(value, what, "string")
    return value


def int_arg(value, what: str) -> int:
    if type(value) is not int:
        raise _type_error(value, what, "number")
    return value


def bool_arg(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise _type_error(value, what, "bool")
    return value


def options_arg(options) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise _type_error(options, "options", "object")
    return options


def hex_arg(value, what: str, size: int | None = None) -> bytes:
    try:
        b = bytes.fromhex(str_arg(value, what))
    except ValueError:
        raise RPCError(INVALID_PARAMETER, f"{what} must be hexadecimal string (not '{value[:80]}')") from None
    if size is not None and len(b) != size:
        raise RPCError(INVALID_PARAMETER, f"{what} must be of length {2 * size} (not {len(value)})")
    return b


def amount_arg(value) -> int:
    """Coins (a JSON number, or a string as bitcoind also takes) -> base units."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise _type_error(value, "amount", "number")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise RPCError(TYPE_ERROR, "Invalid amount") from None
    units = d * COIN
    if not d.is_finite() or units != units.to_integral_value():
        raise RPCError(TYPE_ERROR, "Invalid amount")
    if d <= 0:
        raise RPCError(TYPE_ERROR, "Amount out of range")
    return int(units)


def _encoding(opts: dict, key: str) -> str:
    enc = opts.get(key, "utf8")
    if enc not in ENCODINGS:
        raise RPCError(INVALID_PARAMETER, f"invalid {key} {str(enc)[:20]!r}, use one of {', '.join(ENCODINGS)}")
    return enc


def decode_arg(text, opts: dict, key: str, what: str) -> bytes:
    """A name or value argument in its encoding (utf8 by default: any ASCII argument means
    the same as under namecoind's ascii default, and non-ASCII names work without options)."""
    enc = _encoding(opts, key)
    s = str_arg(text, what)
    try:
        if enc == "hex":
            return bytes.fromhex(s)
        if enc == "ascii":
            b = s.encode("ascii")
            if any(c < 0x20 or c == 0x7F for c in b):
                raise ValueError("control character")
            return b
        return s.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        raise RPCError(NAME_INVALID_ENCODING, f"{what} is not valid {enc}") from None


def encode_out(b: bytes, opts: dict, key: str, what: str) -> str:
    enc = _encoding(opts, key)
    try:
        if enc == "hex":
            return b.hex()
        if enc == "ascii":
            s = b.decode("ascii")
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in s):
                raise ValueError
            return s
        return b.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise RPCError(NAME_INVALID_ENCODING, f"{what} cannot be shown as {enc}; use {key} hex") from None
