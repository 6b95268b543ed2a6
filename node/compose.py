"""The parts the node service builds from its settings, kept out of node/service.py so the
service reads as the order things start in.

resolver_parts() turns ResolverSettings (text: CIDRs, key specs, file names) into the objects
the resolver runs with, and reports an unusable setting as a ValueError with one line of text
before the chain is opened. rpc_registry() is the one list of RPC method modules.
"""
from __future__ import annotations

from dataclasses import dataclass

from node import exposure
from node.mining import auxrpc, rpc as mining_rpc
from node.resolver.dane import DANESource
from node.resolver.service import Resolver
from node.resolver.zone.notify import parse_targets
from node.resolver.zone.transfer import parse_networks
from node.resolver.zone.tsig import Keyring, parse_spec, read_key_file
from node.rpc import methods, name_methods, net_methods, status_methods, zone_methods
from node.rpc.registry import Registry
from node.settings import ResolverSettings

# Every module whose @rpc functions the node serves. net_methods is in even without p2p: its
# methods then answer "p2p disabled", as bitcoind does; zone_methods serves `zone export`
# while the node runs.
RPC_MODULES = (methods, mining_rpc, auxrpc, name_methods, net_methods, status_methods, zone_methods)


def rpc_registry(modules=RPC_MODULES) -> Registry:
    registry = Registry()
    for module in modules:
        registry.add_module(module)
    return registry


@dataclass(frozen=True)
class ResolverParts:
    axfr_networks: tuple
    axfr_keys: Keyring | None
    notify: tuple
    dns_limiter: object          # ratelimit.ResponseRateLimiter, or None for no limit
    dane: DANESource | None
    ca_passphrase: str | None


def ca_passphrase(path: str | None, from_environment: str | None) -> str | None:
    """The CA key's passphrase: the file's first line if a file is named, else the environment's."""
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    return from_environment


def _tsig(rs: ResolverSettings) -> Keyring | None:
    if not (rs.axfr_tsig or rs.axfr_tsig_file):
        return None
    keys = [parse_spec(s) for s in rs.axfr_tsig] + (read_key_file(rs.axfr_tsig_file) if rs.axfr_tsig_file else [])
    keyring = Keyring(keys)
    if not rs.axfr_allow:
        raise ValueError("--axfr-tsig needs --axfr-allow (0.0.0.0/0 and ::/0 to let the key alone decide)")
    return keyring


def resolver_parts(rs: ResolverSettings) -> ResolverParts:
    limiter = exposure.dns_limiter(rs.dns_rate_limit, list(rs.dns_rate_limit_exempt))
    keyring = _tsig(rs)
    notify: tuple = ()
    if rs.notify:
        if rs.dns_port is None:
            raise ValueError("--notify needs DNS: add --dns-port N or --resolver")
        notify = parse_targets(rs.notify)
    return ResolverParts(axfr_networks=parse_networks(rs.axfr_allow) if rs.axfr_allow else (),
                         axfr_keys=keyring, notify=notify, dns_limiter=limiter,
                         dane=DANESource(rs.dane_zones, rs.dane_anchors) if rs.dane_zones else None,
                         ca_passphrase=ca_passphrase(rs.ca_passphrase_file, rs.ca_passphrase))


def build_resolver(rs: ResolverSettings, parts: ResolverParts, node) -> Resolver:
    """The resolver on `node`'s chain: it reads the chain and the ephemeral keys, and may only
    submit ephemeral-key updates back (node.submit_ekey)."""
    return Resolver(node.chain, node.params, node.datadir, node.ekeys, node.submit_ekey, rs.key,
                    host=rs.host or node.rpc_host, dns_port=rs.dns_port, http_port=rs.http_port,
                    axfr_allow=parts.axfr_networks, dane=parts.dane, record_sources=rs.record_sources,
                    ca_passphrase=parts.ca_passphrase, axfr_keys=parts.axfr_keys, notify=parts.notify,
                    dns_limiter=parts.dns_limiter, conn_caps=rs.conn_caps, dns_workers=rs.dns_workers,
                    ixfr_history=rs.ixfr_history)
