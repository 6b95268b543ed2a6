"""Pure consensus rules: compact bits, retarget with clamps and Bitcoin's look-back,
median time past, subsidy schedule, genesis constants."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings, strategies as st

from core.consensus import (COIN, bits_to_target, check_header_context, median_time_past,
                                  next_bits, subsidy, target_to_bits)
from core.errors import ValidationError
from core.params import MAIN, NETWORKS, REGTEST


def test_compact_known_values():
    assert bits_to_target(0x1D00FFFF) == 0xFFFF << 208
    assert target_to_bits(0xFFFF << 208) == 0x1D00FFFF
    assert bits_to_target(0x207FFFFF) == 0x7FFFFF << 232
    assert bits_to_target(0x01800000) == 0        # sign bit: invalid


@settings(max_examples=300, derandomize=True)
@given(st.integers(1, 2**255))
def test_compact_roundtrip_is_truncation(target):
    t2 = bits_to_target(target_to_bits(target))
    assert t2 <= target and target_to_bits(t2) == target_to_bits(target)
    assert (target - t2) < max(1, target >> 15)


def test_retarget():
    p = MAIN
    span = p.spacing * p.retarget_interval
    bits = 0x1C0FFFFF
    h = p.retarget_interval - 1
    assert next_bits(p, h - 1, bits, 0, None) == bits              # not a retarget height
    assert next_bits(p, h, bits, 1000 + span, 1000) == target_to_bits(bits_to_target(bits))
    faster = next_bits(p, h, bits, 1000 + span // 2, 1000)
    assert bits_to_target(faster) == bits_to_target(target_to_bits(bits_to_target(bits) // 2))
    clamped = next_bits(p, h, bits, 1000 + 1, 1000)                 # ×4 clamp
    assert bits_to_target(clamped) == bits_to_target(target_to_bits(bits_to_target(bits) // 4))
    easy = next_bits(p, h, p.pow_limit_bits, 1000 + 10 * span, 1000)
    assert easy == target_to_bits(p.pow_limit)                      # never above the limit
    assert next_bits(REGTEST, REGTEST.retarget_interval - 1, 0x207FFFFF, 5, 1) == 0x207FFFFF


def test_median_time_past_and_header_time():
    assert median_time_past([5, 1, 3]) == 3
    assert median_time_past(list(range(100))) == 94
    h = REGTEST.genesis.header
    at_100 = lambda height: 100                                      # noqa: E731 (every ancestor at 100)
    check_header_context(replace(h, time=101), 5, h.bits, at_100, REGTEST, 100)
    with pytest.raises(ValidationError) as e:
        check_header_context(replace(h, time=100), 5, h.bits, at_100, REGTEST, 100)
    assert e.value.reason == "time-too-old"
    with pytest.raises(ValidationError) as e:
        check_header_context(replace(h, time=101 + 7200), 5, h.bits, at_100, REGTEST, 100)
    assert e.value.reason == "time-too-new"
    with pytest.raises(ValidationError) as e:
        check_header_context(replace(h, time=101), 5, h.bits - 1, at_100, REGTEST, 100)
    assert e.value.reason == "bad-diffbits"


def test_subsidy():
    assert subsidy(0, MAIN) == 50 * COIN
    assert subsidy(209_999, MAIN) == 50 * COIN and subsidy(210_000, MAIN) == 25 * COIN
    assert subsidy(150, REGTEST) == 25 * COIN
    assert subsidy(150 * 64, REGTEST) == 0


def test_genesis_constants():
    hashes = set()
    for p in NETWORKS.values():
        g = p.genesis
        assert g.hash == p.genesis_hash
        assert int.from_bytes(g.hash, "big") <= bits_to_target(g.header.bits)
        hashes.add(g.hash)
    assert len(hashes) == len(NETWORKS)
    assert len({p.magic for p in NETWORKS.values()}) == len(NETWORKS)
    assert len({p.address_version for p in NETWORKS.values()}) == len(NETWORKS)
