"""What the node exposes beyond its own user, decided from its settings: whether JSON-RPC may
listen off loopback, and how hard DNS over UDP is metered. Errors are ValueError, which the
CLI turns into one stderr line and exit 1 before anything is opened."""
from __future__ import annotations

import ipaddress

from node.resolver.ratelimit import ResponseRateLimiter

DEFAULT_DNS_RATE_LIMIT = 100.0                 # UDP answers/s per client network
DEFAULT_EXEMPT = ["127.0.0.0/8", "::1/128"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False        # a hostname may resolve anywhere: treat it as remote


def check_rpc_bind(host: str, allow_remote: bool) -> None:
    """RPC on a non-loopback address sends the cookie (Basic auth, no TLS) over the network
    and offers `stop`, `sendrawtransaction` and friends to it: only on explicit request."""
    if not is_loopback(host) and not allow_remote:
        raise ValueError(f"refusing to bind JSON-RPC to non-loopback address {host!r}: "
                         "its Basic auth travels in clear text; add --rpc-allow-remote if you mean it")


def dns_limiter(rate: float, exempt: list[str]):
    """A ResponseRateLimiter for `rate` answers/s (None when 0: no limit); `exempt` lists
    CIDRs, where "none" (or nothing) exempts no one."""
    if rate == 0:
        return None
    if rate < 0:
        raise ValueError("--dns-rate-limit must be 0 (off) or positive")
    nets = [n.strip() for item in exempt for n in item.split(",") if n.strip() and n.strip().lower() != "none"]
    try:
        return ResponseRateLimiter(rate, exempt=nets)
    except ValueError as e:
        raise ValueError(f"--dns-rate-limit-exempt: {e}") from None
