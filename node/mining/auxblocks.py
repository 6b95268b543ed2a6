"""Blocks handed out for merge mining (createauxblock/getauxblock) until an AuxPoW comes back.

As Namecoin Core does, a template is kept by the hash the parent coinbase commits to, so the
AuxPoW submitted later needs only that hash; the few most recent ones are kept (a pool may
still be working on an older one), and all of them are dropped when the tip moves, since
they can no longer extend it.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import replace

from core.auxpow import AuxPow, aux_version
from core.primitives import Block
from node.mining.template import create_template

MAX_AUX_BLOCKS = 64        # each holds a whole template: bounded, oldest dropped first
REFRESH_SECONDS = 60       # a pool polling more often gets the same block unless the tip moved


class AuxBlocks:
    def __init__(self, chain, mempool, clock=time.time):
        self.chain = chain
        self.mempool = mempool
        self.clock = clock
        self.blocks: OrderedDict[bytes, Block] = OrderedDict()
        self._tip: bytes | None = None
        self._latest: dict[bytes, tuple[float, bytes]] = {}     # address -> (made at, hash)

    def create(self, address: bytes) -> tuple[Block, int]:
        """An unsolved AuxPoW-version block on the tip paying `address`, and its height."""
        tip = self.chain.tip
        if tip.hash != self._tip:
            self.blocks.clear()
            self._latest.clear()
            self._tip = tip.hash
        now = self.clock()
        made = self._latest.get(address)
        if made is not None and now - made[0] < REFRESH_SECONDS and made[1] in self.blocks:
            return self.blocks[made[1]], tip.height + 1
        t = create_template(self.chain, self.mempool, address, int(now))
        header = replace(t.block.header, version=aux_version(self.chain.params.auxpow_chain_id))
        block = Block(header, t.block.txs)
        self.blocks[block.hash] = block
        self._latest[address] = (now, block.hash)
        while len(self.blocks) > MAX_AUX_BLOCKS:
            gone, _ = self.blocks.popitem(last=False)
            # and whoever was last handed it: _latest stays as bounded as `blocks`
            self._latest = {a: v for a, v in self._latest.items() if v[1] != gone}
        return block, t.height

    def solved(self, block_hash: bytes, auxpow: AuxPow) -> Block | None:
        """The block handed out as `block_hash` with `auxpow` attached; None if unknown."""
        block = self.blocks.get(block_hash)
        if block is None:
            return None
        return Block(replace(block.header, auxpow=auxpow), block.txs)
