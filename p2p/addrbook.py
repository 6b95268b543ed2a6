"""The address book: who we might connect to, in Bitcoin Core's two tables, persisted as JSON
in the data dir (p2p/jsonfile.py).

"new" holds addresses we heard of, bucketed by the network of whoever told us; "tried" holds
those we once completed a handshake with, bucketed by their own network. Neither table grows
past its slots (p2p/addrpolicy.py has the rules), so one source flooding addr messages fills
only its own share of "new" and never pushes out a good entry, and what we connected to before
survives any flood in "tried". Picks favour entries that have not failed: each failed dial
demotes an address, so dead ones stop crowding out live ones.

File format 2: {"version", "key" (hex), "new": [...], "tried": [...], "anchors": [[host, port]]};
format 1 (a bare {"host:port": last_seen}) is migrated on load.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import random
import time
from dataclasses import dataclass

from p2p import addrpolicy as P
from p2p.jsonfile import load, save

log = logging.getLogger("dotbit.p2p")

FORMAT = 2
MAX_ANCHORS = 2                        # Bitcoin Core keeps two block-relay anchors
MAX_ADDRESSES = P.MAX_ADDRESSES


@dataclass(slots=True)
class Entry:
    host: str
    port: int
    seen: int                          # last-seen unix time we believe
    source: str                        # network (/24, /56) of whoever told us
    attempts: int = 0                  # failed or unfinished dials since the last success
    last_try: float = 0.0
    last_success: int = 0
    tried: bool = False

    @property
    def key(self) -> str:
        return f"{self.host}:{self.port}"

    def row(self) -> list:
        return [self.host, self.port, self.seen, self.source, self.attempts, int(self.last_try), self.last_success]


def _normal(host: str, port: int) -> tuple[str, int] | None:
    # IP literals only: names learnt from peers would make us resolve whatever they say.
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not isinstance(port, int) or not 0 < port < 65536:
        return None
    return str(ip), port


class AddressBook:
    def __init__(self, path: str, clock=time.time, rng: random.Random | None = None):
        self.path = path
        self.clock = clock
        self.rng = rng or random.Random()
        self.entries: dict[str, Entry] = {}
        self.new: dict[tuple[int, int], str] = {}      # (bucket, slot) -> entry key
        self.tried: dict[tuple[int, int], str] = {}
        self.anchors: list[tuple[str, int]] = []
        self.refused = 0          # newcomers dropped: their slot held by a good entry
        self.evicted = 0          # entries replaced (terrible) or pushed out of "tried"
        self._picks: dict[bool, list[str]] = {}         # cached key lists for select()
        self.key = self._load(load(path, {}))

    # --- placing entries -------------------------------------------------------------------

    def _new_pos(self, e: Entry) -> tuple[int, int]:
        b = P.new_bucket(self.key, P.addr_group(e.host), e.source)
        return b, P.slot(self.key, "new", b, e.key)

    def _tried_pos(self, e: Entry) -> tuple[int, int]:
        b = P.tried_bucket(self.key, e.key, P.addr_group(e.host))
        return b, P.slot(self.key, "tried", b, e.key)

    def _terrible(self, k: str, now: float) -> bool:
        e = self.entries[k]
        return P.is_terrible(e.seen, e.attempts, e.last_try, e.last_success, now)

    def _drop(self, k: str) -> None:
        e = self.entries.pop(k)
        table = self.tried if e.tried else self.new
        pos = self._tried_pos(e) if e.tried else self._new_pos(e)
        if table.get(pos) == k:
            del table[pos]
        self._picks.clear()

    def _place_new(self, e: Entry, now: float, force: bool = False) -> bool:
        pos = self._new_pos(e)
        held = self.new.get(pos)
        if held is not None:
            if not force and not self._terrible(held, now):
                self.refused += 1
                return False
            self._drop(held)
            self.evicted += 1
        e.tried = False
        self.entries[e.key] = e
        self.new[pos] = e.key
        self._picks.clear()
        return True

    # --- what the network tells us ---------------------------------------------------------

    def add(self, host: str, port: int, seen: float | None = None, source: str | None = None) -> bool:
        """An address heard of (from `source`, a peer's host; None: the address itself).
        True if it is new to the book."""
        hp = _normal(host, port)
        if hp is None:
            return False
        now = self.clock()
        relayed = source is not None and source != hp[0]
        when = P.believed_time(seen, now, relayed)
        k = f"{hp[0]}:{hp[1]}"
        old = self.entries.get(k)
        if old is not None:
            old.seen = max(old.seen, when)
            return False
        src = P.addr_group(source if source is not None else hp[0])
        return self._place_new(Entry(hp[0], hp[1], when, src), now)

    def attempt(self, host: str, port: int) -> None:
        """We are dialling it: until good(), this counts as a failure (and demotes it)."""
        hp = _normal(host, port)
        e = self.entries.get(f"{hp[0]}:{hp[1]}") if hp is not None else None
        if e is not None:
            e.attempts += 1
            e.last_try = self.clock()

    def good(self, host: str, port: int) -> None:
        """A handshake with it completed: it moves to "tried"."""
        hp = _normal(host, port)
        if hp is None:
            return
        now = self.clock()
        k = f"{hp[0]}:{hp[1]}"
        if k not in self.entries:
            self._place_new(Entry(hp[0], hp[1], int(now), P.addr_group(hp[0])), now, force=True)
        e = self.entries[k]
        e.attempts, e.last_success, e.last_try, e.seen = 0, int(now), now, int(now)
        if e.tried:
            return
        held = self.tried.get(self._tried_pos(e))
        if held is not None and now - self.entries[held].last_success < P.REPLACEMENT:
            # Bitcoin Core's rule: a tried entry that worked in the last 4 hours is not evicted
            # for a newcomer, so fresh successes (an attacker's, say) cannot churn "tried".
            self.refused += 1
            return
        self._drop(k)
        self._to_tried(e, now)

    def _to_tried(self, e: Entry, now: float) -> None:
        pos = self._tried_pos(e)
        held = self.tried.get(pos)
        if held is not None:
            # The older tried entry goes back to "new" (Bitcoin Core does the same): it was
            # good once and keeps a chance, but the slot now belongs to the newer success.
            old = self.entries.pop(held)
            del self.tried[pos]
            self.evicted += 1
            self._place_new(old, now, force=True)
        e.tried = True
        self.entries[e.key] = e
        self.tried[pos] = e.key
        self._picks.clear()

    # --- what we dial and share ------------------------------------------------------------

    def select(self, new_only: bool = False) -> tuple[str, int] | None:
        """A random address to dial: tried or new at even odds, each entry weighted by
        chance() (failures demote it). None when the book is empty."""
        now = self.clock()
        use_tried = not new_only and bool(self.tried) and (not self.new or self.rng.random() < 0.5)
        keys = self._picks.get(use_tried)
        if keys is None:
            keys = self._picks[use_tried] = list((self.tried if use_tried else self.new).values())
        if not keys:
            return None
        factor = 1.0
        while True:
            e = self.entries[self.rng.choice(keys)]
            if self.rng.random() < factor * P.chance(e.attempts, e.last_try, now):
                return e.host, e.port
            factor *= 1.2

    def sample(self, n: int) -> list[tuple[str, int, int]]:
        """Up to n entries that are not terrible, in random order (an answer to getaddr)."""
        now = self.clock()
        keys = [k for k in self.entries if not self._terrible(k, now)]
        self.rng.shuffle(keys)
        return [(self.entries[k].host, self.entries[k].port, self.entries[k].seen) for k in keys[:n]]

    def listing(self, n: int) -> list[Entry]:
        """n entries (0: all) in random order, terrible ones included (for operators)."""
        keys = list(self.entries)
        self.rng.shuffle(keys)
        return [self.entries[k] for k in (keys[:n] if n else keys)]

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def counts(self) -> dict:
        return {"new": len(self.new), "tried": len(self.tried)}

    # --- the file --------------------------------------------------------------------------

    def save(self, anchors: list[tuple[str, int]] | None = None) -> None:
        """Write the book; `anchors`: the outbound peers to dial first after a restart
        (None keeps the ones loaded)."""
        if anchors is not None:
            self.anchors = list(anchors)[:MAX_ANCHORS]
        save(self.path, {"version": FORMAT, "key": self.key.hex(),
                         "new": [self.entries[k].row() for k in self.new.values()],
                         "tried": [self.entries[k].row() for k in self.tried.values()],
                         "anchors": [list(a) for a in self.anchors]})

    def _load(self, raw) -> bytes:
        """Fill the tables from a parsed file; returns the bucket key (a new one if none)."""
        if not isinstance(raw, dict):
            raw = {}
        key = raw.get("key") if raw.get("version") == FORMAT else None
        try:
            self.key = bytes.fromhex(key) if isinstance(key, str) and len(key) == 64 else os.urandom(32)
        except ValueError:
            self.key = os.urandom(32)
        now = self.clock()
        if "version" not in raw:              # format 1: {"host:port": last_seen}
            for k, v in raw.items():
                host, _, port = str(k).rpartition(":")
                if isinstance(v, (int, float)) and port.isdigit():
                    self.add(host, int(port), v)
            return self.key
        for tried, rows in ((True, raw.get("tried")), (False, raw.get("new"))):
            for row in rows if isinstance(rows, list) else ():
                self._load_row(row, tried, now)
        for a in raw.get("anchors") or ():
            if isinstance(a, list) and len(a) == 2 and _normal(a[0], a[1]) is not None:
                self.anchors.append(_normal(a[0], a[1]))
        del self.anchors[MAX_ANCHORS:]
        return self.key

    def _load_row(self, row, tried: bool, now: float) -> None:
        try:
            host, port, seen, source, attempts, last_try, last_success = row
            hp = _normal(host, port)
            e = Entry(hp[0], hp[1], int(seen), str(source), int(attempts), float(last_try), int(last_success))
        except (TypeError, ValueError):
            return                            # a damaged row costs only itself
        if e.key in self.entries:
            return
        if tried and self._tried_pos(e) not in self.tried:
            self._to_tried(e, now)
        else:
            self._place_new(e, now)
