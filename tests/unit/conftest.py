"""Unit-test fixtures: params, a store (LevelDB and memory), a chain on it, its mempool and a
controllable clock. The helpers that build on them (Key, make_block, mine, spend) are in
support/chain.py."""
from __future__ import annotations

import pytest

from core.params import REGTEST
from node.chain.chainstate import ChainState
from node.chain.mempool import Mempool
from node.chain.storage import LevelDB, MemoryDB
from support.chain import Clock


@pytest.fixture
def params():
    return REGTEST


@pytest.fixture(params=["leveldb", "memory"])
def db(request, tmp_path):
    store = LevelDB(str(tmp_path / "db")) if request.param == "leveldb" else MemoryDB()
    yield store
    store.close()


@pytest.fixture
def clock(params):
    return Clock(params.genesis_time + 600)


@pytest.fixture
def chain(db, params, clock):
    return ChainState(db, params, clock=clock)


@pytest.fixture
def mempool(chain, params, clock):
    return Mempool(chain, params, clock=clock)
