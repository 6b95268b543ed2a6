"""A light client and a wallet run on a machine without LevelDB (DESIGN §1).

A fresh Python process blocks plyvel (`sys.modules["plyvel"] = None`, so `import plyvel`
raises ImportError) before it imports anything of the project, imports every module of core/,
light/ and wallet/, then, against a real regtest node, resolves a registered name with the
light client library (headers synced, proofs checked) and calls the node with the wallet's
RPC client. plyvel is imported lazily by the node's store, so merely importing
node.chain.storage would not trip the block: the process also checks that no module of node/
was loaded at all.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support.light import resolver_key
from support.resolver import started_resolver_node

from support.harness import ROOT
NAME, IP = b"d/noleveldb", "198.51.100.42"

# Runs in the child; everything before the first project import blocks LevelDB.
BLOCK = 'import sys\nsys.modules["plyvel"] = None\n'
CHILD = BLOCK + r'''
import asyncio, importlib, json, pkgutil

args = json.loads(sys.argv[1])
try:
    import plyvel  # noqa: F401
    blocked = False
except ImportError:
    blocked = True

imported = []
for pkg in ("core", "light", "wallet"):
    root = importlib.import_module(pkg)
    imported.append(pkg)
    for info in pkgutil.walk_packages(root.__path__, pkg + "."):
        importlib.import_module(info.name)
        imported.append(info.name)

from core.params import REGTEST
from light.client import LightClient
from wallet.nodeclient import NodeClient


async def resolve():
    async with LightClient(REGTEST, args["light_dir"], args["url"], args["pin"]) as c:
        return await c.resolve(args["fqdn"], "A")

ans = asyncio.run(resolve())
node = NodeClient(args["rpc"], args["cookie"])
shown = node.call("name_show", args["name"])
print(json.dumps({
    "blocked": blocked, "plyvel": repr(sys.modules.get("plyvel", "gone")), "imported": imported,
    "node_modules": sorted(m for m in sys.modules if m == "node" or m.startswith("node.")),
    "trust": ans.trust, "status": ans.status, "height": ans.height,
    "records": [[r.owner, r.rtype, r.rdata] for r in ans.records],
    "proven": sorted(n.decode() for n in ans.proven),
    "tip": node.call("getblockcount"), "value": shown["value"],
}))
'''


def _register(node) -> None:
    node.fund(blocks=105)
    node.register({NAME: {"ip": [IP]}})


@pytest.fixture(scope="module")
def node():
    yield from started_resolver_node(_register)


def _child(code: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_light_client_and_wallet_without_leveldb(node, tmp_path):
    args = {"url": f"http://127.0.0.1:{node.http_port}", "pin": resolver_key(node).fingerprint,
            "rpc": f"http://127.0.0.1:{node.rpc_port}", "cookie": os.path.join(node.datadir, ".cookie"),
            "fqdn": "noleveldb.bit.", "name": NAME.decode(), "light_dir": str(tmp_path)}
    r = _child(CHILD, json.dumps(args))
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["blocked"] and got["plyvel"] == "None"
    assert {"light.client", "light.verify", "light.cli", "wallet.cli", "wallet.nodeclient",
            "core.names.proof"} <= set(got["imported"])
    assert got["node_modules"] == []
    assert got["trust"] == "proofs" and got["status"] == "NOERROR"
    assert got["records"] == [["noleveldb.bit.", "A", IP]] and got["proven"] == [NAME.decode()]
    assert got["tip"] >= got["height"] and json.loads(got["value"]) == {"ip": [IP]}


def test_the_block_is_real(tmp_path):
    """The same prelude stops the node's LevelDB store, so the test above would have failed had
    light/ or wallet/ reached it."""
    r = _child(BLOCK + f"from node.chain.storage import LevelDB\nLevelDB({str(tmp_path)!r})\n")
    assert r.returncode != 0 and "import of plyvel halted" in r.stderr
