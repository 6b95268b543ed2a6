"""Merged mining (core/auxpow.py): the encoding, Namecoin's rules, and each rejection reason."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings, strategies as st

from core.auxpow import (AUXPOW_FLAG, MAX_AUXPOW_SIZE, AuxPow, aux_version, commitment, expected_index,
                         merkle_branch_root)
from core.consensus import bits_to_target, check_header_context, check_pow
from core.crypto import sha256d
from core.errors import DecodeError, ValidationError
from core.params import MAIN, REGTEST
from core.primitives import MAX_HEADER_WIRE, Block, Header
from node.mining.auxbuild import aux_tree
from support.auxpow import merge

CHAIN_ID = REGTEST.auxpow_chain_id
TARGET = bits_to_target(REGTEST.pow_limit_bits)


def _header(version=None) -> Header:
    return Header(aux_version(CHAIN_ID) if version is None else version, bytes(range(32)), b"\x11" * 32,
                  b"\x22" * 32, 1795305700, REGTEST.pow_limit_bits, 0)


def _reason(header: Header) -> str:
    with pytest.raises(ValidationError) as e:
        check_pow(header, header.hash, REGTEST)
    return e.value.reason


def test_valid_single_chain_auxpow_passes_and_round_trips():
    h = merge(_header(), TARGET, CHAIN_ID)
    check_pow(h, h.hash, REGTEST)
    wire = h.to_wire()
    assert len(wire) > 112 and wire[:112] == h.to_bytes()
    assert Header.from_wire(wire) == h
    assert Block.from_bytes(Block(h, ()).to_bytes()).header == h
    # Namecoin's expected index (its getExpectedIndex with nonce 0, chain ID 1, height 3)
    assert expected_index(0, 1, 3) == ((((12345 + 1) * 1103515245 + 12345) & 0xFFFFFFFF) % 8)


def test_merkle_tree_of_several_chains():
    h = _header()
    others = {1: b"\x99" * 32, 0x62: b"\x77" * 32}       # Namecoin and Dogecoin share the parent
    script, branches = aux_tree({CHAIN_ID: h.hash, **others}, 0, 3)
    branch, index = branches[CHAIN_ID]
    good = merge(h, TARGET, CHAIN_ID, script=b"\x01\x01" + script, chain_branch=branch, chain_index=index)
    check_pow(good, good.hash, REGTEST)
    # Another chain's slot for the same tree: our block's path leads to the same root, but
    # Namecoin's slot rule places dotbit elsewhere.
    wrong = (index + 1) % 8
    leaves_branch = branch            # reuse: the root computed from the wrong index differs
    bad = merge(h, TARGET, CHAIN_ID, chain_branch=leaves_branch, chain_index=wrong,
                tree_nonce=_nonce_not_giving(wrong, 3))
    assert _reason(bad) == "auxpow-wrong-slot"


def _nonce_not_giving(index: int, height: int) -> int:
    return next(n for n in range(1000) if expected_index(n, CHAIN_ID, height) != index)


@pytest.mark.parametrize("case, reason", [
    ("no-commitment", "auxpow-missing-commitment"),
    ("two-commitments", "auxpow-multiple-commitments"),
    ("misplaced", "auxpow-misplaced-commitment"),
    ("other-block", "auxpow-bad-chain-branch"),
    ("no-size-nonce", "auxpow-missing-size-nonce"),
    ("bad-size", "auxpow-bad-tree-size"),
    ("parent-claims-us", "auxpow-parent-chain-id"),
    ("short-pow", "auxpow-high-hash"),
    ("broken-coinbase-branch", "auxpow-bad-coinbase-branch"),
    ("not-coinbase", "auxpow-not-coinbase"),
    ("wrong-chain-id", "auxpow-wrong-chain-id"),
    ("flag-without-auxpow", "auxpow-flag-mismatch"),
    ("auxpow-without-flag", "auxpow-flag-mismatch"),
])
def test_each_rejection_has_its_own_reason(case, reason):
    h = _header()
    mm = commitment(h.hash, 1, 0)
    kw = {
        "no-commitment": dict(script=b"\x01\x01" + h.hash + bytes(8)),
        "two-commitments": dict(script=mm + mm),
        "misplaced": dict(script=commitment(bytes(32), 1, 0) + h.hash + bytes(8)),
        "other-block": dict(script=commitment(b"\x55" * 32, 1, 0)),
        "no-size-nonce": dict(script=mm[:-5]),
        "bad-size": dict(script=commitment(h.hash, 2, 0)),
        "parent-claims-us": dict(parent_version=aux_version(CHAIN_ID)),
        "short-pow": dict(short_pow=True),
        "broken-coinbase-branch": dict(other_txids=(b"\x44" * 32,), break_cb_branch=True),
        "not-coinbase": dict(coinbase_index=1),
    }.get(case, {})
    if case == "wrong-chain-id":
        h = _header(aux_version(1))                    # Namecoin's chain ID
    if case == "auxpow-without-flag":
        h = _header(1)
    mined = merge(h, TARGET, CHAIN_ID, **kw)
    if case == "flag-without-auxpow":
        mined = replace(mined, auxpow=None)
    assert _reason(mined) == reason


def test_auxpow_before_activation_is_refused_in_context():
    h = merge(_header(), TARGET, CHAIN_ID)
    times = [h.time - 100] * 20
    for height in (1, REGTEST.auxpow_height - 1):
        with pytest.raises(ValidationError) as e:
            check_header_context(h, height, h.bits, times.__getitem__, REGTEST, h.time)
        assert e.value.reason == "auxpow-before-activation"
    check_header_context(h, REGTEST.auxpow_height, h.bits, times.__getitem__, REGTEST, h.time)
    assert MAIN.auxpow_height > 0                   # never on main from genesis


def test_wire_mixes_are_decode_errors():
    h = merge(_header(), TARGET, CHAIN_ID)
    wire = h.to_wire()
    with pytest.raises(DecodeError):
        Header.from_wire(wire[:112])                 # flag, but no AuxPoW
    with pytest.raises(DecodeError):
        Header.from_wire(replace(h, version=1, auxpow=None).to_bytes() + wire[112:])   # AuxPoW, no flag
    with pytest.raises(DecodeError):
        Header.from_wire(wire + b"\x00")
    with pytest.raises(DecodeError):
        Header.from_wire(bytes(MAX_HEADER_WIRE + 1))


def test_merkle_branch_matches_namecoin_order():
    a, b = b"\x01" * 32, b"\x02" * 32
    assert merkle_branch_root(a, [b], 0) == sha256d(a + b)
    assert merkle_branch_root(a, [b], 1) == sha256d(b + a)


_hashes = st.lists(st.binary(min_size=32, max_size=32), max_size=5).map(tuple)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=300), _hashes, _hashes, st.integers(-2**31, 2**31 - 1),
       st.binary(min_size=80, max_size=80), st.binary(min_size=32, max_size=32))
def test_auxpow_encoding_round_trips(script, cb_branch, chain_branch, index, parent, legacy):
    from node.mining.auxbuild import coinbase_tx
    aux = AuxPow(coinbase_tx(script, [(1, b"\x51")]), cb_branch, chain_branch, index, parent, 0, legacy)
    assert AuxPow.from_bytes(aux.to_bytes()) == aux


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=MAX_AUXPOW_SIZE + 10))
def test_auxpow_decoder_fails_only_with_decode_error(data):
    try:
        aux = AuxPow.from_bytes(data)
    except DecodeError:
        return
    assert aux.to_bytes() == data                  # whatever decodes is canonical


def test_flag_bit_is_namecoins():
    assert AUXPOW_FLAG == 0x100 and aux_version(1) == 0x00010101


def test_mergemine_builds_a_parent_block_that_proves_work():
    from core.auxpow import parent_hash_int
    from node.mining.auxbuild import btc_merkle_levels, coinbase_tx, grind_parent
    from node.mining.mergemine import build_parent
    txs = [coinbase_tx(bytes([i, i]), [(i, b"\x51")]) for i in (1, 2, 3)]     # stand-ins for template txs
    tmpl = {"height": 300, "coinbasevalue": 50 * 10**8 + 30, "version": 0x20000000, "curtime": 1796155939,
            "previousblockhash": "11" * 32, "bits": "207fffff",
            "transactions": [{"data": t.hex(), "txid": sha256d(t)[::-1].hex(), "fee": 10} for t in txs]}
    h = _header()
    cb, header, body, branch = build_parent(tmpl, h.hash, 7, b"\x51")
    assert header[36:68] == btc_merkle_levels([sha256d(cb)] + [sha256d(t) for t in txs])[-1][0]
    assert body == b"\x04" + cb + b"".join(txs) and len(branch) == 2
    parent = grind_parent(header, TARGET)
    merged = replace(h, auxpow=AuxPow(cb, branch, (), 0, parent))
    check_pow(merged, merged.hash, REGTEST)
    assert parent_hash_int(parent) <= TARGET
    # a witness transaction in the template: the parent block keeps its coinbase alone
    tmpl["transactions"][0]["hash"] = "22" * 32
    cb2, header2, body2, branch2 = build_parent(tmpl, h.hash, 7, b"\x51")
    assert body2 == b"\x01" + cb2 and branch2 == () and header2[36:68] == sha256d(cb2)
