"""dumpzone: the signed bit. zone at the tip, so `dotbit-node zone export` works while the node
runs (LevelDB admits one process, and the running node holds it)."""
from __future__ import annotations

from node.resolver.identity import load_or_create
from node.resolver.service import default_key_path
from node.resolver.zone.signed import ZoneCache
from node.rpc.registry import rpc


def _zones(node):
    if node.resolver is not None:
        return node.resolver.zones
    # No resolver running: sign with the key the resolver would use (dnssec-anchor's default).
    return ZoneCache(node.chain, node.params, load_or_create(default_key_path(node.datadir)))


@rpc()
async def dumpzone(node) -> dict:
    """The DNSSEC-signed bit. zone of every live name at the current tip, in BIND master-file
    format: {"serial", "tip", "zone"}. Signed with the resolver's key; the same zone AXFR gives."""
    zone = await _zones(node).current()
    return {"serial": zone.serial, "tip": zone.tip_hash.hex(), "zone": zone.text()}
