"""The address book and the ban list, each a small JSON file in the data dir.

Both are rewritten whole (write to .tmp, fsync, rename) so a crash leaves the old or the new
file. Bans are by host: a misbehaving peer reconnecting from another port is still refused.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import time

log = logging.getLogger("dotbit.p2p")

MAX_ADDRESSES = 10_000
DEFAULT_BAN_SECONDS = 24 * 3600


def _load(path: str, default):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable %s: %s", path, e)
        return default


def _save(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class AddressBook:
    """Known peer addresses "ip:port" -> last seen (unix time)."""

    def __init__(self, path: str):
        self.path = path
        raw = _load(path, {})
        self.addrs: dict[str, int] = {k: int(v) for k, v in raw.items()
                                      if isinstance(k, str) and isinstance(v, (int, float))} \
            if isinstance(raw, dict) else {}

    def add(self, host: str, port: int, seen: int | None = None) -> None:
        # IP literals only: names learnt from peers would make us resolve whatever they say.
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return
        if not 0 < port < 65536:
            return
        key = f"{host}:{port}"
        if key not in self.addrs and len(self.addrs) >= MAX_ADDRESSES:
            # Forget the stalest tenth at once: one sort per many adds, so a stream of addr
            # messages at the cap costs little.
            for k in sorted(self.addrs, key=self.addrs.get)[:MAX_ADDRESSES // 10]:
                del self.addrs[k]
        self.addrs[key] = max(self.addrs.get(key, 0), int(seen if seen is not None else time.time()))

    def sample(self, n: int) -> list[tuple[str, int, int]]:
        best = sorted(self.addrs.items(), key=lambda kv: -kv[1])[:n]
        return [(k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1]), t) for k, t in best]

    def save(self) -> None:
        _save(self.path, self.addrs)


class BanList:
    """Banned hosts -> (until unix time, reason); expired entries drop out on read."""

    def __init__(self, path: str, clock=time.time):
        self.path = path
        self.clock = clock
        raw = _load(path, {})
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
        _save(self.path, {h: list(v) for h, v in self.bans.items()})
