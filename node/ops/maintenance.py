"""`reindex` and `checkdb`: the projections are a pure function of the stored blocks."""
from __future__ import annotations

import sys
import time

from node.chain.chaindb import ChainDB
from node.chain.chainstate import ChainState
from node.chain.storage import MemoryDB


class Progress:
    """A one-line progress bar on stderr: height, percent and blocks/s."""

    def __init__(self, label: str, stream=sys.stderr):
        self.label = label
        self.stream = stream
        self.start = time.monotonic()
        self.last = 0.0
        self.count = 0

    def __call__(self, entry, target) -> None:
        if not target.height:        # genesis, connected alone before the rest: no "0/0" line
            return
        self.count += 1
        now = time.monotonic()
        if now - self.last < 0.5 and entry is not target:
            return
        self.last = now
        rate = self.count / max(now - self.start, 1e-9)
        pct = 100.0 * entry.height / max(target.height, 1)
        self.stream.write(f"\r{self.label}: height {entry.height}/{target.height} ({pct:5.1f}%) "
                          f"{rate:8.1f} blocks/s")
        if entry is target:
            self.stream.write("\n")
        self.stream.flush()


def reindex(chain: ChainState, show_progress: bool = True) -> None:
    chain.progress = Progress("reindex") if show_progress else None
    try:
        chain.reindex()
    finally:
        chain.progress = None


def replay_projection(chain: ChainState, show_progress: bool = False) -> tuple[MemoryDB, list[str]]:
    """Feed the main chain's stored blocks to a fresh in-memory chain state: its store, and
    the main-chain blocks whose stored body could not be replayed (the replay stops there)."""
    fresh = ChainState(MemoryDB(), chain.params, clock=chain.clock)
    fresh.sigpool = chain.sigpool        # the same workers (and --par) as the chain being checked
    progress = Progress("checkdb") if show_progress else None
    for e in chain.chain[1:]:
        block = chain.store.whole_block(e.hash)
        if block is None:
            return fresh.db, [f"block {e.hash.hex()} at {e.height}: {chain.store.body_damage(e.hash)}; "
                              "run reindex (it drops the body and the node fetches it again from peers)"]
        fresh.process_block(block)
        if progress:
            progress(e, chain.tip)
    return fresh.db, []


def checkdb(chain: ChainState, show_progress: bool = False) -> list[str]:
    """Differences between the stored projections and a replay from genesis (empty = good)."""
    replayed, damaged = replay_projection(chain, show_progress)
    return damaged or chain.store.compare_projections(ChainDB(replayed))
