"""Reorgs across merge-mined blocks between node processes over p2p: a longer merge-mined
branch replaces a nonce-mined tip, and a longer nonce-mined branch replaces it again; both
nodes end on the same tip, and a restarted node keeps its AuxPoW blocks."""
from __future__ import annotations

from core.primitives import Block
from support.auxpow import auxpow_for
from support.chain import Key
from support.harness import NodeProcess
from support.p2p import wait_until

A, B = Key.from_seed(61), Key.from_seed(62)


def merge_mine(node, n: int) -> list[str]:
    out = []
    for _ in range(n):
        aux = node.call("createauxblock", A.addr_text())
        assert node.call("submitauxblock", aux["hash"], auxpow_for(aux)) is True
        out.append(aux["hash"])
    return out


def test_reorgs_across_merge_mined_blocks(tmp_path):
    n1 = NodeProcess(str(tmp_path / "n1"), "--no-listen").start()
    n2 = NodeProcess(str(tmp_path / "n2")).start()
    try:
        for h in n1.call("generatetoaddress", 10, A.addr_text()):
            assert n2.call("submitblock", n1.call("getblock", h, 0)) is None
        merged = merge_mine(n1, 3)                            # n1: 3 merge-mined blocks
        mined = n2.call("generatetoaddress", 2, B.addr_text())  # n2: 2 on its own nonce
        n1.call("addnode", n2.p2p_addr, "onetry")
        wait_until(lambda: n2.call("getbestblockhash") == merged[-1], 60, "n2 to take the merge-mined branch")
        assert n2.call("getblockhash", 11) == merged[0] != mined[0]
        n2.stop()
        n2 = NodeProcess(n2.datadir).start()                   # restart keeps the AuxPoW blocks
        block = Block.from_bytes(bytes.fromhex(n2.call("getblock", merged[-1], 0)))
        assert block.header.auxpow is not None and n2.call("getbestblockhash") == merged[-1]
        # A longer nonce-mined branch from the fork point, from a third node: both leave the
        # merge-mined blocks for it.
        n3 = NodeProcess(str(tmp_path / "n3"), "--no-listen").start()
        try:
            for height in range(1, 11):
                assert n3.call("submitblock", n1.call("getblock", n1.call("getblockhash", height), 0)) is None
            branch = n3.call("generatetoaddress", 4, B.addr_text())
            n3.call("addnode", n2.p2p_addr, "onetry")
            wait_until(lambda: n2.call("getbestblockhash") == branch[-1], 60, "n2 to leave the merge-mined branch")
            n1.call("addnode", n2.p2p_addr, "onetry")
            wait_until(lambda: n1.call("getbestblockhash") == branch[-1], 60, "n1 to leave it too")
        finally:
            n3.stop()
    finally:
        n1.stop()
        n2.stop()
