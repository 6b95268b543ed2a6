"""Name RPCs, Namecoin Core-compatible where they overlap: name_show, name_history, name_scan,
name_pending, name_checkdb, plus getnameproof for light clients."""
from __future__ import annotations

import re2

from core.crypto import encode_address
from node.ops.maintenance import checkdb
from core.names.rules import MAX_NAME, NameRecord, expires_in, is_expired, name_output
from core.primitives import NAME_FIRSTUPDATE, NAME_NEW

from node.rpc import budget
from node.rpc.registry import INVALID_PARAMETER, NAME_INVALID_ENCODING, WALLET_ERROR, RPCError, rpc
from node.rpc.methods import entry_for

ENCODINGS = ("ascii", "utf8", "hex")


def _encoding(options: dict, key: str) -> str:
    enc = options.get(key, "ascii" if key == "nameEncoding" else "utf8")
    if enc not in ENCODINGS:
        raise RPCError(INVALID_PARAMETER, f"invalid {key} {enc!r}, use one of {', '.join(ENCODINGS)}")
    return enc


def decode_text(text, enc: str, what: str) -> bytes:
    if not isinstance(text, str):
        raise RPCError(NAME_INVALID_ENCODING, f"{what} must be a string")
    try:
        if enc == "hex":
            return bytes.fromhex(text)
        if enc == "ascii":
            b = text.encode("ascii")
            if any(c < 0x20 or c == 0x7F for c in b):
                raise ValueError("control character")
            return b
        return text.encode("utf-8")
    except ValueError:
        raise RPCError(NAME_INVALID_ENCODING, f"{what} {text!r} is not valid {enc}") from None


def encode_text(b: bytes, enc: str, what: str) -> str:
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
        raise RPCError(NAME_INVALID_ENCODING, f"{what} cannot be shown as {enc}; use {what}Encoding hex") from None


def _options(options) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise RPCError(INVALID_PARAMETER, "options must be an object")
    return options


def record_view(node, rec: NameRecord, opts: dict) -> dict:
    params = node.params
    ne, ve = _encoding(opts, "nameEncoding"), _encoding(opts, "valueEncoding")
    return {"name": encode_text(rec.name, ne, "name"), "name_encoding": ne,
            "value": encode_text(rec.value, ve, "value"), "value_encoding": ve,
            "txid": rec.txid.hex(), "vout": rec.vout,
            "address": encode_address(params.address_version, rec.address),
            "height": rec.height, "expires_in": expires_in(rec, node.chain.height, params),
            "expired": is_expired(rec, node.chain.height, params)}


def _name_arg(name, opts) -> bytes:
    key = decode_text(name, _encoding(opts, "nameEncoding"), "name")
    # No name on chain is longer (consensus), and the index keys carry a one-byte length: a
    # longer argument is the caller's error, not a lookup (Namecoin: "the name is too long").
    if len(key) > MAX_NAME:
        raise RPCError(INVALID_PARAMETER, "the name is too long")
    return key


@rpc()
def name_show(node, name: str, options: dict | None = None) -> dict:
    """The current state of a name. options: allowExpired (default false), nameEncoding,
    valueEncoding (ascii|utf8|hex)."""
    opts = _options(options)
    rec = node.chain.names.get(_name_arg(name, opts))
    if rec is None:
        raise RPCError(WALLET_ERROR, "name never existed")
    view = record_view(node, rec, opts)
    if view["expired"] and not opts.get("allowExpired", False):
        raise RPCError(WALLET_ERROR, "name expired")
    return view


MAX_SCAN_COUNT = 10_000      # names one name_scan may return (Namecoin's default is 500)
MAX_REGEXP = 1_000           # characters of a name_scan regexp


def _regexp(pattern):
    """A name_scan regexp in RE2 syntax: RE2 matches in time linear in the name, whatever the
    pattern, where Python's backtracking `re` took 4.9 s on `(a+)+b` against one long name and
    twice that per extra character. RE2 has no backreferences or lookaround; those are refused."""
    if not isinstance(pattern, str) or len(pattern) > MAX_REGEXP:
        raise RPCError(INVALID_PARAMETER, f"bad regexp: a string of at most {MAX_REGEXP} characters")
    options = re2.Options()
    options.log_errors = False        # the caller gets the reason; the node's stderr stays quiet
    try:
        return re2.compile(pattern, options)
    except re2.error as e:
        reason = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise RPCError(INVALID_PARAMETER, f"bad regexp (RE2 syntax): {reason}") from None


@rpc(offload=True)
def name_history(node, name: str, options: dict | None = None) -> list:
    """Every state the name has had, oldest first."""
    opts = _options(options)
    key = _name_arg(name, opts)
    out = []
    for r in node.chain.names.history(key):
        budget.check("name_history")
        out.append(record_view(node, r, opts))
    if not out:
        raise RPCError(WALLET_ERROR, "name never existed")
    return out


@rpc(offload=True)
def name_scan(node, start: str = "", count: int = 500, options: dict | None = None) -> list:
    """Names from `start` on, in length-first order. options: prefix, regexp (RE2 syntax),
    minConf, maxConf, nameEncoding, valueEncoding. At most 10,000 names per call; a call that
    runs past 5 s stops with an error."""
    opts = _options(options)
    if not 0 <= count <= MAX_SCAN_COUNT:
        raise RPCError(INVALID_PARAMETER, f"count must be between 0 and {MAX_SCAN_COUNT}")
    start_b = _name_arg(start, opts) if start else b""
    prefix = _name_arg(opts["prefix"], opts) if opts.get("prefix") else b""
    regexp = _regexp(opts["regexp"]) if opts.get("regexp") else None
    min_conf, max_conf = opts.get("minConf", 1), opts.get("maxConf")
    out = []
    tip = node.chain.height
    for rec in node.chain.names.scan(start_b):
        if len(out) >= count:
            break
        budget.check("name_scan")
        conf = tip - rec.height + 1
        if conf < min_conf or (max_conf is not None and conf > max_conf):
            continue
        if prefix and not rec.name.startswith(prefix):
            continue
        if is_expired(rec, tip + 1, node.params):
            continue
        if regexp is not None and not regexp.search(rec.name.decode("utf-8", "replace")):
            continue
        out.append(record_view(node, rec, opts))
    return out


@rpc()
def name_pending(node, name: str | None = None, options: dict | None = None) -> list:
    """Name operations waiting in the mempool (optionally for one name)."""
    opts = _options(options)
    want = _name_arg(name, opts) if name is not None else None
    out = []
    ver = node.params.address_version
    for entry in node.mempool.entries.values():
        found = name_output(entry.tx)
        if not found:
            continue
        vout, o = found
        cov = o.covenant
        if cov.type == NAME_NEW:
            if want is None:
                out.append({"op": "name_new", "txid": entry.txid.hex(), "vout": vout,
                            "address": encode_address(ver, o.address), "commitment": cov.items[0].hex()})
            continue
        if want is not None and cov.items[0] != want:
            continue
        value = cov.items[2] if cov.type == NAME_FIRSTUPDATE else cov.items[1]
        out.append({"op": "name_firstupdate" if cov.type == NAME_FIRSTUPDATE else "name_update",
                    "name": encode_text(cov.items[0], _encoding(opts, "nameEncoding"), "name"),
                    "value": encode_text(value, _encoding(opts, "valueEncoding"), "value"),
                    "txid": entry.txid.hex(), "vout": vout, "address": encode_address(ver, o.address)})
    return out


@rpc()
def name_checkdb(node) -> bool:
    """Checks the name database (and every projection) against a replay from genesis."""
    return not checkdb(node.chain)


@rpc()
def getnameproof(node, name: str, blockhash: str | None = None, options: dict | None = None) -> dict:
    """A name-tree proof of a name's record (or of its absence) against the name_root of a
    main-chain block (default: the tip), with that block's 112-byte header."""
    opts = _options(options)
    key = _name_arg(name, opts)
    chain = node.chain
    entry = entry_for(node, blockhash) if blockhash else chain.tip
    if not chain.on_main_chain(entry):
        raise RPCError(INVALID_PARAMETER, "block is not on the main chain")
    root = entry.header.name_root
    proof = chain.names.prove(root, key)
    rec = None
    if entry is chain.tip:
        rec = chain.names.get(key)
    else:
        hist = [r for r in chain.names.history(key) if r.height <= entry.height]
        rec = hist[-1] if hist else None
    return {"name": name, "blockhash": entry.hash.hex(), "height": entry.height,
            "header": entry.header.to_bytes().hex(), "name_root": root.hex(),
            "record": rec.to_bytes().hex() if rec else None,
            "proof": proof.to_bytes().hex()}
