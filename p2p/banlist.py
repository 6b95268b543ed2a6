"""The ban list, a small JSON file in the data dir. Bans are by host: a misbehaving peer
reconnecting from another port is still refused."""
from __future__ import annotations

import time

from p2p.jsonfile import load, save

DEFAULT_BAN_SECONDS = 24 * 3600


class BanList:
    """Banned hosts -> (until unix time, reason); expired entries drop out on read."""

    def __init__(self, path: str, clock=time.time):
        self.path = path
        self.clock = clock
        raw = load(path, {})
        self.bans: dict[str, tuple[float, float, str]] = {}
        if isinstance(raw, dict):
            for host, v in raw.items():
                if isinstance(v, list) and len(v) == 3:
                    self.bans[host] = (float(v[0]), float(v[1]), str(v[2]))

    def _expire(self) -> None:
        now = self.clock()
        for host in [h for h, (_, until, _) in self.bans.items() if until <= now]:
            del self.bans[host]

    def is_banned(self, host: str) -> bool:
        self._expire()
        return host in self.bans

    def ban(self, host: str, seconds: float = DEFAULT_BAN_SECONDS, reason: str = "") -> None:
        now = self.clock()
        self.bans[host] = (now, now + seconds, reason)
        self.save()

    def unban(self, host: str) -> bool:
        found = self.bans.pop(host, None) is not None
        self.save()
        return found

    def clear(self) -> None:
        self.bans.clear()
        self.save()

    def entries(self) -> list[dict]:
        self._expire()
        return [{"address": h, "ban_created": int(c), "banned_until": int(u), "ban_reason": r}
                for h, (c, u, r) in sorted(self.bans.items())]

    def save(self) -> None:
        save(self.path, {h: list(v) for h, v in self.bans.items()})
