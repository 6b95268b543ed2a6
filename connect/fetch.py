"""One HTTP/1.1 GET over a checked TLS socket, the response bounded."""
from __future__ import annotations

import http.client

from connect.target import CheckFailed, Target

USER_AGENT = "dotbit-connect"


def request_bytes(target: Target) -> bytes:
    return (f"GET {target.path} HTTP/1.1\r\nHost: {target.authority}\r\nUser-Agent: {USER_AGENT}\r\n"
            f"Accept: */*\r\nConnection: close\r\n\r\n").encode("ascii")


def fetch(sock, target: Target, max_bytes: int) -> tuple[str, bytes]:
    """(status line and headers as text, body); CheckFailed("http", ...) for a response we
    cannot read or one over max_bytes (a server cannot make us hold more)."""
    try:
        sock.sendall(request_bytes(target))
        resp = http.client.HTTPResponse(sock, method="GET")
        resp.begin()
        body = resp.read(max_bytes + 1)
    except (http.client.HTTPException, OSError) as e:
        raise CheckFailed("http", f"no readable response from {target.authority} ({type(e).__name__} {e})".strip()) \
            from None
    finally:
        sock.close()
    if len(body) > max_bytes:
        raise CheckFailed("http", f"the response body is over --max-bytes ({max_bytes})")
    version = {10: "HTTP/1.0", 11: "HTTP/1.1"}.get(resp.version, "HTTP/?")
    head = f"{version} {resp.status} {resp.reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in resp.getheaders())
    return head + "\r\n", body
