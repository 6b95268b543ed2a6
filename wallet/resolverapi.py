"""The wallet's one way to talk to a resolver's signed HTTP API (CA requests, ephemeral keys)."""
from __future__ import annotations

import http.client
import json
import urllib.parse

from wallet.errors import WalletError


def resolver_call(url: str, method: str, path: str, body: bytes | None = None, timeout: float = 30) -> tuple[int, dict]:
    """(status, the envelope's body) from the resolver's JSON form. The wallet reads the
    body without checking the resolver's signature: what it acts on is checked otherwise (a
    served ephemeral key against the owner the wallet's own node reports; an issued
    certificate is the requester's own business)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http" or not u.hostname:
        raise WalletError(f"bad resolver URL {url!r} (expected http://HOST:PORT)")
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, u.path.rstrip("/") + path, body, headers)
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException) as e:
        raise WalletError(f"cannot reach the resolver at {url}: {getattr(e, 'strerror', None) or e}") from None
    finally:
        conn.close()
    try:
        view = json.loads(data)["view"]
        if not isinstance(view, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise WalletError(f"the resolver at {url} gave no envelope (HTTP {resp.status}; "
                          "is it a dotbit resolver's HTTP API?)") from None
    return resp.status, view
