"""A small blocking JSON-RPC client (stdlib only) for the CLIs and tests: cookie auth,
one line of error text per failure."""
from __future__ import annotations

import base64
import http.client
import itertools
import json
import urllib.parse


class RPCClientError(Exception):
    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code


class RPCClient:
    def __init__(self, url: str, cookie_file: str | None = None, credentials: str | None = None,
                 timeout: float = 60.0):
        self.url = urllib.parse.urlsplit(url)
        self.cookie_file = cookie_file
        self.credentials = credentials
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._conn: http.client.HTTPConnection | None = None

    def _auth(self) -> str:
        creds = self.credentials
        if creds is None:
            try:
                with open(self.cookie_file) as f:
                    creds = f.read().strip()
            except (OSError, TypeError):
                raise RPCClientError(f"cannot read RPC cookie {self.cookie_file!r}: is the node running?") from None
        return "Basic " + base64.b64encode(creds.encode()).decode()

    def call(self, method: str, *params):
        body = json.dumps({"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": list(params)})
        headers = {"Authorization": self._auth(), "Content-Type": "application/json"}
        for attempt in (0, 1):      # one retry on a dropped keep-alive connection
            try:
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(self.url.hostname, self.url.port or 80,
                                                            timeout=self.timeout)
                self._conn.request("POST", self.url.path or "/", body, headers)
                resp = self._conn.getresponse()
                data = resp.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError) as e:
                self.close()
                if attempt:
                    raise RPCClientError(f"cannot reach node at {self.url.geturl()}: {e}") from None
        if resp.status == 401:
            raise RPCClientError("node refused the RPC credentials (stale cookie?)")
        try:
            reply = json.loads(data)
        except ValueError:
            raise RPCClientError(f"bad reply from node (HTTP {resp.status})") from None
        err = reply.get("error")
        if err:
            raise RPCClientError(f"{err.get('message')} (code {err.get('code')})", err.get("code"))
        return reply.get("result")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
