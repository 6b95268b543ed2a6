"""What p2p needs of the chain and the mempool, as an interface the node implements.

p2p depends on these methods only (and on the shared primitives), never on the node's chain
state or store; the node's implementation is node/chain/p2pview.py.
"""
from __future__ import annotations

from typing import Callable, Protocol

from core.primitives import Block, Header, Tx


class ChainView(Protocol):
    # --- chain ----------------------------------------------------------------------------
    @property
    def height(self) -> int: ...

    @property
    def tip_hash(self) -> bytes: ...

    def known(self, block_hash: bytes) -> tuple[int, int, bool, bool] | None:
        """(height, work, have_data, invalid) of an indexed block, or None."""

    def header(self, block_hash: bytes) -> Header | None:
        """The header of an indexed block (its ancestors are indexed too), or None."""

    def has_block(self, block_hash: bytes) -> bool:
        """True when the block is stored or known to be invalid (nothing left to fetch)."""

    def locator(self) -> list[bytes]:
        """Main-chain hashes from the tip back, densely then exponentially, ending at genesis."""

    def headers_after(self, locator, stop: bytes, limit: int) -> list[bytes]:
        """Raw main-chain headers after the first locator hash found on our main chain."""

    def raw_block(self, block_hash: bytes) -> bytes | None:
        """A stored block's canonical bytes, or None."""

    def submit_block(self, block: Block) -> str:
        """Accept a block as the node does (events included); ChainState.process_block's result."""

    def submit_blocks(self, blocks: list[Block]) -> list:
        """Optional: blocks that arrived together, accepted together; per block, submit_block's
        result or the ValidationError it raises. Without it, each goes to submit_block."""

    def add_tip_listener(self, fn: Callable[[bytes, int], None]) -> None:
        """fn(tip_hash, height) after the chain settles on a new tip."""

    # --- transactions ----------------------------------------------------------------------
    def has_tx(self, txid: bytes) -> bool:
        """True when the transaction is in the mempool or on the main chain."""

    def raw_tx(self, txid: bytes) -> bytes | None:
        """A mempool transaction's bytes, or None."""

    def submit_tx(self, tx: Tx):
        """Accept a transaction as the node does (relay included); raises ValidationError."""
