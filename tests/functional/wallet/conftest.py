"""Wallet-area fixtures: a regtest node process with its mining address as `node.miner`
(test_wallet_minimalt overrides it with a resolver node)."""
from __future__ import annotations

import pytest

from support.harness import NodeProcess


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = NodeProcess(str(tmp_path_factory.mktemp("wallet-node")))
    n.start()
    n.miner = n.call("getminingaddress")
    yield n
    try:
        n.stop()
    except Exception:
        n.kill()
