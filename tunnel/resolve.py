"""Where a tunnel goes, learned only through the light client's verified path: the answer's
proofs checked against headers we verified ourselves, the id_key from the proven name value
and the eph_key from that value or from an update signed by the name's proven owner
(light/verify.py). A resolver that lies is caught there and no datagram is ever sent.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from light.client import LightClient
from light.verdict import VerifyError


@dataclass(frozen=True, slots=True)
class ServerInfo:
    name: str            # the .bit name asked for, e.g. example.bit.
    host: str
    port: int
    id_key: bytes
    eph_key: bytes
    height: int          # the chain height the answer was checked at


async def resolve_server(client: LightClient, name: str) -> ServerInfo:
    fqdn = name.lower().rstrip(".") + "."
    v = await client.resolve(fqdn, "ANY")
    if v.status != "NOERROR":
        raise VerifyError("no-name", f"{fqdn} is proven not to exist")
    items = [m for m in v.minimalt if m.get("owner") == fqdn]
    if not items:
        raise VerifyError("no-minimalt", f"{fqdn} publishes no minimalT item")
    m = items[0]
    host = m.get("ip") or next((r.rdata for r in v.records if r.rtype == "A" and r.owner == fqdn), None)
    if host is None:
        host = next((r.rdata for r in v.records if r.rtype == "AAAA" and r.owner == fqdn), None)
    if host is None:
        raise VerifyError("no-address", f"{fqdn} publishes no address for its minimalT port")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise VerifyError("no-address", f"{fqdn}: {host!r:.60} is not an IP address") from None
    if not (isinstance(m.get("id_key"), bytes) and len(m["id_key"]) == 32
            and isinstance(m.get("eph_key"), bytes) and len(m["eph_key"]) == 32):
        raise VerifyError("no-minimalt", f"{fqdn}: the minimalT item has no usable keys")
    return ServerInfo(fqdn, host, int(m["port"]), m["id_key"], m["eph_key"], v.height)
