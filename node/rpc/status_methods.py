"""`getnodestatus`: the operator's one-screen summary (what `dotbit-node status` prints and
/metrics exports), gathered in node/metrics.py so both read the same numbers."""
from __future__ import annotations

from node.rpc.registry import rpc


@rpc()
def getnodestatus(node) -> dict:
    """Network, heights and sync progress, tip age, peers, mempool, names count, resolver
    ports and key fingerprint, uptime."""
    return node.metrics.status()
