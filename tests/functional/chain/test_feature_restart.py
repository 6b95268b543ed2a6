"""A real regtest node process: mine over RPC, SIGKILL it (also at random moments while it
mines), restart it: same tip, and `checkdb` confirms projections equal a replay."""
from __future__ import annotations

import random
import time

from support.harness import NodeProcess, run_cli


def checkdb(datadir: str) -> None:
    r = run_cli("--regtest", "--datadir", datadir, "checkdb")
    assert r.returncode == 0, r.stderr + r.stdout


def test_kill_and_restart(tmp_path):
    d = str(tmp_path / "n")
    node = NodeProcess(d).start()
    try:
        hashes = node.call("generate", 110)
        assert len(hashes) == 110 and node.call("getblockcount") == 110
        tip = node.call("getbestblockhash")
        assert tip == hashes[-1]
    finally:
        node.kill()
    node = NodeProcess(d).start()
    try:
        assert node.call("getbestblockhash") == tip
    finally:
        node.stop()
    checkdb(d)


def test_kill_at_random_moments_while_mining(tmp_path):
    rng = random.Random(1234)
    d = str(tmp_path / "m")
    last_height = 0
    for _ in range(4):
        node = NodeProcess(d, "--mine", "--mine-interval", "0.01").start()
        try:
            time.sleep(rng.uniform(0.3, 1.5))
        finally:
            node.kill()
        node = NodeProcess(d).start()
        try:
            height = node.call("getblockcount")
            assert height >= last_height
            last_height = height
            info = node.call("getblockchaininfo")
            assert info["bestblockhash"] == node.call("getblockhash", height)
        finally:
            node.stop()
        checkdb(d)
    assert last_height > 0
