"""The wallet's only way to the chain: JSON-RPC to a dotbit node, cookie auth (stdlib only).

The wallet deliberately imports no node service code, so this is a small client of its own;
every failure is a NodeError with one line of text, and a refused call keeps the node's code
so callers can tell "name never existed" from "node unreachable".
"""
from __future__ import annotations

import base64
import http.client
import itertools
import json
import urllib.parse

# bitcoind/Namecoin codes the wallet reacts to
WALLET_ERROR = -4            # name_show: "name never existed" / "name expired"
VERIFY_REJECTED = -26
VERIFY_ALREADY_IN_CHAIN = -27


class NodeError(Exception):
    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class NodeClient:
    def __init__(self, url: str, cookie_file: str, timeout: float = 30.0):
        self.url = urllib.parse.urlsplit(url)
        if self.url.scheme != "http" or not self.url.hostname:
            raise NodeError(f"bad RPC URL {url!r} (expected http://HOST:PORT)")
        self.cookie_file = cookie_file
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._conn: http.client.HTTPConnection | None = None
        self._auth: str | None = None

    def _authorization(self) -> str:
        if self._auth is None:
            try:
                with open(self.cookie_file) as f:
                    creds = f.read().strip()
            except OSError:
                raise NodeError(f"cannot reach node: no RPC cookie at {self.cookie_file} "
                                "(is the node running? see --rpc-cookie)") from None
            self._auth = "Basic " + base64.b64encode(creds.encode()).decode()
        return self._auth

    def call(self, method: str, *params):
        body = json.dumps({"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": list(params)})
        headers = {"Authorization": self._authorization(), "Content-Type": "application/json"}
        for attempt in (0, 1):      # one retry: a kept-alive connection may have been dropped
            try:
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(self.url.hostname, self.url.port or 80,
                                                            timeout=self.timeout)
                self._conn.request("POST", self.url.path or "/", body, headers)
                resp = self._conn.getresponse()
                data = resp.read()
                break
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if attempt:
                    raise NodeError(f"cannot reach node at {self.url.geturl()}: "
                                    f"{getattr(e, 'strerror', None) or e}") from None
        if resp.status == 401:
            raise NodeError("node refused the RPC cookie (stale cookie file? see --rpc-cookie)")
        try:
            reply = json.loads(data)
        except ValueError:
            raise NodeError(f"bad reply from node (HTTP {resp.status})") from None
        err = reply.get("error")
        if err:
            raise NodeError(str(err.get("message")).splitlines()[0], err.get("code"))
        return reply.get("result")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
