"""Resolver-area fixtures: a resolver node funded with support.resolver.sample_names(); the
zone, DANE and CA tests define their own `node`, which overrides this one."""
from __future__ import annotations

import pytest

from support.resolver import started_resolver_node

node = pytest.fixture(scope="module")(started_resolver_node)
