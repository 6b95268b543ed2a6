"""The house rules of DESIGN §1, checked from the source (AST) so a forbidden import fails
`make test` instead of waiting for a reviewer:

- core/ imports nothing else of the project (it is what every party agrees on);
- light/, wallet/ and p2p/ import only core/ and their own package;
- connect/ (tools that connect with what names publish) imports only core/, light/ and
  itself, and nothing else of the project imports it;
- tunnel/ (dotbit-tunnel) imports only core/, light/ and itself, and nothing imports it (a
  tool at the edge: the node, wallet and light client never depend on it);
- only storage code knows the LevelDB key table (node/chain/layout.py);
- no two modules import each other (a lazy import inside a function counts too: it hides
  the cycle, it does not remove it).

Each rule is also shown to fire on a small synthetic tree, so the check itself cannot rot
into one that passes everything.
"""
from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ("core", "light", "wallet", "p2p", "node", "connect", "tunnel")
ONLY = {"core": {"core"}, "light": {"core", "light"}, "wallet": {"core", "wallet"}, "p2p": {"core", "p2p"},
        "connect": {"core", "light", "connect"}, "tunnel": {"core", "light", "tunnel"}}
# Programs at the edge: they use the rest, nothing of the rest may depend on them.
LEAVES = ("connect", "tunnel")
KEY_TABLE = "node.chain.layout"
# The chain store and the stores/projections that write their own keys into a block's batch
# (or keep their own records): the only code that may read or build LevelDB keys.
KEY_OWNERS = ("node.chain.", "node.names.index", "node.resolver.ekeys", "node.resolver.ca.store",
              "node.resolver.zone.store")


def modules(root: str) -> dict[str, str]:
    """module name -> file path, for every .py file of the project packages under root."""
    out = {}
    for pkg in PACKAGES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, pkg)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for f in filenames:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(dirpath, f), root)[:-3].replace(os.sep, ".")
                    out[rel.removesuffix(".__init__")] = os.path.join(dirpath, f)
    return out


def imports_of(name: str, path: str, known: dict) -> set[str]:
    """The project modules `name` imports, anywhere in the file, relative imports resolved and
    `from pkg import mod` counted as the module."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.update(f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES and m != name}


def violations(root: str) -> list[str]:
    known = modules(root)
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    bad = []
    for name, deps in sorted(graph.items()):
        allowed = ONLY.get(name.split(".")[0])
        for dep in sorted(deps):
            if allowed is not None and dep.split(".")[0] not in allowed:
                bad.append(f"{name} imports {dep}: {name.split('.')[0]}/ may import only "
                           + " and ".join(sorted(allowed)))
            if dep.split(".")[0] in LEAVES and name.split(".")[0] != dep.split(".")[0]:
                bad.append(f"{name} imports {dep}: nothing imports {dep.split('.')[0]}/")
            if dep == KEY_TABLE and not name.startswith(KEY_OWNERS):
                bad.append(f"{name} imports the key table {KEY_TABLE}: only storage code may")
            if dep < name and name in graph.get(dep, ()):
                bad.append(f"{dep} and {name} import each other")
    return bad


def test_the_project_keeps_the_rules():
    assert violations(ROOT) == []


def _tree(tmp_path, files: dict[str, str]) -> str:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(tmp_path).parents:
            if str(parent) != ".":
                (tmp_path / parent / "__init__.py").touch()
        path.write_text(text)
    return str(tmp_path)


BASE = {"core/primitives.py": "", "node/chain/layout.py": "", "node/chain/storage.py":
        "from node.chain import layout\n", "node/service.py": "import core.primitives\n"}


@pytest.mark.parametrize("files, expected", [
    ({"core/rules.py": "from node.service import x\n"},
     "core.rules imports node.service: core/ may import only core"),
    ({"core/rules.py": "def f():\n    import p2p.peer\n", "p2p/peer.py": ""},
     "core.rules imports p2p.peer: core/ may import only core"),
    ({"light/verify.py": "from node.chain.storage import LevelDB\n"},
     "light.verify imports node.chain.storage: light/ may import only core and light"),
    ({"wallet/cli.py": "from node import config\n", "node/config.py": ""},
     "wallet.cli imports node.config: wallet/ may import only core and wallet"),
    ({"p2p/sync.py": "from ..node.chain import storage\n"},
     "p2p.sync imports node.chain.storage: p2p/ may import only core and p2p"),
    ({"connect/cli.py": "from node.service import Service\n", "node/service.py": ""},
     "connect.cli imports node.service: connect/ may import only connect and core and light"),
    ({"node/cli.py": "def f():\n    from connect import cli\n", "connect/cli.py": ""},
     "node.cli imports connect.cli: nothing imports connect/"),
    ({"light/cli.py": "import connect.tls\n", "connect/tls.py": ""},
     "light.cli imports connect.tls: nothing imports connect/"),
    ({"node/rpc/methods.py": "from node.chain import layout as L\n"},
     "node.rpc.methods imports the key table node.chain.layout: only storage code may"),
    ({"node/ops/maintenance.py": "import node.chain.layout\n"},
     "node.ops.maintenance imports the key table node.chain.layout: only storage code may"),
    ({"tunnel/client.py": "from node.service import Node\n"},
     "tunnel.client imports node.service: tunnel/ may import only core and light and tunnel"),
    ({"tunnel/client.py": "", "node/cli.py": "from tunnel import client\n"},
     "node.cli imports tunnel.client: nothing imports tunnel/"),
    ({"node/a.py": "from . import b\n", "node/b.py": "def f():\n    from node.a import g\n"},
     "node.a and node.b import each other"),
])
def test_each_rule_fires_on_a_synthetic_tree(tmp_path, files, expected):
    root = _tree(tmp_path, {**BASE, **files})
    assert expected in violations(root)


def test_a_clean_synthetic_tree_passes(tmp_path):
    root = _tree(tmp_path, {**BASE, "light/cli.py": "from core import primitives\nfrom . import verify\n",
                            "light/verify.py": "from core.primitives import Header\n",
                            "connect/cli.py": "from light import verify\nfrom core import primitives\n",
                            "node/resolver/ekeys.py": "from node.chain import layout as L\n",
                            "tunnel/client.py": "from light import verify\nfrom core import primitives\n"})
    assert violations(root) == []
