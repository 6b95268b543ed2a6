"""Chain-area fixtures: one plain regtest node process per test module."""
from __future__ import annotations

import pytest

from support.harness import NodeProcess


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = NodeProcess(str(tmp_path_factory.mktemp("chain") / "node")).start()
    yield n
    n.stop()
