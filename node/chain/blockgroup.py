"""Blocks that arrive together are connected together (ChainState.process_block, one group).

A syncing node gets its blocks in bursts: a peer answers a getdata of up to 16 blocks, and
while one block connects the next ones are already read off the socket. Connected one by one,
each block is checked and written alone. Stored first and then activated once, the group is
connected as a stored branch is in a reindex (ChainState._activate over a BlockFeed): the next
block's signature checks go to the workers while this one connects (SigPool.check_ahead).
Each block is still its own atomic batch, so a node killed mid-group restarts at the last
block written, as it would have one by one.

Every block gets the answer process_block would have given it alone: the checks before
storing raise as they did, and a block that fails to connect (or whose ancestor did) gets
the same ValidationError once the group has settled.
"""
from __future__ import annotations

from core.errors import ValidationError, outcome
from node.chain.blockcheck import send_ahead
from node.chain.blockindex import failure_reason
from node.chain.chaindb import CoinView


def verdict(chain, entry) -> str:
    """process_block's answer for a stored block once the chain has settled."""
    if entry.invalid:
        raise ValidationError(failure_reason(entry, chain.failure_reasons), 100,
                              "block or an ancestor failed to connect")
    return "active" if chain.on_main_chain(entry) else "side"


def _first_ahead(chain, first) -> None:
    """The group's first block's signature checks to the workers once it is stored (its
    sanity and header checks passed, as every block's checks sent ahead have), while the rest
    of the group is stored: the blocks after it get theirs while the one before connects, but
    nothing precedes the first. The coins read are kept for its connect, as send_ahead's
    always are (known_coins: only if the tip is still the same then)."""
    pool = chain.sigpool
    if pool.size and pool.workers and chain.verify_sigs and chain.chain and first.header.prev_hash == chain.tip.hash:
        chain._prefetch = first.hash, chain.tip, send_ahead(pool, first, None, CoinView(chain.db))


def process_blocks(chain, blocks: list) -> list:
    """process_block for each of `blocks`, in order, activating once they are all stored.
    Returns, per block, its status string or the ValidationError it raises alone."""
    if len(blocks) < 2:
        return [outcome(chain.process_block, b) for b in blocks]
    results: list = []
    chain.group = group = {}
    try:
        results = [outcome(chain.process_block, blocks[0])]
        if results[0] == "stored":
            _first_ahead(chain, blocks[0])
        results += [outcome(chain.process_block, b) for b in blocks[1:]]
        chain.group = None
        if group:
            chain._just_stored = group
            hint = max((chain.entries[h] for h in group), key=lambda e: e.work)
            try:
                chain._activate_best(hint)
            finally:
                chain._just_stored = {}
    finally:
        chain.group = None
    for h in group:
        chain._connect_orphans(h)
    return [outcome(verdict, chain, chain.entries[b.hash]) if r == "stored" else r
            for b, r in zip(blocks, results)]
