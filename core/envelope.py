"""Resolver-signed envelopes (DESIGN §5) and their verifier.

Light clients import this module alone: it depends only on msgpack, PyNaCl and the standard
library (and on orjson where it is installed, as the node installs it, only to write a sealed
answer's JSON view faster: light clients never seal). The signature is Ed25519 over TAG | body,
where body is the msgpack map the resolver produced (question, answer, tip, served,
valid_until, proofs); the verifier checks those exact bytes, so re-encoding can never change
what was signed.

Wire forms:
  msgpack: [1, body_bytes, sig64]
  JSON:    {"body": base64(body_bytes), "sig": base64(sig64), "v": 1, "view": <body as JSON>}
           written compactly with sorted keys; "view" is for people and is checked to be
           exactly the body, so no byte of the envelope can change without failing.
"""
from __future__ import annotations

import base64
import binascii
import json
import threading

import msgpack
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

try:
    import orjson
except ImportError:             # a light client's install: seal() then writes views with json alone
    orjson = None

TAG = b"dotbit/resolver-envelope/v1\x00"
VERSION = 1
MAX_ENVELOPE = 4 * 1024 * 1024


class EnvelopeError(Exception):
    pass


_packers = threading.local()


def encode_body(body: dict) -> bytes:
    """msgpack.packb(body, use_bin_type=True), by a Packer kept per thread: packb makes a Packer
    (and its buffer) per call, which cost a signed answer several times the packing itself."""
    packer = getattr(_packers, "packer", None)
    if packer is None:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(body)


def seal(body: dict, sign, fmt: str = "json", float_free: bool = False) -> bytes:
    """`sign(message) -> sig64` is the resolver key's signing function. `float_free`: the caller
    vouches that the body holds no float (the HTTP API's bodies never do), so its JSON view may
    be written by orjson, which writes some floats unlike json (2.6e-05 as 0.000026...); the
    bytes are json's either way."""
    raw = encode_body(body)
    sig = sign(TAG + raw)
    if fmt == "msgpack":
        return msgpack.packb([VERSION, raw, sig], use_bin_type=True)
    # The bytes of _json_text({"body": b64(raw), "sig": b64(sig), "v": VERSION, "view": to_jsonable(body)}),
    # written without running the base64 (which JSON never escapes) through the encoder: the keys
    # are in sorted order already. Every signed JSON answer is built here.
    b64 = binascii.b2a_base64                   # base64.b64encode's own call, without its wrapper
    return b"".join((b'{"body":"', b64(raw, newline=False), b'","sig":"', b64(sig, newline=False),
                     b'","v":%d,"view":' % VERSION, _view_text(body, raw, float_free), b"}"))


def _view_text(body: dict, raw: bytes, float_free: bool = False) -> bytes:
    """_json_text(to_jsonable(body)), letting the JSON encoder turn bytes into hex as it meets
    them instead of copying the body first. The two agree when every map key is text (to_jsonable
    writes str(key); the encoder writes true/null for True/None and sorts numbers as numbers) and
    no key is a BASE64_FIELDS one (those bytes are base64): `raw`, the body in msgpack, shows both
    (a fixstr key of that name; unpacking with strict_map_key refuses other keys than str and
    bytes, and a bytes key makes the encoder raise). Otherwise, or on any error, the copy is made.
    With `float_free`, orjson writes it first (a fifth of json's time: most of a view is hex to
    escape), kept only where its bytes are json's: it refuses keys that are not text itself, and
    writes non-ASCII text and DEL as they are where json escapes them (then json writes it)."""
    if b"\xa6id_key" not in raw and b"\xa7eph_key" not in raw:
        if float_free and orjson is not None:
            try:
                out = orjson.dumps(body, default=_hex, option=orjson.OPT_SORT_KEYS)
            except TypeError:       # orjson.JSONEncodeError: a key not text, nesting past its limit
                out = b""
            if out and out.isascii() and b"\x7f" not in out:
                return out
        try:
            msgpack.unpackb(raw, raw=True, strict_map_key=True)     # texts left undecoded: only keys matter
            return _FAST_VIEW.encode(body).encode()
        except (ValueError, TypeError):
            pass
    return _json_text(to_jsonable(body))


def _hex(o) -> str:
    if isinstance(o, bytes):
        return o.hex()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def open_envelope(data: bytes, public_key: bytes, now: float | None = None) -> dict:
    """The body of an envelope signed by `public_key` (JSON or msgpack form, told apart by
    the first byte). Raises EnvelopeError if anything is off. With `now`, an envelope past
    its valid_until is refused too."""
    if not isinstance(data, (bytes, bytearray)) or not data or len(data) > MAX_ENVELOPE:
        raise EnvelopeError("empty or oversized envelope")
    data = bytes(data)
    if data[:1] == b"{":
        raw, sig, view = _parse_json(data)
    else:
        try:
            obj = msgpack.unpackb(data, raw=False)
        except Exception as e:
            raise EnvelopeError(f"undecodable envelope: {e}") from None
        if (not isinstance(obj, list) or len(obj) != 3 or obj[0] != VERSION or type(obj[1]) is not bytes
                or type(obj[2]) is not bytes):
            raise EnvelopeError("envelope: wrong shape or version")
        if msgpack.packb(obj, use_bin_type=True) != data:
            raise EnvelopeError("envelope: non-canonical framing")
        _, raw, sig, view = *obj, None
    try:
        VerifyKey(public_key).verify(TAG + raw, sig)
    except (BadSignatureError, ValueError, TypeError):
        raise EnvelopeError("bad signature") from None
    try:
        body = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception as e:
        raise EnvelopeError(f"undecodable body: {e}") from None
    if not isinstance(body, dict) or body.get("v") != VERSION:
        raise EnvelopeError("body: wrong shape or version")
    try:
        if view is not None and to_jsonable(body) != view:
            raise EnvelopeError("view does not match the signed body")
    except RecursionError:           # msgpack nests deeper than to_jsonable can walk
        raise EnvelopeError("body nested too deeply") from None
    if now is not None and not (isinstance(body.get("valid_until"), int) and now <= body["valid_until"]):
        raise EnvelopeError("envelope has expired")
    return body


def _parse_json(data: bytes):
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EnvelopeError("undecodable JSON envelope") from None
    if not isinstance(obj, dict) or set(obj) != {"body", "sig", "v", "view"} or obj["v"] != VERSION:
        raise EnvelopeError("JSON envelope: wrong shape or version")
    if _json_text(obj) != data:
        raise EnvelopeError("JSON envelope: not in canonical form")
    return _unb64(obj["body"]), _unb64(obj["sig"]), obj["view"]


# Fields shown in base64, as MinimaLT keys are everywhere else people see them (d/ values, TXT
# records, the CLIs); a hex key here could not be compared with those by eye.
BASE64_FIELDS = frozenset({"id_key", "eph_key"})


def to_jsonable(o, base64_bytes: bool = False):
    """bytes become lower-case hex strings (base64 under a BASE64_FIELDS key); everything
    else maps one to one. (Exact-type tests first: every signed JSON answer walks its body
    here, and the verifier walks it again.)"""
    t = type(o)
    if t is str or t is int or o is None:
        return o
    if t is bytes or isinstance(o, bytes):
        return _b64(o) if base64_bytes else o.hex()
    if t is dict or isinstance(o, dict):
        return {str(k): to_jsonable(v, k in BASE64_FIELDS) for k, v in o.items()}
    if t is list or t is tuple or isinstance(o, (list, tuple)):
        return [to_jsonable(v) for v in o]
    return o


def _json_text(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


# json.dumps' settings of _json_text, bytes as hex (_view_text). No cycle check: the body was
# packed by msgpack first, which refuses a cycle.
_FAST_VIEW = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_hex,
                              check_circular=False)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s) -> bytes:
    if not isinstance(s, str):
        raise EnvelopeError("expected base64 text")
    try:
        b = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("bad base64") from None
    if _b64(b) != s:
        raise EnvelopeError("non-canonical base64")
    return b
