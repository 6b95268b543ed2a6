"""Wires the resolver's parts to the node's chain: the read-only name view, the ephemeral-key
store, the online signer, the DNS server and the signed HTTP API; every name change (and every
accepted ephemeral key) drops the cached answers that read that name, so updates are visible
at once. The node's composition root (node/service.py, node/compose.py) builds it from
ResolverSettings and hands it what it reads: the chain, the network, the data dir, the
ephemeral-key store and the one write it may make (submit an ephemeral-key update)."""
from __future__ import annotations

import asyncio
import logging
import os

from core.records import NameSource
from core.sources import DEFAULT_ORDER, ChainSource, Policy
from node.resolver.ca.authority import CAError, ca_dir, has_ca, load_ca
from node.resolver.ca.service import CAService
from node.resolver.dns_answer import SERIAL, Responder
from node.resolver.dns_server import DNSServer
from node.resolver.dnssec import OnlineSigner
from node.resolver.http_api import ChainReads, HTTPAPI
from node.resolver.identity import load_or_create
from node.resolver.worker_pool import WorkerPool
from node.resolver.zone.notify import Notifier
from node.resolver.zone.projection import DEFAULT_HISTORY, ZoneProjection
from node.resolver.zone.refresh import SignatureTimer
from node.resolver.zone.transfer import ZoneTransfer
from node.resolver.zone.tsig import SignedResponder

log = logging.getLogger("dotbit.resolver")


def default_key_path(datadir: str) -> str:
    return os.path.join(datadir, "resolver_key")


class Resolver:
    def __init__(self, chain, params, datadir: str, ekeys, submit_ekey, key_path: str | None = None, *,
                 host: str = "127.0.0.1", dns_port: int | None = None, http_port: int | None = None,
                 axfr_allow=(), dane=None, record_sources: tuple[str, ...] = DEFAULT_ORDER,
                 ca_passphrase: str | None = None, axfr_keys=None, notify=(), dns_limiter=None, conn_caps=None,
                 dns_workers: int = 1, ixfr_history: int = DEFAULT_HISTORY):
        self.conn_caps = conn_caps           # core.connlimit.ConnCaps for HTTP and DNS over TCP, or None
        self.dns_limiter = dns_limiter       # ratelimit.ResponseRateLimiter for UDP, or None
        self.chain = chain
        self.params = params
        self.datadir = datadir
        self.submit_ekey = submit_ekey       # bytes -> {"accepted", "reason", ...} (node.submit_ekey)
        self.host = host
        self.dns_port = dns_port
        self.http_port = http_port
        self.key = load_or_create(key_path or default_key_path(datadir))
        self.ekeys = ekeys
        self.dane = dane                 # names outside bit. (HTTP API only)
        self.source = NameSource(chain.names.get, lambda: chain.height, params, self.ekeys)
        self.signer = OnlineSigner(self.key)
        self.policy = Policy([ChainSource(self.source)], record_sources)
        # Why the CA endpoints have no CA behind them, when they have none.
        self.ca_off = "the CA source is off here (--record-sources without ca)"
        self.ca = self._open_ca(ca_passphrase) if "ca" in record_sources else None
        if dane is not None:
            self.policy.add(dane)
        # With DNS the signed zone is kept in the store, block by block (built first if it is
        # not the tip's); the online SOA carries its serial, so a secondary's SOA check and its
        # transfer agree. Without DNS nothing serves the zone, and it is not kept.
        self.zone = None
        if dns_port is not None:
            self.zone = ZoneProjection(chain.db, params, self.key, ixfr_history)
            self.zone.attach(chain)
        self.responder = Responder(self.source, self.signer, self.zone.serial if self.zone else lambda: 0,
                                   self.policy)
        self.dns = None
        self.dns_workers = dns_workers       # > 1: DNS answered by worker processes (worker_pool.py)
        self.workers = None
        self.http = None
        self.metrics = None           # () -> Prometheus text, set by the node; serves GET /metrics
        self.axfr_allow = tuple(axfr_allow)      # networks (zone_transfer.parse_networks)
        self.axfr_keys = axfr_keys               # a tsig.Keyring, or None
        self.notifier = None
        self._refresh_task = None            # the zone's SignatureTimer, while DNS runs
        if notify:
            self.notifier = Notifier(notify, self.zone.serial, axfr_keys)
            chain.listeners.subscribe(self.notifier.tip_changed)
        chain.listeners.subscribe(self._tip_changed)
        chain.names.listeners.subscribe(self._name_changed)
        chain.listeners.subscribe(self._expiry_reached)
        self.ekeys.listeners.subscribe(self._ekey_accepted)

    def _open_ca(self, passphrase: str | None):
        """The CA source, if `dotbit-node ca init` made one in the data dir. A CA that cannot be
        unlocked (no or a wrong passphrase) leaves the node running without it: one warning,
        and the CA endpoints say why (self.ca_off)."""
        directory = ca_dir(self.datadir)
        if not has_ca(directory):
            self.ca_off = "this node has no CA: create one with `dotbit-node ca init` and restart the node"
            return None
        try:
            if not passphrase:
                raise CAError("no-passphrase", f"the CA in {directory} is locked")
            authority = load_ca(directory, passphrase)
        except CAError as e:
            self.ca_off = (f"{e}: the node runs without its CA; start it with DOTBIT_CA_PASSPHRASE "
                           "or --ca-passphrase-file (or [resolver] ca_passphrase_file)")
            log.warning("%s", self.ca_off)
            return None
        chain = self.chain

        def recent(n: int) -> list[bytes]:
            return [chain.entry_at(h).hash for h in range(max(0, chain.height - n + 1), chain.height + 1)]

        ca = CAService(authority, chain.db, chain.names.get, lambda: chain.height, recent,
                       self.params, on_change=self.invalidate)
        chain.names.listeners.subscribe(ca.name_changed)
        self.policy.add(ca)
        log.info("CA source on: %s", ca.authority.cert.subject.rfc4514_string())
        return ca

    def _name_changed(self, kind, name: bytes | None, record, height) -> None:
        self.invalidate(name.decode("utf-8", "surrogateescape") if name is not None else None)

    def _expiry_reached(self, kind, block, entry) -> None:
        """Names expired from this block's height stop resolving when it is connected, and
        resolve again when it is disconnected. The index's "expire" event comes a block
        earlier (when the coin goes, for the next block's transactions): answers cached in
        between would otherwise serve an expired name (and light clients reject them)."""
        if kind in ("connect", "disconnect") and entry is not None:
            for name in self.chain.names.expiring_at(entry.height):
                self.invalidate(name.decode("utf-8", "surrogateescape"))

    def _ekey_accepted(self, data: bytes, update) -> None:
        self.invalidate(update.name.decode("utf-8", "surrogateescape"))

    def _tip_changed(self, *_event) -> None:
        """Answers carrying the SOA name the serial; workers learn the new height and serial."""
        self.responder.invalidate(SERIAL)
        if self.workers is not None:
            self.workers.push(*self.workers.tip_event())

    def invalidate(self, name: str | None = None) -> None:
        """Order matters: the source first, so the front caches never re-fill from a stale answer."""
        self.source.invalidate(name)
        self.responder.invalidate(name)
        if self.workers is not None:
            self.workers.push("inv", name)
        if self.http is not None:
            self.http.invalidate(name)

    def kept_zone(self) -> ZoneProjection:
        """The stored zone (zone export over RPC); a resolver without DNS starts keeping it now."""
        if self.zone is None:
            self.zone = ZoneProjection(self.chain.db, self.params, self.key)
            self.zone.attach(self.chain)
        return self.zone

    async def start(self) -> None:
        if self.ca is not None:
            self.ca.reconcile()
        if self.http_port is not None:
            self.http = self._http_api()
        if self.dns_port is not None and self.dns_workers > 1:
            # The workers serve the HTTP port too (http_worker.py); the node's API answers only
            # what they forward to it, and does not listen.
            self.workers = WorkerPool(self.dns_workers, self, self.host, self.dns_port, self.dns_limiter,
                                      self.conn_caps, self.http_port)
            await self.workers.start()
            self.dns_port = self.workers.port
            self.http_port = self.workers.http_port
        elif self.dns_port is not None:
            await self._start_dns()
        if self.http is not None and self.workers is None:
            await self.http.start(self.host, self.http_port)
            self.http_port = self.http.port
        if self.notifier is not None:
            self.notifier.start()
        if self.zone is not None:
            timer = SignatureTimer(self.zone, lambda: self.chain.tip, self._zone_serial)
            self._refresh_task = asyncio.get_running_loop().create_task(timer.run())
        log.info("resolver key fingerprint %s (DNSKEY tag %d)", self.key.fingerprint, self.key.key_tag)

    def _http_api(self) -> HTTPAPI:
        chain = self.chain
        reads = ChainReads(self.params, lambda: chain.height, lambda: chain.tip, chain.names.get,
                           chain.names.prove, lambda h: chain.entry_at(h).header.to_wire(), self.submit_ekey)
        http = HTTPAPI(self, reads)
        chain.listeners.subscribe(http.tip_changed)
        return http

    async def _start_dns(self) -> None:
        transfer = None
        if self.axfr_allow:
            transfer = ZoneTransfer(self.chain.db, self.axfr_allow, self.axfr_keys)
        responder = self.responder
        if self.axfr_keys is not None:
            responder = SignedResponder(responder, self.axfr_keys, log)
        self.dns = DNSServer(responder, self.host, self.dns_port, transfer, self.dns_limiter, self.conn_caps)
        await self.dns.start()
        self.dns_port = self.dns.port

    def _zone_serial(self, _serial: int) -> None:
        """A serial without a block (signatures refreshed): as a tip change for the SOA."""
        self._tip_changed()
        if self.notifier is not None:
            self.notifier.tip_changed()

    async def stop(self) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            self._refresh_task = None
        if self.notifier is not None:
            self.notifier.stop()
        if self.dns is not None:
            await self.dns.stop()
        if self.workers is not None:
            await self.workers.stop()
        if self.http is not None and self.workers is None:
            await self.http.stop()
