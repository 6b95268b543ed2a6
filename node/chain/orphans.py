"""Blocks whose parent is not known yet, held in memory until it is (ChainState.process_block).

A stranger can send blocks that build on nothing we have, so the pool is bounded in count and
in bytes (256 blocks of 1 MB would be 256 MB), the oldest given up first.
"""
from __future__ import annotations

from core.primitives import Block

MAX_ORPHANS = 256
MAX_ORPHAN_BYTES = 16_000_000


class OrphanPool(dict):
    """orphan hash -> block, in arrival order; `size` is their bytes."""

    def __init__(self, max_count: int = MAX_ORPHANS, max_bytes: int = MAX_ORPHAN_BYTES):
        super().__init__()
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.size = 0

    def add(self, h: bytes, block: Block) -> None:
        if h in self:
            return
        size = block.size
        while self and (len(self) >= self.max_count or self.size + size > self.max_bytes):
            self.take(next(iter(self)))                     # oldest first
        self[h] = block
        self.size += size

    def take(self, h: bytes) -> Block:
        block = self.pop(h)
        self.size -= block.size
        return block

    def children(self, parent_hash: bytes) -> list[tuple[bytes, Block]]:
        return [(h, b) for h, b in self.items() if b.header.prev_hash == parent_hash]
