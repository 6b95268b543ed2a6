"""Block templates: the next block on the tip with the mempool's best transactions."""
from __future__ import annotations

from dataclasses import dataclass

from core.consensus import bits_to_target, subsidy
from core.primitives import MAX_HEADER_WIRE, Block, Header, Tx, TxOut, block_merkle_root

COINBASE_RESERVE = 1000     # bytes kept free for the coinbase


@dataclass(frozen=True)
class Template:
    block: Block          # header with nonce 0, not yet solved
    height: int
    fees: int
    target: int


def create_template(chain, mempool, address: bytes, now: int, version: int = 1) -> Template:
    params = chain.params
    # The header's room includes an AuxPoW, since any template may end up merge-mined.
    budget = params.max_block_size - MAX_HEADER_WIRE - COINBASE_RESERVE
    # The pool holds only what this block may include (immature FIRSTUPDATEs are refused).
    txs = mempool.select(budget) if mempool is not None else []
    fees = sum(mempool.entries[t.txid].fee for t in txs)
    return assemble(chain, txs, fees, address, now, version)


def assemble(chain, txs, fees: int, address: bytes, now: int, version: int = 1) -> Template:
    """The unsolved next block on chain's tip holding `txs` (already valid, parents first)."""
    params = chain.params
    prev = chain.tip
    height = prev.height + 1
    coinbase = Tx(1, (), (TxOut(subsidy(height, params) + fees, address),), height)
    all_txs = (coinbase, *txs)
    name_root = chain.names.root_after(all_txs, height, prev.header.name_root)
    header = Header(version, prev.hash, block_merkle_root(all_txs), name_root,
                    max(int(now), chain.earliest_time_after(prev)), chain.next_bits_after(prev), 0)
    return Template(Block(header, all_txs), height, fees, bits_to_target(header.bits))
