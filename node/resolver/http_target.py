"""The request target of the signed HTTP API: path and query split as urllib would, and the
answer format asked for. Plain targets, every request's, skip urllib (it was a good part of a
request's Python time)."""
from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit


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
