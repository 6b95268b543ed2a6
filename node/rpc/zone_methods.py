"""dumpzone: the signed bit. zone at the tip, so `dotbit-node zone export` works while the node
runs (LevelDB admits one process, and the running node holds it)."""
from __future__ import annotations

import asyncio

from node.resolver.identity import load_or_create
from node.resolver.service import default_key_path
from node.resolver.zone.projection import ZoneProjection
from node.resolver.zone.reader import zone_text
from node.rpc.registry import rpc


def _zone(node) -> ZoneProjection:
    if node.resolver is not None:
        return node.resolver.kept_zone()
    # No resolver: sign with the key the resolver would use (dnssec-anchor's default), and keep
    # the zone from now on (built once here, on the event loop so no block connects half way
    # through; later blocks only change it).
    zone = getattr(node, "_exported_zone", None)
    if zone is None:
        zone = node._exported_zone = ZoneProjection(node.chain.db, node.params,
                                                    load_or_create(default_key_path(node.datadir)))
        zone.attach(node.chain)
    return zone


@rpc()
async def dumpzone(node) -> dict:
    """The DNSSEC-signed bit. zone of every live name at the current tip, in BIND master-file
    format: {"serial", "tip", "zone"}. Signed with the resolver's key; the same zone AXFR gives."""
    _zone(node)
    # Read from a store snapshot in a worker thread: blocks keep connecting meanwhile.
    serial, text = await asyncio.get_running_loop().run_in_executor(None, zone_text, node.chain.db)
    return {"serial": serial, "tip": node.chain.tip.hash.hex(), "zone": text}
