"""Wires the resolver's parts to a node: the read-only name view, the ephemeral-key store,
the online signer, the DNS server and the signed HTTP API; every name change (and every
accepted ephemeral key) empties the rendered-answer caches so updates are visible at once."""
from __future__ import annotations

import logging
import os

from .dns_answer import Responder
from .dnssec import OnlineSigner
from .identity import load_or_create
from .records import NameSource

log = logging.getLogger("dotbit.resolver")


def default_key_path(datadir: str) -> str:
    return os.path.join(datadir, "resolver_key")


class Resolver:
    def __init__(self, node, key_path: str | None = None, *, host: str = "127.0.0.1",
                 dns_port: int | None = None, http_port: int | None = None):
        chain = node.chain
        self.node = node
        self.host = host
        self.dns_port = dns_port
        self.http_port = http_port
        self.key = load_or_create(key_path or default_key_path(node.datadir))
        self.ekeys = node.ekeys
        self.source = NameSource(chain.names.get, lambda: chain.height, node.params, self.ekeys)
        self.signer = OnlineSigner(self.key)
        self.responder = Responder(self.source, self.signer, lambda: chain.height)
        self.dns = None
        self.http = None
        chain.names.listeners.append(self.invalidate)
        self.ekeys.listeners.append(self.invalidate)

    def invalidate(self, *_event) -> None:
        self.source.invalidate()
        self.responder.invalidate()
        if self.http is not None:
            self.http.invalidate()

    async def start(self) -> None:
        if self.dns_port is not None:
            from .dns_server import DNSServer
            self.dns = DNSServer(self.responder, self.host, self.dns_port)
            await self.dns.start()
            self.dns_port = self.dns.port
        if self.http_port is not None:
            from .http_api import HTTPAPI
            self.http = HTTPAPI(self)
            await self.http.start(self.host, self.http_port)
            self.http_port = self.http.port
        log.info("resolver key fingerprint %s (DNSKEY tag %d)", self.key.fingerprint, self.key.key_tag)

    async def stop(self) -> None:
        if self.dns is not None:
            await self.dns.stop()
        if self.http is not None:
            await self.http.stop()
