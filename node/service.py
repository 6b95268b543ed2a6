"""The node service, the one composition root: from the network parameters, a data dir and
one NodeSettings (node/settings.py) it builds every part (store, chain state, mempool,
mining, ephemeral keys, resolver with its CA and DANE sources, metrics, p2p, the RPC
registry and server), wires their events in one place, and runs them.

All chain and mempool work happens on the event loop thread (one writer, no locks); only
proof-of-work hashing leaves it, into the miner's worker processes, and with --dns-workers the
answering of DNS queries, whose processes read names through this loop (resolver/worker_pool.py).
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import replace

from core.crypto import decode_address, encode_address, generate_secret, hash160, pubkey_from_secret
from core.errors import ValidationError
from node.chain.chainstate import ChainState
from node.chain.mempool import Mempool
from node.chain.p2pview import NodeChainView
from node.chain.storage import LevelDB
from node.config import write_network_marker
from node.compose import build_resolver, resolver_parts, rpc_registry
from node.metrics import MetricsServer, NodeMetrics
from node.mining.loop import Mining
from node.resolver.ekeys import EKeyError, EKeyStore
from node.rpc.name_encoding import check_setting
from node.rpc.server import RPCServer, remove_cookie, write_cookie
from node.secretfile import read_or_create
from node.settings import NodeSettings
from p2p.network import Network

log = logging.getLogger("dotbit.node")


def open_chain(params, datadir: str, **kw) -> ChainState:
    os.makedirs(datadir, exist_ok=True)
    db = LevelDB(os.path.join(datadir, "chain"))
    try:
        chain = ChainState(db, params, **kw)
    except BaseException:
        db.close()
        raise
    write_network_marker(datadir, params.name)      # after the store agreed it is this network's
    return chain


def load_mining_key(datadir: str) -> tuple[bytes, bytes]:
    """The node's own mining key, created once and kept in the data dir (mode 0600)."""
    secret = read_or_create(os.path.join(datadir, "mining_key"), generate_secret, "mining key")
    return secret, hash160(pubkey_from_secret(secret))


class Node:
    def __init__(self, params, datadir: str, settings: NodeSettings | None = None, **overrides):
        """`overrides` replace single NodeSettings fields (in-process tests and benches)."""
        settings = replace(settings or NodeSettings(), **overrides)
        # Settings that cannot work fail here, with one line, before the chain is opened (also
        # resolver settings while the resolver is off: a --notify without DNS is a mistake).
        parts = resolver_parts(settings.resolver)
        self.params = params
        self.datadir = datadir
        self.settings = settings
        self.rpc_host = settings.rpc_host
        self.rpc_port = settings.rpc_port if settings.rpc_port is not None else params.rpc_port
        self.mine_enabled = settings.mine
        self.mine_interval = settings.mine_interval
        self.metrics_port = settings.metrics_port
        self.name_encoding = check_setting("name_encoding", settings.name_encoding)
        self.value_encoding = check_setting("value_encoding", settings.value_encoding)
        self.allow_expired = settings.allow_expired
        self.p2p_config = settings.p2p             # a p2p.network.P2PConfig, or None for no networking
        self.started_at = time.time()
        self.stopping = asyncio.Event()
        self.chain = open_chain(params, datadir, par=settings.par)
        self.mempool = Mempool(self.chain, params, max_bytes=settings.mempool_max_bytes)
        self.mining = Mining(self.chain, self.mempool, settings.miner_processes)
        if settings.mine_address:
            self.mining_address = decode_address(params.address_version, settings.mine_address)
        else:
            _, self.mining_address = load_mining_key(datadir)
        # MinimaLT ephemeral keys (off-chain); p2p gossips via submit_ekey and ekeys.listeners.
        self.ekeys = EKeyStore(self.chain.db, self.chain.names, lambda: self.chain.height, params)
        self.dane = parts.dane                     # SIGHUP reloads it
        self.resolver = build_resolver(settings.resolver, parts, self) if settings.resolver.enabled else None
        self.metrics = NodeMetrics(self)
        if self.resolver is not None:
            self.resolver.metrics = self.metrics.render
        self.rpc_methods = rpc_registry()
        self.rpc: RPCServer | None = None
        self.p2p: Network | None = None
        self._metrics_server: MetricsServer | None = None
        self._tasks: list[asyncio.Task] = []

    @property
    def mining_address_text(self) -> str:
        return encode_address(self.params.address_version, self.mining_address)

    # --- blocks and transactions from outside ------------------------------------------------

    def submit_block(self, block) -> str:
        return self.chain.process_block(block)

    def submit_tx(self, tx):
        entry = self.mempool.accept(tx)
        if self.p2p is not None:
            self.p2p.relay_tx(entry.txid)
        return entry

    def submit_ekey(self, data: bytes) -> dict:
        """An ephemeral-key update from outside (HTTP, p2p): {"accepted", "reason", "name", "seq"}."""
        try:
            u = self.ekeys.submit(data)
        except EKeyError as e:
            return {"accepted": False, "reason": e.reason, "message": str(e)}
        return {"accepted": True, "reason": "", "name": u.name, "seq": u.seq}

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        log.info("network %s, height %d, tip %s", self.params.name, self.chain.height,
                 self.chain.tip.hash.hex())
        if self.p2p_config is not None:
            await self._start_p2p()
        if self.resolver is not None:
            await self.resolver.start()
        if self.metrics_port is not None:
            self._metrics_server = MetricsServer(self.metrics.render)
            await self._metrics_server.start(self.rpc_host, self.metrics_port)
            self.metrics_port = self._metrics_server.port
        # RPC last: once it answers, every other server is listening (scripts and tests wait
        # for RPC to know the node is up).
        credentials = write_cookie(self.datadir)
        self.rpc = RPCServer(self, credentials, self.rpc_methods)
        await self.rpc.start(self.rpc_host, self.rpc_port)
        log.info("JSON-RPC on http://%s:%d (cookie %s)", self.rpc_host, self.rpc_port,
                 os.path.join(self.datadir, ".cookie"))
        if self.mine_enabled:
            self._tasks.append(asyncio.create_task(self.mining.run(
                self.mining_address, self.mining_address_text, self.mine_interval, self.stopping)))

    async def _start_p2p(self) -> None:
        view = NodeChainView(self.chain, self.mempool, self.submit_block, self.submit_tx)
        self.p2p = Network(self.params, view, self.datadir, self.p2p_config)
        self.p2p.register_handler("ephkey", self._ephkey_from_peer)
        # Every accepted update (from HTTP or a peer) is gossiped once, from here.
        self.ekeys.listeners.subscribe(lambda data, _update: self.p2p.broadcast_ephkey(data))
        await self.p2p.start()

    def _ephkey_from_peer(self, payload: bytes, peer_id) -> bool:
        """p2p's "ephkey" handler. Stale or not-yet-known updates (old seq, expired, a name or
        owner change this node has not seen yet) are dropped quietly; a malformed or forged
        one costs the peer its connection."""
        try:
            self.ekeys.submit(payload)
        except EKeyError as e:
            if e.reason in ("ekey-malformed", "ekey-bad-signature"):
                raise ValidationError(e.reason, 100, str(e)) from None
            return False
        return False          # accepted: the ekeys listener above has already relayed it

    async def stop(self) -> None:
        self.stopping.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        for server in (self.rpc, self.p2p, self.resolver, self._metrics_server):
            if server is not None:
                await server.stop()
        self.mining.close()
        self.chain.sigpool.close()
        remove_cookie(self.datadir)
        self.chain.db.close()
        log.info("stopped")

    async def run(self) -> None:
        await self.start()
        try:
            await self.stopping.wait()
        finally:
            await self.stop()
