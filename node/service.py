"""The node service: wires store, chain state, mempool, miner and RPC, and runs them.

All chain and mempool work happens on the event loop thread (one writer, no locks); only
proof-of-work hashing leaves it, into the miner's worker processes.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time

from node.chain.chainstate import ChainState
from core.crypto import decode_address, encode_address, generate_secret, hash160, pubkey_from_secret
from core.errors import ValidationError
from node.chain.mempool import Mempool
from node.chain.storage import LevelDB
from node.mining.template import create_template
from node.rpc.server import RPCServer, remove_cookie, write_cookie
from node.secretfile import read_or_create

log = logging.getLogger("dotbit.node")


def default_datadir(network: str) -> str:
    from node.config import default_datadir as configured     # one definition, shared with the wallet
    return configured(network)


def open_chain(params, datadir: str, **kw) -> ChainState:
    os.makedirs(datadir, exist_ok=True)
    db = LevelDB(os.path.join(datadir, "chain"))
    return ChainState(db, params, **kw)


def load_mining_key(datadir: str) -> tuple[bytes, bytes]:
    """The node's own mining key, created once and kept in the data dir (mode 0600)."""
    secret = read_or_create(os.path.join(datadir, "mining_key"), generate_secret, "mining key")
    return secret, hash160(pubkey_from_secret(secret))


class Node:
    def __init__(self, params, datadir: str, *, rpc_host: str = "127.0.0.1", rpc_port: int | None = None,
                 mine: bool = False, mine_address: str | None = None, mine_interval: float = 5.0,
                 miner_processes: int | None = None, p2p=None, dns_port: int | None = None,
                 http_port: int | None = None, resolver_key: str | None = None, axfr_allow=(), dane=None,
                 metrics_port: int | None = None, record_sources: tuple[str, ...] | None = None,
                 ca_passphrase: str | None = None, axfr_keys=None, notify=(), dns_limiter=None,
                 resolver_host: str | None = None):
        self.params = params
        self.datadir = datadir
        self.rpc_host = rpc_host
        self.rpc_port = rpc_port if rpc_port is not None else params.rpc_port
        self.mine_enabled = mine
        self.mine_interval = mine_interval
        self.miner_processes = miner_processes
        self.started_at = time.time()
        self.stopping = asyncio.Event()
        self.chain = open_chain(params, datadir)
        self.mempool = Mempool(self.chain, params)
        if mine_address:
            self.mining_address = decode_address(params.address_version, mine_address)
        else:
            _, self.mining_address = load_mining_key(datadir)
        self._miner = None
        self._tasks: list[asyncio.Task] = []
        self.rpc: RPCServer | None = None
        self.p2p_config = p2p            # a p2p.network.P2PConfig, or None for no networking
        self.p2p = None
        # MinimaLT ephemeral keys (off-chain); p2p gossips via submit_ekey and ekeys.listeners.
        from node.resolver.ekeys import EKeyStore
        self.ekeys = EKeyStore(self.chain.db, self.chain.names, lambda: self.chain.height, params)
        self.dane = dane                 # a resolver.dane.DANESource, or None
        self.resolver = None
        if dns_port is not None or http_port is not None:
            from node.resolver.service import Resolver
            from core.sources import DEFAULT_ORDER
            self.resolver = Resolver(self, resolver_key, host=resolver_host or rpc_host, dns_port=dns_port,
                                     http_port=http_port, axfr_allow=axfr_allow, dane=dane,
                                     record_sources=record_sources or DEFAULT_ORDER, ca_passphrase=ca_passphrase,
                                     axfr_keys=axfr_keys, notify=notify, dns_limiter=dns_limiter)
        from node.metrics import NodeMetrics
        self.metrics = NodeMetrics(self)
        self.metrics_port = metrics_port
        self._metrics_server = None
        if self.resolver is not None:
            self.resolver.metrics = self.metrics.render

    @property
    def mining_address_text(self) -> str:
        return encode_address(self.params.address_version, self.mining_address)

    # --- mining ---------------------------------------------------------------------------

    @property
    def miner(self):
        if self._miner is None:
            from node.mining.miner import Miner
            self._miner = Miner(self.miner_processes)
        return self._miner

    async def mine_one(self, address: bytes) -> bytes | None:
        """Build a template on the tip, solve it and submit it; returns the block hash, or None
        if the tip moved while solving (the work is stale, the caller tries again)."""
        from core.primitives import Block
        from node.mining.miner import solve_quick
        while True:
            tmpl = create_template(self.chain, self.mempool, address, int(time.time()))
            header = tmpl.block.header
            if tmpl.target >= (1 << 250):     # regtest-easy: hashing in-process is cheaper
                solved = solve_quick(header, tmpl.target)
            else:
                solved = await self.miner.solve_async(header, tmpl.target)
            if solved is None:
                await asyncio.sleep(1)        # nonce space exhausted: next second, new time
                continue
            if solved.prev_hash != self.chain.tip.hash:
                return None
            block = Block(solved, tmpl.block.txs)
            self.chain.process_block(block)
            log.info("mined block %d %s (%d txs)", tmpl.height, block.hash.hex(), len(block.txs),
                     extra={"height": tmpl.height, "hash": block.hash.hex(), "txs": len(block.txs)})
            return block.hash

    async def generate(self, n: int, address: bytes) -> list[str]:
        hashes = []
        while len(hashes) < n:
            h = await self.mine_one(address)
            if h is not None:
                hashes.append(h.hex())
        return hashes

    async def _mining_loop(self) -> None:
        log.info("mining to %s every %.1fs", self.mining_address_text, self.mine_interval)
        while not self.stopping.is_set():
            try:
                await self.mine_one(self.mining_address)
            except ValidationError as e:
                log.error("mined block rejected: %s", e)
            try:
                await asyncio.wait_for(self.stopping.wait(), self.mine_interval)
            except asyncio.TimeoutError:
                pass

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
        from node.resolver.ekeys import EKeyError
        try:
            u = self.ekeys.submit(data)
        except EKeyError as e:
            return {"accepted": False, "reason": e.reason, "message": str(e)}
        return {"accepted": True, "reason": "", "name": u.name, "seq": u.seq}

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        import node.rpc.methods  # noqa: F401  (registers the RPC methods)
        import node.rpc.name_methods  # noqa: F401
        import node.rpc.net_methods  # noqa: F401  (answer "p2p disabled" when it is off)
        import node.rpc.status_methods  # noqa: F401
        import node.rpc.zone_methods  # noqa: F401  (dumpzone, for `zone export` while running)
        log.info("network %s, height %d, tip %s", self.params.name, self.chain.height,
                 self.chain.tip.hash.hex())
        if self.p2p_config is not None:
            await self._start_p2p()
        if self.resolver is not None:
            await self.resolver.start()
        if self.metrics_port is not None:
            from node.metrics import MetricsServer
            self._metrics_server = MetricsServer(self.metrics.render)
            await self._metrics_server.start(self.rpc_host, self.metrics_port)
            self.metrics_port = self._metrics_server.port
        # RPC last: once it answers, every other server is listening (scripts and tests wait
        # for RPC to know the node is up).
        credentials = write_cookie(self.datadir)
        self.rpc = RPCServer(self, credentials)
        await self.rpc.start(self.rpc_host, self.rpc_port)
        log.info("JSON-RPC on http://%s:%d (cookie %s)", self.rpc_host, self.rpc_port,
                 os.path.join(self.datadir, ".cookie"))
        if self.mine_enabled:
            self._tasks.append(asyncio.create_task(self._mining_loop()))

    async def _start_p2p(self) -> None:
        from p2p.chainview import ChainView
        from p2p.network import Network
        view = ChainView(self.chain, self.mempool, self.submit_block, self.submit_tx)
        self.p2p = Network(self.params, view, self.datadir, self.p2p_config)
        self.p2p.register_handler("ephkey", self._ephkey_from_peer)
        # Every accepted update (from HTTP or a peer) is gossiped once, from here.
        self.ekeys.listeners.subscribe(lambda data, _update: self.p2p.broadcast_ephkey(data))
        await self.p2p.start()

    def _ephkey_from_peer(self, payload: bytes, peer_id) -> bool:
        """p2p's "ephkey" handler. Stale or not-yet-known updates (old seq, expired, a name or
        owner change this node has not seen yet) are dropped quietly; a malformed or forged
        one costs the peer its connection."""
        from node.resolver.ekeys import EKeyError
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
        if self.rpc is not None:
            await self.rpc.stop()
        if self.p2p is not None:
            await self.p2p.stop()
        if self.resolver is not None:
            await self.resolver.stop()
        if self._metrics_server is not None:
            await self._metrics_server.stop()
        if self._miner is not None:
            self._miner.close()
        remove_cookie(self.datadir)
        self.chain.db.close()
        log.info("stopped")

    async def run(self) -> None:
        await self.start()
        try:
            await self.stopping.wait()
        finally:
            await self.stop()
