"""A reindex with --par 2 killed (SIGKILL) mid-way, with checks of the next block in its
signature worker, restarts consistent: each batch is one atomic write, so the store's tip is
the block before or the block itself, never a mix; reopening connects the rest, and every projection
equals a replay from genesis (checkdb).

The kill comes from the reindexing process itself, in the progress callback that runs just
after a connect returned, when the next block's checks are most likely out with the worker.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap

import pytest

from core.params import REGTEST
from node.chain import layout as L
from node.chain.chainstate import ChainState
from node.chain.storage import LevelDB
from node.chain.mempool import Mempool
from node.ops.maintenance import checkdb
from node.service import open_chain
from support.chain import Clock, Key, mine, spend

KEY = Key.from_seed(41)

KILLER = textwrap.dedent("""
    import os, signal, sys
    from core.params import REGTEST
    from node.service import open_chain

    def main():
        chain = open_chain(REGTEST, sys.argv[1], par=2)
        at = int(sys.argv[2])
        def progress(entry, target):
            if entry.height == at:
                os.kill(os.getpid(), signal.SIGKILL)
        chain.progress = progress
        chain.reindex()
        print("not killed")

    if __name__ == "__main__":
        main()
""")


@pytest.fixture(scope="module")
def stored_chain(tmp_path_factory):
    """A regtest chain of payments, its data dir and its tip."""
    d = str(tmp_path_factory.mktemp("reindex-kill"))
    clock = Clock(REGTEST.genesis_time + 600)
    chain = ChainState(LevelDB(os.path.join(d, "chain")), REGTEST, clock=clock)
    pool = Mempool(chain, REGTEST, clock=clock)
    mine(chain, pool, KEY.address, REGTEST.coinbase_maturity + 20, clock)
    for h in range(1, 60):
        cb = chain.get_block(chain.chain[h].hash).txs[0]
        pool.accept(spend(chain, KEY, [(cb.txid, 0)], [(KEY.address, 10_000 * h)] * 3))
        mine(chain, pool, KEY.address, 1, clock)
    tip, height = chain.tip.hash, chain.height
    chain.db.close()
    return d, tip, height


@pytest.mark.parametrize("trial", range(3))
def test_a_reindex_killed_mid_way_restarts_consistent(stored_chain, tmp_path, trial):
    src, tip, height = stored_chain
    d = str(tmp_path / "copy")
    subprocess.run(["cp", "-r", src, d], check=True)
    at = random.Random(20261202 + trial).randrange(40, height - 5)
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    r = subprocess.run([sys.executable, str(script), d, str(at)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == -9 and "not killed" not in r.stdout, (r.returncode, r.stderr[-2000:])
    db = LevelDB(os.path.join(d, "chain"))
    try:
        raw_tip = db.get(L.TIP)
        stored = {db.get(L.height_key(h)) for h in (at - 1, at)}
    finally:
        db.close()
    assert raw_tip in stored                  # the block before the kill, or the block itself
    chain = open_chain(REGTEST, d, par=1)     # reopening connects the stored blocks left
    try:
        assert chain.tip.hash == tip and chain.height == height
        assert checkdb(chain) == []
    finally:
        chain.sigpool.close()
        chain.db.close()
