"""The one JSON-RPC client to a dotbit node (stdlib only): cookie file or explicit credentials,
a timeout, one retry on a dropped keep-alive connection.

It lives in the wallet because the wallet may import only core/ and itself, while the node's
own commands (`dotbit-node call`, `status`, `zone export`), the tests and the bench may import
the wallet. Every failure is a NodeError with one line of text; a refused call keeps the node's
code, so callers can tell "name never existed" from "node unreachable". The wallet and the
node's commands word the same failures differently for their users (the wallet points at its
--rpc-cookie flag, an operator sees the node's error code): NodeClient speaks the wallet's
words, OperatorClient the node's.
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

# Name reads and where their options object sits. The node's default encodings are
# Namecoin's (ascii), set by its operator; the wallet takes names and values as Unicode text,
# so it asks for utf8 itself, whatever the node's settings (an explicit option still wins).
NAME_READS = {"name_show": 1, "name_history": 1, "name_pending": 1, "name_scan": 2}


class NodeError(Exception):
    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code


class NodeClient:
    # (name, value) encodings added to name reads that do not choose one; None: the node's.
    name_encodings: tuple[str, str] | None = ("utf8", "utf8")

    def __init__(self, url: str, cookie_file: str | None = None, credentials: str | None = None,
                 timeout: float = 60.0):
        self.url = urllib.parse.urlsplit(url)
        if self.url.scheme != "http" or not self.url.hostname:
            raise NodeError(f"bad RPC URL {url!r} (expected http://HOST:PORT)")
        self.cookie_file = cookie_file
        self.credentials = credentials
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._conn: http.client.HTTPConnection | None = None

    def _authorization(self) -> str:
        # The cookie is read on every call: a restarted node writes a new one.
        creds = self.credentials
        if creds is None:
            try:
                with open(self.cookie_file) as f:
                    creds = f.read().strip()
            except (OSError, TypeError):        # TypeError: no cookie file given at all
                raise NodeError(self.no_cookie_text()) from None
        return "Basic " + base64.b64encode(creds.encode()).decode()

    def _with_encodings(self, method: str, params: list) -> list:
        at = NAME_READS.get(method)
        if at is None or self.name_encodings is None:
            return params
        # Missing leading arguments become null, which the node reads as their defaults.
        params = params + [None] * (at + 1 - len(params))
        if params[at] is None or isinstance(params[at], dict):
            params[at] = self._options(params[at])
        return params

    def _options(self, options: dict | None) -> dict:
        out = {"nameEncoding": self.name_encodings[0], "valueEncoding": self.name_encodings[1]}
        out.update(options or {})
        return out

    def call(self, method: str, *params):
        return self.call_params(method, self._with_encodings(method, list(params)))

    def call_params(self, method: str, params: list | dict):
        """A call with its params as given: a list, or an object of named arguments."""
        body = json.dumps({"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": params})
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
                    raise NodeError(self.unreachable_text(e)) from None
        if resp.status == 401:
            raise NodeError(self.refused_text())
        try:
            reply = json.loads(data)
        except ValueError:
            raise NodeError(f"bad reply from node (HTTP {resp.status})") from None
        err = reply.get("error")
        if err:
            raise NodeError(self.error_text(err.get("message"), err.get("code")), err.get("code"))
        return reply.get("result")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # The wallet's words for its user.
    def no_cookie_text(self) -> str:
        return (f"cannot reach node: no RPC cookie at {self.cookie_file} "
                "(is the node running? see --rpc-cookie)")

    def unreachable_text(self, e: Exception) -> str:
        return f"cannot reach node at {self.url.geturl()}: {getattr(e, 'strerror', None) or e}"

    def refused_text(self) -> str:
        return "node refused the RPC cookie (stale cookie file? see --rpc-cookie)"

    def error_text(self, message, code) -> str:
        return str(message).splitlines()[0]


class OperatorClient(NodeClient):
    """The node's own commands: the operator sees the node's whole error and its code, and
    names and values in the node's own encodings."""

    name_encodings = None

    def no_cookie_text(self) -> str:
        return f"cannot read RPC cookie {self.cookie_file!r}: is the node running?"

    def unreachable_text(self, e: Exception) -> str:
        return f"cannot reach node at {self.url.geturl()}: {e}"

    def refused_text(self) -> str:
        return "node refused the RPC credentials (stale cookie?)"

    def error_text(self, message, code) -> str:
        return f"{message} (code {code})"


class ForwardingClient(NodeClient):
    """The wallet daemon's forwarder (wallet/daemon.py): the node's error message reaches the
    caller whole and unchanged, as if it had called the node itself; names and values in the
    node's own encodings (Namecoin's -nameencoding/-valueencoding), not the wallet's."""

    name_encodings = None

    def error_text(self, message, code) -> str:
        return str(message)
