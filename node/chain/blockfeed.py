"""The blocks of one activation path (ChainState._activate), in order, with the next one
fetched and decoded early on request.

Why: with --par, a block's signature answers are collected just before its batch commits,
and whatever the workers have not answered by then is checked in line. With the next block
in hand as the current one starts to connect, its checks go to the workers then
(SigPool.check_ahead), and they have the current block's whole connect to work on them: a
reindex, a group of blocks from a peer, or a reorganisation onto a stored branch.
"""
from __future__ import annotations

from typing import Callable, Iterator


class BlockFeed:
    def __init__(self, path: list, fetch: Callable):
        self.path = path            # entries in connect order
        self.fetch = fetch          # entry -> Block (None when the store lacks it)
        self.pos = -1
        self.early = None           # the next entry's block, fetched ahead

    def __iter__(self) -> Iterator[tuple]:
        for pos, entry in enumerate(self.path):
            self.pos = pos
            block, self.early = self.early, None
            yield entry, block if block is not None else self.fetch(entry)

    def ahead(self):
        """Fetches the block after the current one now, if there is one; returns it (None
        when there is none or it could not be had yet)."""
        nxt = self.pos + 1
        if self.early is not None or nxt >= len(self.path):
            return self.early
        try:
            self.early = self.fetch(self.path[nxt])
        except Exception:           # noqa: BLE001 — only an early start: the fetch in the
            self.early = None       # block's own turn raises it where it belongs, as before
        return self.early
