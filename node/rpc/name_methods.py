"""Name RPCs, Namecoin Core-compatible where they overlap: name_show, name_history, name_scan,
name_pending, name_checkdb, plus getnameproof for light clients."""
from __future__ import annotations

import re2

from core.crypto import encode_address
from node.ops.maintenance import checkdb
from core.names.rules import MAX_NAME, NameRecord, expires_in, is_expired, name_output
from core.primitives import NAME_FIRSTUPDATE, NAME_UPDATE

from node.rpc import budget, name_encoding
from node.rpc.registry import (CLIENT_IN_INITIAL_DOWNLOAD, INVALID_PARAMETER, METHOD_NOT_FOUND, MISC_ERROR,
                               TYPE_ERROR, WALLET_ERROR, RPCError, rpc)
from node.rpc.methods import entry_for, syncing
from node.rpc.name_encoding import json_type


def _options(options) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise RPCError(TYPE_ERROR, f"Expected type object for options, got {json_type(options)}")
    return options


def _encodings(node, opts: dict) -> tuple[str, str]:
    """(name, value) encodings of one call: the options', else the node's settings."""
    return (name_encoding.from_options(opts, "nameEncoding", node.name_encoding),
            name_encoding.from_options(opts, "valueEncoding", node.value_encoding))


def _option(opts: dict, key: str, kind: type, default):
    """An option of a JSON type (Namecoin's RPCTypeCheckObj): null or absent is the default."""
    v = opts.get(key)
    if v is None:
        return default
    ok = isinstance(v, bool) if kind is bool else (type(v) is int if kind is int else isinstance(v, kind))
    if not ok:
        want = {bool: "bool", int: "number", str: "string"}[kind]
        raise RPCError(TYPE_ERROR, f"JSON value of type {json_type(v)} for field {key} is not of expected type {want}")
    return v


def record_view(node, rec: NameRecord, encs: tuple[str, str]) -> dict:
    """A name result as Namecoin's getNameInfo shapes it; a name or value the encoding cannot
    show becomes name_error / value_error, so the call still succeeds."""
    params = node.params
    tip = node.chain.height
    v: dict = {}
    name_encoding.put(v, "name", rec.name, encs[0])
    name_encoding.put(v, "value", rec.value, encs[1])
    v.update(txid=rec.txid.hex(), vout=rec.vout, address=encode_address(params.address_version, rec.address),
             height=rec.height, expires_in=expires_in(rec, tip, params), expired=is_expired(rec, tip, params))
    return v


def _name_arg(node, name, opts) -> bytes:
    key = name_encoding.decode(name, _encodings(node, opts)[0])
    # No name on chain is longer (consensus), and the index keys carry a one-byte length: a
    # longer argument is the caller's error, not a lookup (Namecoin: "the name is too long").
    if len(key) > MAX_NAME:
        raise RPCError(INVALID_PARAMETER, "the name is too long")
    return key


def _lookup_name(node, name, opts) -> bytes:
    """The name a name_show / name_history argument means, with Namecoin's byHash option:
    "direct" is the name itself; "sha256d" would need Namecoin's -namehashindex, which dotbit
    does not keep, so it is refused with Namecoin's own message rather than ignored."""
    key = _name_arg(node, name, opts)
    by_hash = _option(opts, "byHash", str, "direct")
    if by_hash == "direct":
        return key
    if by_hash == "sha256d":
        raise RPCError(MISC_ERROR, "-namehashindex is not enabled (dotbit keeps no name-hash index)")
    raise RPCError(INVALID_PARAMETER, f"Invalid value for byHash: {by_hash}")


def _not_syncing(node) -> None:
    # A node still downloading blocks would serve stale names as current (Namecoin: -10).
    if syncing(node):
        raise RPCError(CLIENT_IN_INITIAL_DOWNLOAD, "dotbit is downloading blocks...")


@rpc()
def name_show(node, name: str, options: dict | None = None) -> dict:
    """The current state of a name. options: allowExpired (default: the allow_expired setting,
    off), nameEncoding, valueEncoding (ascii|utf8|hex; default: the node's settings, ascii),
    byHash ("direct"; "sha256d" is refused: no name-hash index)."""
    _not_syncing(node)
    opts = _options(options)
    allow_expired = _option(opts, "allowExpired", bool, node.allow_expired)
    key = _lookup_name(node, name, opts)
    rec = node.chain.names.get(key)
    if rec is None:
        raise RPCError(WALLET_ERROR, f"name never existed: {name_encoding.for_message(key)}")
    view = record_view(node, rec, _encodings(node, opts))
    if view["expired"] and not allow_expired:
        raise RPCError(WALLET_ERROR, f"name expired: {name_encoding.for_message(key)}")
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
    """Every state the name has had, oldest first (expired ones included). options:
    nameEncoding, valueEncoding, byHash."""
    _not_syncing(node)
    opts = _options(options)
    key = _lookup_name(node, name, opts)
    encs = _encodings(node, opts)
    out = []
    for r in node.chain.names.history(key):
        budget.check("name_history")
        out.append(record_view(node, r, encs))
    if not out:
        raise RPCError(WALLET_ERROR, f"name not found: {name_encoding.for_message(key)}")
    return out


def _scan_filters(node, opts: dict):
    """(min_conf, max_conf or None, prefix bytes, compiled regexp or None), checked as Namecoin."""
    min_conf = _option(opts, "minConf", int, 1)
    if min_conf < 1:
        raise RPCError(INVALID_PARAMETER, "minConf must be >= 1")
    max_conf = _option(opts, "maxConf", int, None)
    if max_conf is not None and max_conf < 0:
        raise RPCError(INVALID_PARAMETER, "maxConf must not be negative")
    prefix = _name_arg(node, _option(opts, "prefix", str, ""), opts)
    pattern = _option(opts, "regexp", str, None)
    return min_conf, max_conf, prefix, (_regexp(pattern) if pattern is not None else None)


@rpc(offload=True)
def name_scan(node, start: str | None = None, count: int | None = None, options: dict | None = None) -> list:
    """Names from `start` on, in length-first order, expired ones included (expired: true).
    count: default 500, at most 10,000; 0 or less returns []. options: prefix, regexp (RE2
    syntax, matched against the name as UTF-8; names that are not UTF-8 never match),
    minConf (>= 1), maxConf (>= 0), nameEncoding, valueEncoding. A call that runs past 5 s
    stops with an error."""
    _not_syncing(node)
    opts = _options(options)
    count = 500 if count is None else count
    if count > MAX_SCAN_COUNT:
        raise RPCError(INVALID_PARAMETER, f"count must be at most {MAX_SCAN_COUNT}")
    start_b = _name_arg(node, start, opts) if start else b""
    min_conf, max_conf, prefix, regexp = _scan_filters(node, opts)
    encs = _encodings(node, opts)
    out: list = []
    tip = node.chain.height
    for rec in node.chain.names.scan(start_b):
        if len(out) >= count:
            break
        budget.check("name_scan")
        conf = tip - rec.height + 1
        if conf < min_conf or (max_conf is not None and conf > max_conf):
            continue
        if not rec.name.startswith(prefix):
            continue
        if regexp is not None and not _matches(regexp, rec.name):
            continue
        out.append(record_view(node, rec, encs))
    return out


def _matches(regexp, name: bytes) -> bool:
    try:
        return regexp.search(name.decode("utf-8")) is not None
    except UnicodeDecodeError:
        return False


@rpc()
def name_pending(node, name: str | None = None, options: dict | None = None) -> list:
    """Pending name_firstupdate and name_update operations in the mempool (optionally for one
    name), each with op, name, value, txid, vout, address. options: nameEncoding,
    valueEncoding, mineOnly (needs a wallet: ask dotbit-wallet serve)."""
    opts = _options(options)
    want = _name_arg(node, name, opts) if name is not None else None
    if _option(opts, "mineOnly", bool, False):
        # The node holds no keys; dotbit-wallet serve answers mineOnly (docs/wallet-rpc.md).
        raise RPCError(METHOD_NOT_FOUND, "mineOnly requires wallet support, which is disabled")
    encs = _encodings(node, opts)
    out = []
    ver = node.params.address_version
    for entry in node.mempool.entries.values():
        found = name_output(entry.tx)
        if not found or found[1].covenant.type not in (NAME_FIRSTUPDATE, NAME_UPDATE):
            continue
        vout, o = found
        items = o.covenant.items
        if want is not None and items[0] != want:
            continue
        first = o.covenant.type == NAME_FIRSTUPDATE
        v: dict = {}
        name_encoding.put(v, "name", items[0], encs[0])
        name_encoding.put(v, "value", items[2] if first else items[1], encs[1])
        v.update(txid=entry.txid.hex(), vout=vout, address=encode_address(ver, o.address),
                 op="name_firstupdate" if first else "name_update")
        out.append(v)
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
    key = _name_arg(node, name, opts)
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
