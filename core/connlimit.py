"""Who may hold a connection slot: per-source caps and eviction, shared by every server
(the resolver's HTTP API, DNS over TCP, JSON-RPC, p2p inbound).

Pure bookkeeping, no sockets: a server asks `admit(conn, address)` when a connection
arrives, `touch(conn)` when a request completes and `release(conn)` when it closes; the
answer says whether to keep the newcomer and which held connections to close for it. It
lives in core/ because p2p/ may not import node/, and both need the same rules.

Why these rules (hsd's and bitcoind's inbound eviction in spirit): one source must not be able
to take every slot. So each address, and each network (/24 for IPv4, /56 for IPv6: what one
host or one customer usually holds), has its own cap; and when the server is full, the
newcomer does not lose to whoever came first — the source holding the most slots gives up its
least recently active connection, unless the newcomer is that source.
"""
from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field


def source_group(address: str) -> str:
    """The network a client address counts towards: its /24 (IPv4) or /56 (IPv6)."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address                     # not an IP (a Unix socket path): its own group
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 56
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def parse_exempt(cidrs) -> tuple:
    """CIDRs (text) whose clients skip the per-source caps; `none` or empty: nobody."""
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs if c and c != "none")


@dataclass
class _Held:
    address: str
    group: str
    last_active: float


@dataclass
class SourceLimiter:
    """Caps: `max_total` connections, `per_address` from one address, `per_group` from one
    /24 or /56 (0: that cap is off). `exempt`: networks skipping the per-source caps."""
    max_total: int
    per_address: int = 0
    per_group: int = 0
    exempt: tuple = ()
    clock: object = time.monotonic
    refused: int = 0                       # newcomers turned away (read by /metrics)
    evicted: int = 0                       # held connections closed to make room
    _held: dict = field(default_factory=dict)        # conn -> _Held
    _by_address: dict = field(default_factory=dict)  # address -> {conn: None} (insertion ordered)
    _by_group: dict = field(default_factory=dict)    # group -> count

    def __len__(self) -> int:
        return len(self._held)

    def _exempt(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        return any(ip.version == n.version and ip in n for n in self.exempt)

    def admit(self, conn, address: str, full: bool | None = None) -> tuple[bool, list]:
        """(keep the newcomer?, connections to close now to make room for it). `full`: whether
        the server has no free slot, when it counts slots this limiter does not hold (p2p's
        outbound peers); by default, whether max_total connections are held."""
        group = source_group(address)
        if not self._exempt(address):
            if self.per_address and len(self._by_address.get(address, ())) >= self.per_address:
                self.refused += 1
                return False, []
            if self.per_group and self._by_group.get(group, 0) >= self.per_group:
                self.refused += 1
                return False, []
        victims = []
        if full is None:
            full = len(self._held) >= self.max_total
        if full:
            victim = self._victim(address)
            if victim is None:
                self.refused += 1
                return False, []
            self.release(victim)
            self.evicted += 1
            victims.append(victim)
        self._held[conn] = _Held(address, group, self.clock())
        self._by_address.setdefault(address, {})[conn] = None
        self._by_group[group] = self._by_group.get(group, 0) + 1
        return True, victims

    def _victim(self, newcomer: str):
        """The least recently active connection of the biggest holder (the largest group,
        then its largest address), or None when that holder is the newcomer itself."""
        if not self._by_group:
            return None
        group = max(self._by_group, key=self._by_group.get)
        # In arrival order, so on a tie the address holding the oldest connection goes first.
        addresses = dict.fromkeys(h.address for h in self._held.values() if h.group == group)
        address = max(addresses, key=lambda a: len(self._by_address[a]))
        if address == newcomer or len(self._by_address[address]) <= len(self._by_address.get(newcomer, ())) + 1:
            return None
        return min(self._by_address[address], key=lambda c: self._held[c].last_active)

    def touch(self, conn) -> None:
        """The connection did useful work (a whole request): it is not idle."""
        held = self._held.get(conn)
        if held is not None:
            held.last_active = self.clock()

    def release(self, conn) -> None:
        held = self._held.pop(conn, None)
        if held is None:
            return
        mine = self._by_address[held.address]
        del mine[conn]
        if not mine:
            del self._by_address[held.address]
        self._by_group[held.group] -= 1
        if not self._by_group[held.group]:
            del self._by_group[held.group]

    def holders(self):
        """The connections held, for closing them all at shutdown."""
        return list(self._held)


@dataclass(frozen=True)
class ConnCaps:
    """The operator's per-source settings, one set for every server. 0 means a share of that
    server's own total (1/16 per address, 1/4 per network), since the totals differ (1,024
    HTTP connections, 256 DNS-over-TCP, 32 peers)."""
    per_address: int = 0
    per_group: int = 0
    exempt: tuple = ()                     # CIDR text; nothing is exempt by default

    def limiter(self, max_total: int) -> SourceLimiter:
        return SourceLimiter(max_total, self.per_address or max(1, max_total // 16),
                             self.per_group or max(1, max_total // 4), parse_exempt(self.exempt))
