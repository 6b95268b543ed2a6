"""feature_timewarp against a real node process: the period-start rule holds on regtest too
(every network). Block 2015 is stamped almost 2 h ahead; block 2016, the first of a period,
is refused 601 s before it and accepted 600 s before it, and getblocktemplate's mintime says
so."""
from __future__ import annotations

import logging
import time
from dataclasses import replace

from core.consensus import MAX_TIMEWARP, bits_to_target
from core.params import REGTEST
from core.primitives import Block
from node.mining.miner import solve_quick
from support.chain import Key

log = logging.getLogger(__name__)
MINER = Key.from_seed(81)


def template_block(node, stamp: int) -> Block:
    t = node.call("getblocktemplate", {"address": MINER.addr_text()})
    block = Block.from_bytes(bytes.fromhex(t["block"]))
    header = replace(block.header, time=stamp)
    return Block(solve_quick(header, bits_to_target(header.bits)), block.txs)


def submit(node, block: Block):
    return node.call("submitblock", block.to_bytes().hex())


def test_first_block_of_a_period_is_bounded_by_its_parent(node):
    n = REGTEST.retarget_interval
    node.call("generatetoaddress", n - 2, MINER.addr_text())
    log.info("block %d: the previous period's last, stamped ~2 h ahead", n - 1)
    last = template_block(node, int(time.time()) + 7000)        # the node's clock: + 7200 at most
    assert submit(node, last) is None and node.call("getblockcount") == n - 1

    t = node.call("getblocktemplate")
    assert t["height"] == n and t["mintime"] == last.header.time - MAX_TIMEWARP
    assert t["curtime"] >= t["mintime"]
    log.info("block %d stamped 601 s before its parent is refused", n)
    assert submit(node, template_block(node, last.header.time - MAX_TIMEWARP - 1)) == "time-timewarp-attack"
    assert node.call("getblockcount") == n - 1
    assert submit(node, template_block(node, last.header.time - MAX_TIMEWARP)) is None
    assert node.call("getblockcount") == n
