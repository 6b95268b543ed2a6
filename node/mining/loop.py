"""Mining on the node's chain: solve one block on the tip (`generate`, the RPCs) or keep
mining every few seconds (`--mine`).

All template building and block submission happens on the event loop thread, like every
other chain write; only the hashing leaves it, into the Miner's worker processes, and only
when the target is hard enough to be worth them.
"""
from __future__ import annotations

import asyncio
import logging
import time

from core.errors import ValidationError
from core.primitives import Block
from node.mining.auxblocks import AuxBlocks
from node.mining.miner import Miner, solve_quick
from node.mining.template import create_template

log = logging.getLogger("dotbit.node")      # the node's log: "mined block ..." lines keep their logger

# At or above this target (regtest-easy) one in-process search beats shipping work to processes.
QUICK_TARGET = 1 << 250


class Mining:
    def __init__(self, chain, mempool, processes: int | None = None):
        self.chain = chain
        self.mempool = mempool
        self._processes = processes
        self._miner: Miner | None = None
        self.aux = AuxBlocks(chain, mempool)      # blocks handed out for merge mining

    @property
    def miner(self) -> Miner:
        """The worker pool, started on first hard target (regtest never needs one)."""
        if self._miner is None:
            self._miner = Miner(self._processes)
        return self._miner

    async def mine_one(self, address: bytes) -> bytes | None:
        """Build a template on the tip, solve it and submit it; returns the block hash, or None
        if the tip moved while solving (the work is stale, the caller tries again)."""
        while True:
            tmpl = create_template(self.chain, self.mempool, address, int(time.time()))
            header = tmpl.block.header
            if tmpl.target >= QUICK_TARGET:
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

    async def run(self, address: bytes, address_text: str, interval: float, stopping: asyncio.Event) -> None:
        """`--mine`: a block every `interval` seconds until `stopping` is set."""
        log.info("mining to %s every %.1fs", address_text, interval)
        while not stopping.is_set():
            try:
                await self.mine_one(address)
            except ValidationError as e:
                log.error("mined block rejected: %s", e)
            try:
                await asyncio.wait_for(stopping.wait(), interval)
            except asyncio.TimeoutError:
                pass

    def close(self) -> None:
        if self._miner is not None:
            self._miner.close()
