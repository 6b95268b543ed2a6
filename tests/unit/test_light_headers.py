"""Header sync of the light client in-process: the source is the injected `fetch(start,
count)` over a list of regtest headers built here, so forks and bad headers are easy to make.
Covers extension, resumption after a torn write, most-work fork choice, each header rule,
checkpoints, and another network's store."""
from __future__ import annotations

import asyncio
import os
from dataclasses import replace

import pytest

from core.consensus import bits_to_target, next_bits
from core.crypto import sha256d
from core.primitives import Header
from node.mining.miner import solve_quick
from core.params import MAIN, REGTEST
from light.headers import HeaderStore, StoreError, sync, sync_locator
from light.verify import VerifyError

GENESIS = REGTEST.genesis.header
TARGET = bits_to_target(GENESIS.bits)
NOW = GENESIS.time + 100_000


def grow(chain: list[bytes], n: int, salt: int = 0, **changes) -> list[bytes]:
    """chain plus n solved headers one second apart; `salt` in merkle_root makes forks differ."""
    out = list(chain)
    for _ in range(n):
        prev = Header.from_bytes(out[-1])
        h = Header(1, prev.hash, salt.to_bytes(32, "little"), bytes(32), prev.time + 1, GENESIS.bits, 0)
        out.append(solve_quick(replace(h, **changes), TARGET).to_bytes())
    return out


def source(chain: list[bytes]):
    async def fetch(start: int, count: int) -> list[bytes]:
        return chain[start:start + count]
    return fetch


def run(store, chain, **kw) -> int:
    return asyncio.run(sync(store, source(chain), lambda: NOW, **kw))


BASE = grow([GENESIS.to_bytes()], 30)


def test_extend_and_resume(tmp_path):
    store = HeaderStore(str(tmp_path), REGTEST)
    assert run(store, BASE[:11]) == 10
    assert run(store, BASE) == 30 and store.chain == BASE
    path = os.path.join(str(tmp_path), "headers.dat")
    with open(path, "r+b") as f:
        f.truncate(112 * 20 + 57)                  # a torn append
    store = HeaderStore(str(tmp_path), REGTEST)
    assert store.height == 19
    assert run(store, BASE) == 30 and os.path.getsize(path) == 112 * 31


def test_most_work_fork_wins(tmp_path):
    store = HeaderStore(str(tmp_path), REGTEST)
    run(store, BASE)
    shorter = grow(BASE[:20], 5, salt=1)
    assert run(store, shorter) == 30 and store.chain == BASE          # less work: kept ours
    longer = grow(BASE[:3], 40, salt=2)
    assert run(store, longer) == 42 and store.chain == longer          # deep reorg to more work
    assert HeaderStore(str(tmp_path), REGTEST).chain == longer        # and it is on disk


@pytest.mark.parametrize("bad,reason", [
    (lambda prev: Header(1, bytes(32), bytes(32), bytes(32), prev.time + 1, GENESIS.bits, 0), "does not link"),
    (lambda prev: Header(1, prev.hash, bytes(32), bytes(32), prev.time + 1, 0x1F7FFFFF, 0), "bad-diffbits"),
    (lambda prev: Header(1, prev.hash, bytes(32), bytes(32), prev.time - 20, GENESIS.bits, 0), "time-too-old"),
    (lambda prev: Header(1, prev.hash, bytes(32), bytes(32), NOW + 3 * 3600, GENESIS.bits, 0), "time-too-new"),
])
def test_bad_header_stops_sync_keeping_the_good_ones(tmp_path, bad, reason):
    hdr = bad(Header.from_bytes(BASE[10]))
    hdr = solve_quick(hdr, bits_to_target(hdr.bits))     # valid work for the bits it claims
    chain = BASE[:11] + [hdr.to_bytes()]
    store = HeaderStore(str(tmp_path), REGTEST)
    with pytest.raises(VerifyError, match=reason):
        run(store, chain)
    assert store.height == 10 and HeaderStore(str(tmp_path), REGTEST).height == 10


def test_bad_pow(tmp_path):
    prev = Header.from_bytes(BASE[10])
    h = Header(1, prev.hash, bytes(32), bytes(32), prev.time + 1, GENESIS.bits, 0)
    while int.from_bytes(sha256d(h.to_bytes()), "big") <= TARGET:
        h = replace(h, nonce=h.nonce + 1)
    with pytest.raises(VerifyError, match="high-hash"):
        run(HeaderStore(str(tmp_path), REGTEST), BASE[:11] + [h.to_bytes()])


def test_checkpoints(tmp_path):
    store = HeaderStore(str(tmp_path), REGTEST)
    assert run(store, BASE, checkpoints={5: sha256d(BASE[5])}) == 30
    other = HeaderStore(str(tmp_path / "b"), REGTEST)
    with pytest.raises(VerifyError, match="checkpoint"):
        run(other, BASE, checkpoints={5: bytes(32)})
    assert other.height == 4
    longer = grow(BASE[:3], 40, salt=3)               # more work, but without the checkpoint
    with pytest.raises(VerifyError, match="checkpoint"):
        run(store, longer, checkpoints={5: sha256d(BASE[5])})
    assert store.chain == BASE


def test_other_networks_store_is_refused(tmp_path):
    HeaderStore(str(tmp_path), REGTEST)
    with pytest.raises(StoreError, match="another network"):
        HeaderStore(str(tmp_path), MAIN)


def test_retarget_rule(tmp_path):
    """Regtest never retargets, so a copy of it that does (every 10 blocks) checks the rule:
    blocks 1 s apart instead of 600 s make the target 4x harder (the clamp) at height 10."""
    params = replace(REGTEST, retarget=True, retarget_interval=10)
    harder = next_bits(params, 9, GENESIS.bits, Header.from_bytes(BASE[9]).time, GENESIS.time)
    assert TARGET // 5 < bits_to_target(harder) <= TARGET // 4
    kept = BASE[:10] + grow(BASE[:10], 1)[10:]                        # old bits at height 10
    with pytest.raises(VerifyError, match="bad-diffbits"):
        asyncio.run(sync(HeaderStore(str(tmp_path / "a"), params), source(kept), lambda: NOW))
    prev = Header.from_bytes(BASE[9])
    h = solve_quick(Header(1, prev.hash, bytes(32), bytes(32), prev.time + 1, harder, 0), bits_to_target(harder))
    good = BASE[:10] + [h.to_bytes()]
    assert asyncio.run(sync(HeaderStore(str(tmp_path / "b"), params), source(good), lambda: NOW)) == 10


# --- p2p peers: getheaders with a locator of our chain ---------------------------------------

def peer(chain: list[bytes], sent: list | None = None):
    """A full node's answer to getheaders (node/chain/p2pview.headers_after): its headers after
    the first locator hash on its chain, at most 2000."""
    index = {sha256d(raw): h for h, raw in enumerate(chain)}

    async def ask(locator: list[bytes]) -> list[bytes]:
        start = next((index[h] for h in locator if h in index), 0)
        if sent is not None:
            sent.append(start)
        return chain[start + 1:start + 1 + 2000]
    return ask


def run_peer(store, ask, **kw) -> int:
    return asyncio.run(sync_locator(store, ask, lambda: NOW, **kw))


def test_peer_extends_in_batches_and_resumes(tmp_path):
    long = grow(BASE, 4100)
    store = HeaderStore(str(tmp_path), REGTEST)
    sent = []
    assert run_peer(store, peer(long[:1500])) == 1499
    assert run_peer(store, peer(long, sent)) == 4130 and store.chain == long
    assert sent == [1499, 1499 + 2000]      # resumed from our tip, then batch by batch until a short one


def test_peer_fork_with_more_work_wins_and_less_work_is_noted(tmp_path):
    store = HeaderStore(str(tmp_path), REGTEST)
    run(store, BASE)
    notes = []
    weaker = grow(BASE[:21], 5, salt=1)
    assert run_peer(store, peer(weaker), note=notes.append) == 30 and store.chain == BASE
    assert len(notes) == 1 and "less work" in notes[0] and "forked at 20" in notes[0]
    stronger = grow(BASE[:21], 15, salt=2)
    assert run_peer(store, peer(stronger), note=notes.append) == 35 and store.chain == stronger


def test_peer_lies_are_refused(tmp_path):
    store = HeaderStore(str(tmp_path), REGTEST)
    run(store, BASE[:11])
    other = grow([GENESIS.to_bytes()], 12, salt=3)

    async def unconnected(locator):
        return other[5:]                    # starts from a block we never sent in the locator
    with pytest.raises(VerifyError, match="header: the headers sent do not start"):
        run_peer(store, unconnected)
    bad = BASE[:20] + grow(BASE[:20], 3, bits=0x1d00ffff)[20:]
    with pytest.raises(VerifyError, match="header: height 20"):
        run_peer(store, peer(bad))
    assert store.chain == BASE[:20]          # the good headers before the bad one stay


def test_peer_deep_fork_below_a_sparse_locator_gap(tmp_path):
    """Our locator jumps over thousands of heights deep down; a peer forking there first sends
    a whole batch we hold, and the fork is still found and taken if it has more work."""
    ours = grow(BASE, 9000)
    store = HeaderStore(str(tmp_path), REGTEST)
    run(store, ours)
    theirs = grow(ours[:2101], 7000, salt=4)
    assert run_peer(store, peer(theirs)) == 9100 and store.chain == theirs


# --- merge-mined headers (AuxPoW) ------------------------------------------------------------

def grow_merged(chain: list[bytes], n: int, salt: int = 0) -> list[bytes]:
    """chain (wire form) plus n merge-mined headers."""
    from support.auxpow import merge
    from node.mining.auxbuild import aux_header
    out = list(chain)
    for _ in range(n):
        prev = Header.from_wire(out[-1])
        h = aux_header(Header(1, prev.hash, salt.to_bytes(32, "little"), bytes(32), prev.time + 1, GENESIS.bits, 0),
                       REGTEST.auxpow_chain_id)
        out.append(merge(h, TARGET, REGTEST.auxpow_chain_id).to_wire())
    return out


MERGED = grow_merged(BASE[:REGTEST.auxpow_height], 20)


def test_merge_mined_headers_sync_and_store_112_bytes(tmp_path):
    store = HeaderStore(str(tmp_path), REGTEST)
    assert len(MERGED[-1]) > 112
    assert run(store, MERGED[:15]) == 14
    assert run(store, MERGED) == len(MERGED) - 1            # resumes: our tip matches its wire form
    assert store.chain == [raw[:112] for raw in MERGED]
    assert os.path.getsize(os.path.join(str(tmp_path), "headers.dat")) == 112 * len(MERGED)
    d = os.path.join(str(tmp_path), "p2p")
    assert run_peer(HeaderStore(d, REGTEST), peer(MERGED)) == len(MERGED) - 1


def test_merge_mined_fork_with_more_work_wins(tmp_path):
    store = HeaderStore(str(tmp_path), REGTEST)
    run(store, MERGED)
    fork = grow_merged(MERGED[:15], 20, salt=1)            # 35 headers against 30
    assert run(store, fork) == len(fork) - 1 and store.chain == [raw[:112] for raw in fork]


def test_spoiled_or_early_auxpow_stops_sync(tmp_path):
    from core.auxpow import AuxPow
    store = HeaderStore(str(tmp_path), REGTEST)
    h = Header.from_wire(MERGED[12])
    spoiled = replace(h, auxpow=replace(h.auxpow, chain_index=1)).to_wire()
    with pytest.raises(VerifyError, match="height 12: auxpow-wrong-slot"):
        run(store, MERGED[:12] + [spoiled] + MERGED[13:])
    assert store.height == 11
    early = grow_merged(BASE[:5], 3)                      # AuxPoW below the activation height
    with pytest.raises(VerifyError, match="height 5: auxpow-before-activation"):
        run(HeaderStore(os.path.join(str(tmp_path), "e"), REGTEST), early)
    assert AuxPow.from_bytes(h.auxpow.to_bytes()) == h.auxpow
