"""What the user asked to reach: an https:// URL (or NAME.bit:PORT) under .bit, a local
listen address, and the one error type every check raises."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from core.names.dnsname import is_domain_label


class CheckFailed(Exception):
    """One failed check: `check` is the stable word printed first (resolve, tlsa, connect, tls,
    http), the message says what was seen."""

    def __init__(self, check: str, message: str):
        super().__init__(f"{check}: {message}")
        self.check, self.detail = check, message


class UsageError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Target:
    host: str        # "www.example.bit" (no trailing dot): SNI, Host header, certificate name
    port: int
    path: str        # "/..." with its query

    @property
    def fqdn(self) -> str:
        return self.host + "."

    @property
    def tlsa_owner(self) -> str:
        """RFC 6698 §3: the TLSA rows for a TLS service sit at _PORT._tcp.HOST."""
        return f"_{self.port}._tcp.{self.fqdn}"

    @property
    def authority(self) -> str:
        return self.host if self.port == 443 else f"{self.host}:{self.port}"


def parse_target(text: str) -> Target:
    """https://NAME.bit[:PORT][/path] or NAME.bit[:PORT]; anything else is a UsageError."""
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = 443 if parts.port is None else parts.port     # not `or`: port 0 must be refused
    except ValueError as e:
        raise UsageError(f"{text!r:.80}: {e}") from None
    if port == 0:
        raise UsageError(f"{text!r:.80}: port 0")
    if parts.scheme != "https":
        raise UsageError(f"{text!r:.80}: only https:// URLs (the certificate is what the chain vouches for)")
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"{text!r:.80}: user information in the URL is not supported")
    host = (parts.hostname or "").rstrip(".")
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or labels[-1] != "bit" or not is_domain_label(labels[-2]) \
            or any(not lab or len(lab) > 63 or not all(c.isalnum() or c in "-_" for c in lab) for lab in labels):
        raise UsageError(f"{text!r:.80} does not name a host under .bit")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if any(ord(c) < 33 or ord(c) == 127 for c in path):
        raise UsageError("the URL path holds spaces or control characters: percent-encode them")
    return Target(host, port, path)


def parse_listen(text: str) -> tuple[str, int]:
    """127.0.0.1:P (or [::1]:P): forward mode listens on loopback only, since whoever reaches
    the port uses our verified connection."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if host not in ("127.0.0.1", "::1", "localhost") or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"listen {text!r:.80}: expected 127.0.0.1:PORT (loopback only)")
    return ("127.0.0.1" if host == "localhost" else host), int(port)
