"""The node's implementation of p2p's ChainView (p2p/chainview.py): how p2p sees the chain
and the mempool, built from ChainState, the chain store and the node's own entry points.
"""
from __future__ import annotations

from core.primitives import Block, Tx
from node.chain.blockgroup import process_blocks
from node.chain.blockindex import HAVE_DATA


class NodeChainView:
    """Satisfies p2p.chainview.ChainView (structurally: p2p never imports the node)."""

    def __init__(self, chain, mempool, submit_block, submit_tx):
        self._chain = chain
        self._mempool = mempool
        self._submit_block = submit_block     # the node's own entry points, so that whatever
        self._submit_tx = submit_tx           # it does around them (events) still happens

    # --- chain ----------------------------------------------------------------------------
    @property
    def height(self) -> int:
        return self._chain.height

    @property
    def tip_hash(self) -> bytes:
        return self._chain.tip.hash

    def known(self, block_hash: bytes):
        """(height, work, have_data, invalid) of an indexed block, or None."""
        e = self._chain.entries.get(block_hash)
        if e is None:
            return None
        return e.height, e.work, bool(e.status & HAVE_DATA), e.invalid

    def header(self, block_hash: bytes):
        e = self._chain.entries.get(block_hash)
        return e.header if e is not None else None

    def has_block(self, block_hash: bytes) -> bool:
        e = self._chain.entries.get(block_hash)
        return e is not None and (bool(e.status & HAVE_DATA) or e.invalid)

    def locator(self) -> list[bytes]:
        """Main-chain hashes from the tip back, densely then exponentially, ending at genesis."""
        c = self._chain
        out, step, h = [], 1, c.height
        while h > 0 and len(out) < 63:
            out.append(c.chain[h].hash)
            if len(out) >= 10:
                step *= 2
            h -= step
        out.append(c.chain[0].hash)
        return out

    def headers_after(self, locator, stop: bytes, limit: int) -> list[bytes]:
        """Raw main-chain headers after the first locator hash found on our main chain."""
        c = self._chain
        start = 0
        for h in locator:
            e = c.entries.get(h)
            if e is not None and c.on_main_chain(e):
                start = e.height
                break
        out = []
        for height in range(start + 1, min(c.height, start + limit) + 1):
            e = c.chain[height]
            out.append(e.header.to_wire())
            if e.hash == stop:
                break
        return out

    def raw_block(self, block_hash: bytes) -> bytes | None:
        # Served straight from the store: the stored bytes are the canonical encoding.
        return self._chain.store.raw_block(block_hash)

    def submit_block(self, block: Block) -> str:
        return self._submit_block(block)

    def submit_blocks(self, blocks: list[Block]) -> list:
        """Blocks that arrived together, connected together (node/chain/blockgroup.py): per
        block, what submit_block returns or the ValidationError it raises."""
        return process_blocks(self._chain, blocks)

    def add_tip_listener(self, fn) -> None:
        """fn(tip_hash, height) after the chain settles on a new tip."""
        def on_event(kind, block, entry):
            if kind == "tip":
                fn(entry.hash, entry.height)
        self._chain.listeners.subscribe(on_event)

    # --- transactions ----------------------------------------------------------------------
    def has_tx(self, txid: bytes) -> bool:
        return txid in self._mempool or self._chain.tx_location(txid) is not None

    def raw_tx(self, txid: bytes) -> bytes | None:
        tx = self._mempool.get(txid)
        return tx.to_bytes() if tx is not None else None

    def submit_tx(self, tx: Tx):
        return self._submit_tx(tx)
