"""The request target of the signed HTTP API: path and query split as urllib would, the
answer format asked for, and whether a record type asked for is one. Plain targets, every
request's, skip urllib (it was a good part of a request's Python time)."""
from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

import dns.rdatatype


def split_target(target: str) -> tuple[str, dict]:
    """(path, query) as unquote(urlsplit(target).path, errors="surrogateescape") and
    dict(parse_qsl(urlsplit(target).query)) give them, without urllib for the plain targets
    every request has: no fragment, no authority ("//host..."), no characters urlsplit drops,
    no escapes in the query. Anything else goes through urllib."""
    if "#" in target or "\t" in target or "\n" in target or "\r" in target or target.startswith("//") \
            or not target.startswith("/"):
        parts = urlsplit(target)
        return unquote(parts.path, errors="surrogateescape"), dict(parse_qsl(parts.query))
    path, _, query = target.partition("?")
    path = unquote(path, errors="surrogateescape") if "%" in path else path
    if not query:
        return path, {}
    if "%" in query or "+" in query:
        return path, dict(parse_qsl(query))
    out = {}
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        if value:                       # parse_qsl drops blank values and names without "="
            out[name] = value
    return path, out


def response_format(target: str, headers: dict) -> str:
    """`?format=msgpack|json` wins over the Accept header (checked on the raw target so a
    cache hit needs no URL parsing)."""
    if "format=msgpack" in target:
        return "msgpack"
    if "format=json" in target:
        return "json"
    return "msgpack" if "msgpack" in headers.get("accept", "") else "json"


_KNOWN_TYPES: dict[str, bool] = {}
MAX_KNOWN_TYPES = 1024      # remembered verdicts (a stranger picks the types: cleared when full)


def known_type(qtype: str) -> bool:
    """dns.rdatatype.from_text's verdict, remembered: it cost a signed answer more than the
    dict lookup that now answers the types asked every time."""
    known = _KNOWN_TYPES.get(qtype)
    if known is None:
        try:
            dns.rdatatype.from_text(qtype)
            known = True
        except dns.rdatatype.UnknownRdatatype:
            known = False
        if len(_KNOWN_TYPES) >= MAX_KNOWN_TYPES:
            _KNOWN_TYPES.clear()
        _KNOWN_TYPES[qtype] = known
    return known
