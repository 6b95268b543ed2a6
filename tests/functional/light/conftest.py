"""Light-area fixtures: a resolver node carrying the light tests' names (test_light_dane
overrides it with its DANE node), the node's resolver key, and a lying proxy in front of it."""
from __future__ import annotations

import pytest

from support.light import resolver_key, started_light_node
from support.light_proxy import LyingProxy

node = pytest.fixture(scope="module")(started_light_node)


@pytest.fixture(scope="module")
def key(node):
    return resolver_key(node)


@pytest.fixture(scope="module")
def module_proxy(node, key):
    with LyingProxy(f"http://127.0.0.1:{node.http_port}", key) as p:
        yield p
