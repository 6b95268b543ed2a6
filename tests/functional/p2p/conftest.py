"""P2P-area fixtures: a prebuilt chain the tests copy into fresh node data dirs."""
from __future__ import annotations

import pytest

from support.p2p import build_chain


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    return build_chain(str(tmp_path_factory.mktemp("cache")), 300)
