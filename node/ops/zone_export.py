"""`dotbit-node zone export FILE`: write the DNSSEC-signed bit. zone for BIND, Knot or NSD.

An operator runs this from cron next to a running node, so it works both ways: with the node
stopped it opens the chain itself; while a node holds the database (LevelDB admits one
process) it asks that node over JSON-RPC (`dumpzone`), which signs with the key its resolver
uses. Either way it is the stored zone (node/resolver/zone/projection.py) AXFR serves, built
first when no resolver kept it up to the tip. The file is replaced atomically, so a secondary
loading it never reads half a zone.
"""
from __future__ import annotations

import os
import sys

from node.resolver.identity import load_or_create
from node.resolver.service import default_key_path
from node.resolver.zone.projection import ZoneProjection
from node.resolver.zone.reader import zone_text
from node.service import open_chain

USAGE = "usage: dotbit-node [--datadir DIR] [--network NET] zone export FILE"


def _fail(msg: str, code: int = 1) -> int:
    print(f"dotbit-node: {msg}", file=sys.stderr)
    return code


def zone_command(params, datadir: str, args) -> int:
    if len(args.params) != 2 or args.params[0] != "export":
        return _fail(USAGE, 2)
    path = os.path.abspath(args.params[1])
    if not os.path.isdir(os.path.join(datadir, "chain")):
        return _fail(f"no chain in {datadir} (wrong --datadir or --network?)")
    try:
        serial, text = _offline(params, datadir, args)
    except OSError as e:
        if "lock" not in str(e).lower():
            raise
        serial, text = _via_rpc(params, datadir, args)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    rrs = sum(1 for line in text.splitlines() if line and not line.startswith("$"))
    print(f"zone bit. serial {serial}: {rrs} records written to {path}")
    return 0


def rebuild_zone(chain, params, key_path: str) -> int | None:
    """After reindex: the zone again, with the next serial, if this node has a resolver key
    (without one there is no zone to keep; a resolver's first start builds it)."""
    if not os.path.exists(key_path):
        return None
    zone = ZoneProjection(chain.db, params, load_or_create(key_path))
    zone.attach(chain)
    return zone.serial()


def _offline(params, datadir: str, args) -> tuple[int, str]:
    chain = open_chain(params, datadir)
    try:
        key = load_or_create(args.resolver_key or default_key_path(datadir))
        # The stored zone, built first if no resolver kept it up to this tip.
        ZoneProjection(chain.db, params, key).attach(chain)
        return zone_text(chain.db)
    finally:
        chain.db.close()


def _via_rpc(params, datadir: str, args) -> tuple[int, str]:
    from wallet.nodeclient import NodeError, OperatorClient
    client = OperatorClient(f"http://127.0.0.1:{args.rpc_port or params.rpc_port}",
                       os.path.join(datadir, ".cookie"), timeout=600.0)
    try:
        result = client.call("dumpzone")
    except NodeError as e:
        raise OSError(f"the chain is in use and its node did not answer over RPC (its --rpc-port?): {e}") from None
    finally:
        client.close()
    return result["serial"], result["zone"]
