"""The connection half of the p2p network: which peers to hold, dialling with back-off,
accepting within the caps, timeouts, misbehaviour scores and bans.

Network (network.py) inherits it and adds what is said over a connection: the handshake,
message handling and relay. The split follows hsd's pool (connections) versus its message
handlers; this half never looks at a message body.
"""
from __future__ import annotations

import abc
import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass, field

from core.connlimit import SourceLimiter, source_group
from p2p.addrbook import AddressBook
from p2p.addrpolicy import addr_group, is_loopback
from p2p.banlist import BanList
from p2p.messages import Ping
from p2p.peer import Peer

log = logging.getLogger("dotbit.p2p")
SELECT_TRIES = 50             # picks from the book per dial round (each round is 0.5 s)
# New automatic dials per round: a book of dead addresses costs a few refused dials a second,
# not a burst of eight every half second (Bitcoin Core opens one per 0.5 s).
DIALS_PER_ROUND = 2
MAX_RETRY_ENTRIES = 2_000     # back-off records kept; beyond, the expired ones are forgotten


@dataclass
class P2PConfig:
    port: int
    bind: str = "127.0.0.1"
    listen: bool = True
    connect: list = field(default_factory=list)    # [(host, port)]: only these, if any
    addnode: list = field(default_factory=list)    # [(host, port)]: these besides the book
    maxpeers: int = 32
    max_outbound: int = 8
    # Inbound connections one address may hold (0: half of maxpeers), so a single host cannot
    # take every slot and keep honest peers out (eclipse by connection flood).
    max_inbound_per_host: int = 0
    handshake_timeout: float = 10.0
    ping_interval: float = 30.0
    ping_timeout: float = 20.0
    idle_timeout: float = 90.0
    ban_seconds: float = 24 * 3600
    # addr entries processed per second per peer (a token bucket of MAX_ADDR, plus MAX_ADDR
    # more for each getaddr we send); 0 turns the limit off. Bitcoin Core's rate.
    addr_rate: float = 0.1
    # Seconds between feeler connections (a short dial to a "new" address to learn whether
    # it is alive, made only when the outbound slots are full); 0: none.
    feeler_interval: float = 120.0


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad address {text!r}, expected HOST:PORT")
    return host.strip("[]"), int(port)


class Connections(abc.ABC):
    def __init__(self, datadir: str, config: P2PConfig):
        self.config = config
        self.peers: dict[int, Peer] = {}
        self.book = AddressBook(os.path.join(datadir, "peers.json"))
        self.bans = BanList(os.path.join(datadir, "banlist.json"))
        self.added: dict[tuple[str, int], bool] = {t: True for t in config.addnode}
        self._dialling: set[tuple[str, int]] = set()
        self._retry_at: dict[tuple[str, int], float] = {}
        self._fails: dict[tuple[str, int], int] = {}
        self._self_targets: set[tuple[str, int]] = set()
        self._server: asyncio.base_events.Server | None = None
        self._dials: set[asyncio.Task] = set()
        self.dials = {"connected": 0, "failed": 0}           # outbound TCP dials (read by /metrics)
        self.anchors = list(self.book.anchors)               # dialled first after a restart
        self._next_feeler = time.monotonic() + config.feeler_interval
        # Inbound peers per address and per /24 or /56; when every slot is taken, the biggest
        # inbound holder's oldest peer makes room for a newcomer from elsewhere (read by /metrics).
        per_host = config.max_inbound_per_host or max(1, config.maxpeers // 2)
        self.inbound_limiter = SourceLimiter(config.maxpeers, per_host, per_host * 2)

    @abc.abstractmethod
    def _add_peer(self, peer: Peer) -> None:
        """Start a new connection (Network greets it with its version)."""

    def ready_peers(self) -> list[Peer]:
        return [p for p in self.peers.values() if p.ready]

    # --- accepting and dialling ------------------------------------------------------------

    async def _accept(self, reader, writer) -> None:
        host = (writer.get_extra_info("peername") or ("?",))[0]
        if self.bans.is_banned(host):
            writer.close()
            return
        limiter = self.inbound_limiter
        self._forget_closed_inbound()
        peer = Peer(self, reader, writer, inbound=True)
        ok, victims = limiter.admit(peer, host, full=len(self.peers) >= self.config.maxpeers)
        for victim in victims:
            victim.close(f"evicted: {source_group(victim.host)} held the most inbound slots")
        if not ok:
            log.info("refusing inbound %s: over its per-address or per-network cap, or %d peers already",
                     host, len(self.peers))
            writer.close()
            return
        self._add_peer(peer)

    def _forget_closed_inbound(self) -> None:
        """Free the slots of inbound peers closed since (Peer.close reports to Network, not here)."""
        for held in self.inbound_limiter.holders():
            if held.closed.is_set():
                self.inbound_limiter.release(held)

    def _forced_targets(self) -> list[tuple[str, int]]:
        # --connect means no automatic connections; peers added by addnode are still kept.
        return list(self.config.connect) + [t for t in self.added if t not in self.config.connect]

    def _dialable(self, t: tuple[str, int], busy: set, now: float) -> bool:
        return (t not in busy and t not in self._self_targets and self._retry_at.get(t, 0) <= now
                and not self.bans.is_banned(t[0]))

    def _automatic_targets(self, want: int, busy: set, now: float) -> list[tuple[str, int]]:
        """Up to `want` addresses to dial: the anchors (once each), then picks from the book,
        each from a network (/24, /56) none of our outbound peers is in, so one operator's
        addresses cannot take every outbound slot. Loopback is exempt: it is this machine."""
        groups = {addr_group(p.target[0]) for p in self.peers.values()
                  if p.target is not None and not is_loopback(p.target[0])}
        groups |= {addr_group(t[0]) for t in self._dialling if not is_loopback(t[0])}
        out: list[tuple[str, int]] = []
        tries = 0
        while len(out) < want and tries < SELECT_TRIES:
            t = self.anchors.pop(0) if self.anchors else self.book.select()
            tries += 1
            if t is None:
                break
            group = None if is_loopback(t[0]) else addr_group(t[0])
            if (t in out or group in groups or t == (self.config.bind, self.config.port)
                    or not self._dialable(t, busy, now)):
                continue
            out.append(t)
            if group is not None:
                groups.add(group)
        return out

    def _dial_round(self, now: float) -> None:
        busy = {p.target for p in self.peers.values() if p.target is not None} | self._dialling
        for t in self._forced_targets():
            if self._dialable(t, busy, now):
                self._start_dial(t)
                busy.add(t)
        if self.config.connect:
            return
        outbound = sum(1 for p in self.peers.values() if not p.inbound and not p.feeler) + len(
            [t for t in self._dialling if t not in self.added])
        free = min(self.config.max_outbound, self.config.maxpeers) - outbound
        if len(self._retry_at) > MAX_RETRY_ENTRIES:
            self._forget_retries(now)
        if free > 0:
            for t in self._automatic_targets(min(free, DIALS_PER_ROUND), busy, now):
                self._start_dial(t)
        elif self.config.feeler_interval and now >= self._next_feeler:
            self._next_feeler = now + self.config.feeler_interval
            t = self.book.select(new_only=True)
            if t is not None and t != (self.config.bind, self.config.port) and self._dialable(t, busy, now):
                self._start_dial(t, feeler=True)

    def _forget_retries(self, now: float) -> None:
        """Automatic dials reach any address in the book: keep their back-off records bounded."""
        for t in [t for t, at in self._retry_at.items() if at <= now]:
            del self._retry_at[t]
            self._fails.pop(t, None)

    def _start_dial(self, t: tuple[str, int], feeler: bool = False) -> None:
        self._dialling.add(t)
        self.book.attempt(*t)
        task = asyncio.create_task(self._dial(t, feeler))
        self._dials.add(task)              # held, so the loop cannot collect it early
        task.add_done_callback(self._dials.discard)

    async def _dial_loop(self) -> None:
        while True:
            self._dial_round(time.monotonic())
            await asyncio.sleep(0.5)

    async def _dial(self, target: tuple[str, int], feeler: bool = False) -> bool:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*target, limit=1 << 16), 5)
        except (OSError, asyncio.TimeoutError) as e:
            fails = self._fails[target] = self._fails.get(target, 0) + 1
            self._retry_at[target] = time.monotonic() + min(30.0, 0.5 * 2 ** min(fails, 6))
            self.dials["failed"] += 1
            log.debug("cannot connect to %s:%d: %s", *target, e)
            return False
        finally:
            self._dialling.discard(target)
        self._fails.pop(target, None)
        self._retry_at[target] = time.monotonic() + 1.0
        self.dials["connected"] += 1
        peer = Peer(self, reader, writer, inbound=False, target=target)
        peer.feeler = feeler
        self._add_peer(peer)
        return True

    async def connect_once(self, target: tuple[str, int]) -> bool:
        if target in self._dialling:
            return False
        self._dialling.add(target)
        return await self._dial(target)

    # --- defence ---------------------------------------------------------------------------

    def misbehave(self, peer: Peer, score: int, reason: str) -> None:
        if score <= 0:
            log.debug("peer %d (%s): %s", peer.id, peer.addr, reason)
            return
        peer.score += score
        log.info("peer %d (%s) misbehaving (+%d -> %d): %s", peer.id, peer.addr, score, peer.score, reason)
        if peer.score >= 100:
            self.bans.ban(peer.host, self.config.ban_seconds, reason)
            log.warning("banned %s for %ds: %s", peer.host, self.config.ban_seconds, reason)
            peer.close(f"banned: {reason}")

    def ban(self, host: str, seconds: float, reason: str = "manually added") -> None:
        self.bans.ban(host, seconds, reason)
        for p in list(self.peers.values()):
            if p.host == host:
                p.close("banned")

    def _check_timeouts(self) -> None:
        """Close peers that never finished the handshake, went silent or stopped answering
        pings; ping the ones that are due."""
        now = time.monotonic()
        c = self.config
        self._forget_closed_inbound()
        for p in list(self.peers.values()):
            if not p.ready:
                if time.time() - p.connected_at > c.handshake_timeout:
                    p.close("handshake timeout")
                continue
            if now - p.last_recv > c.idle_timeout:
                p.close("silent peer")
            elif p.ping_nonce is not None and now - p.ping_sent > c.ping_timeout:
                p.close("ping timeout")
            elif p.ping_nonce is None and now - p.ping_sent > c.ping_interval:
                p.ping_nonce, p.ping_sent = random.getrandbits(64), now
                p.send(Ping(p.ping_nonce))
