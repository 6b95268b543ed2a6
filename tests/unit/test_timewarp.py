"""feature_timewarp: a majority miner stamping blocks at median-time + 1 and each period's last
block at real time + 2 h cannot collapse the difficulty. BIP94's rule (a period's first block
no more than 600 s before its parent) lives once in core.consensus; the node's chain, p2p's
header tree and the light client's header sync all refuse the warped header through it."""
from __future__ import annotations

from dataclasses import replace

import pytest

from core.consensus import (MAX_FUTURE_SECONDS, MAX_TIMEWARP, bits_to_target, check_header_context,
                            earliest_time, median_time_at, required_bits, target_to_bits)
from core.errors import ValidationError
from core.params import MAIN, REGTEST
from core.primitives import Block, Header
from light.verify import VerifyError, extend_headers
from node.chain.chainstate import ChainState
from node.chain.mempool import Mempool
from node.chain.p2pview import NodeChainView
from node.chain.storage import MemoryDB
from node.mining.miner import solve_quick
from p2p.headers import HeaderTree
from support.chain import Clock, Key, make_block, mine

PERIODS = 7
START_BITS = target_to_bits(MAIN.pow_limit // 65_568)     # the starting difficulty


def replay_attack(guarded: bool) -> tuple[float, int]:
    """Main's parameters, headers only (check_header_context does not look at proof of work):
    one honest period, then PERIODS attacked ones, each block found 600 s of real time after
    the last. Returns (final target / start target, warped headers refused)."""
    n = MAIN.retarget_interval
    times = [MAIN.genesis_time + 600 * h for h in range(n)]
    bits = START_BITS
    refused = 0
    for height in range(n, n * (PERIODS + 1)):
        real = MAIN.genesis_time + 600 * height
        stamp = real + MAX_FUTURE_SECONDS if height % n == n - 1 else median_time_at(height, times.__getitem__) + 1
        prev_bits, bits = bits, required_bits(MAIN, height, bits, times.__getitem__)
        header = Header(1, bytes(32), bytes(32), bytes(32), stamp, bits, 0)
        if guarded:
            try:
                check_header_context(header, height, prev_bits, times.__getitem__, MAIN, real)
            except ValidationError as e:
                assert (e.reason, height % n) == ("time-timewarp-attack", 0)
                refused += 1
                # The attacker's best remaining move: the earliest time the rules allow.
                header = replace(header, time=earliest_time(MAIN, height, times.__getitem__))
                check_header_context(header, height, prev_bits, times.__getitem__, MAIN, real)
        times.append(header.time)
    return bits_to_target(bits) / bits_to_target(START_BITS), refused


def test_unguarded_replay_reproduces_the_collapse():
    # Without the period-start bound, the window of every period shrinks at its start.
    easier, _ = replay_attack(guarded=False)
    assert easier > 100


def test_timewarp_refused_and_difficulty_holds_on_main():
    easier, refused = replay_attack(guarded=True)
    assert refused == PERIODS                    # each period's warped first block
    # What is left: the one-off 2 h of the first warped period end, and 600 s a period.
    assert 0.99 < easier < 1.02                  # 7 attacked periods later (unguarded: ~390x)


def test_earliest_time_at_a_period_start():
    n = MAIN.retarget_interval
    times = [1000 + 600 * h for h in range(n)]
    times[-1] += 7200                            # the previous period ended 2 h "ahead"
    assert earliest_time(MAIN, n, times.__getitem__) == times[-1] - MAX_TIMEWARP
    assert earliest_time(MAIN, n - 1, times.__getitem__) == median_time_at(n - 1, times.__getitem__) + 1


# --- the same rule in the node, p2p and the light client -------------------------------------

RETARGETING = replace(REGTEST, retarget=True, retarget_interval=10)
MINER = Key.from_seed(91)


@pytest.fixture
def nine_blocks():
    """A regtest copy that retargets every 10 blocks, 9 blocks long, its last block 2 h ahead."""
    clock = Clock(RETARGETING.genesis_time)
    chain = ChainState(MemoryDB(), RETARGETING, clock=clock)
    pool = Mempool(chain, RETARGETING, clock=clock)
    mine(chain, pool, MINER.address, 8, clock)
    block = make_block(chain, pool, MINER.address, clock, time_offset=MAX_FUTURE_SECONDS)
    assert chain.process_block(block) == "active"
    return chain, pool, clock


def block_at(chain, pool, clock, time: int) -> Block:
    """The next block (height 10, a period start) stamped `time`, solved."""
    t = make_block(chain, pool, MINER.address, clock)
    return Block(solve_quick(replace(t.header, time=time), bits_to_target(t.header.bits)), t.txs)


def test_node_p2p_and_light_client_refuse_the_warped_header(nine_blocks):
    chain, pool, clock = nine_blocks
    prev_time = chain.tip.header.time
    assert prev_time - MAX_TIMEWARP - 1 > chain.tip.median_time_past()     # only BIP94 stops it
    warped = block_at(chain, pool, clock, prev_time - MAX_TIMEWARP - 1)
    fine = block_at(chain, pool, clock, prev_time - MAX_TIMEWARP)
    raws = [chain.entry_at(h).header.to_bytes() for h in range(10)]
    now = int(clock())

    with pytest.raises(VerifyError, match="time-timewarp-attack"):
        extend_headers(list(raws), [warped.header.to_bytes()], RETARGETING, now)
    light = list(raws)
    extend_headers(light, [fine.header.to_bytes()], RETARGETING, now)
    assert len(light) == 11

    tree = HeaderTree(NodeChainView(chain, pool, None, None), RETARGETING, clock)
    with pytest.raises(ValidationError) as e:
        tree.add(warped.header)
    assert e.value.reason == "time-timewarp-attack" and tree.best is None
    assert tree.add(fine.header).height == 10

    with pytest.raises(ValidationError) as e:
        chain.process_block(warped)
    assert e.value.reason == "time-timewarp-attack" and chain.height == 9
    assert chain.process_block(fine) == "active"


def test_template_respects_the_period_start_bound(nine_blocks):
    chain, pool, clock = nine_blocks
    # The miner's clock is behind the previous block by more than 600 s: the template
    # moves its time up to the bound instead of producing a block every peer refuses.
    t = make_block(chain, pool, MINER.address, clock)
    assert t.header.time == chain.tip.header.time - MAX_TIMEWARP
    assert chain.process_block(t) == "active"


def test_p2p_header_tree_checks_the_difficulty():
    clock = Clock(RETARGETING.genesis_time)
    chain = ChainState(MemoryDB(), RETARGETING, clock=clock)
    for _ in range(9):                                   # 1 s apart: height 10 is 4x harder
        clock.now += 1
        assert chain.process_block(make_block(chain, None, MINER.address, clock)) == "active"
    clock.now += 1
    t = make_block(chain, None, MINER.address, clock)
    old_bits = chain.tip.header.bits
    assert t.header.bits != old_bits
    easy = solve_quick(replace(t.header, bits=old_bits), bits_to_target(old_bits))
    tree = HeaderTree(NodeChainView(chain, None, None, None), RETARGETING, clock)
    with pytest.raises(ValidationError) as e:
        tree.add(easy)
    assert e.value.reason == "bad-diffbits" and tree.best is None
    assert tree.add(t.header).height == 10
