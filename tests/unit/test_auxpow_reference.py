"""The AuxPoW checker (core/auxpow.py, tuned for header sync) against a plain reference.

check_auxpow and its decoder read fields in place and inline hashes for speed; this spells
Namecoin's rules out the obvious way (slices, one hash per call, no shortcuts) and requires
the same verdict, reason for reason, on valid AuxPoWs and on every byte flip of them: so a
shortcut that skipped or bent a rule would show up here.
"""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from core.auxpow import MERGED_MINING_MAGIC, AuxPow, check_auxpow, commitment, expected_index
from core.consensus import bits_to_target
from core.crypto import sha256d
from core.errors import DecodeError, ValidationError
from core.params import REGTEST
from core.primitives import Header
from node.mining.auxbuild import aux_tree
from support.auxpow import merge

CHAIN_ID = REGTEST.auxpow_chain_id
TARGET = bits_to_target(REGTEST.pow_limit_bits)


def _branch_root(leaf: bytes, branch, index: int) -> bytes:
    for sibling in branch:
        leaf = sha256d(sibling + leaf) if index % 2 else sha256d(leaf + sibling)
        index //= 2
    return leaf


def _reference(aux: AuxPow, block_hash: bytes) -> str:
    """Namecoin's CAuxPow::check, step by step; the reason, or "ok"."""
    if int.from_bytes(sha256d(aux.parent_header), "little") > TARGET:
        return "auxpow-high-hash"
    if struct.unpack("<I", aux.parent_header[:4])[0] // 65536 == CHAIN_ID:
        return "auxpow-parent-chain-id"
    if aux.coinbase_index != 0:
        return "auxpow-not-coinbase"
    if len(aux.chain_branch) > 30:
        return "auxpow-chain-branch-too-long"
    if _branch_root(sha256d(aux.coinbase_tx), aux.coinbase_branch, 0) != aux.parent_header[36:68]:
        return "auxpow-bad-coinbase-branch"
    root = _branch_root(block_hash[::-1], aux.chain_branch, aux.chain_index)[::-1]
    script = aux.script
    if MERGED_MINING_MAGIC not in script:
        return "auxpow-missing-commitment"
    head = script.index(MERGED_MINING_MAGIC)
    if MERGED_MINING_MAGIC in script[head + 1:]:
        return "auxpow-multiple-commitments"
    if script[head + 4:head + 36] != root:
        return "auxpow-misplaced-commitment" if root in script else "auxpow-bad-chain-branch"
    if len(script) < head + 44:
        return "auxpow-missing-size-nonce"
    size, nonce = struct.unpack("<II", script[head + 36:head + 44])
    if size != 2 ** len(aux.chain_branch):
        return "auxpow-bad-tree-size"
    if aux.chain_index != expected_index(nonce, CHAIN_ID, len(aux.chain_branch)):
        return "auxpow-wrong-slot"
    return "ok"


def _verdict(aux: AuxPow, block_hash: bytes) -> str:
    try:
        check_auxpow(aux, block_hash, CHAIN_ID, TARGET)
    except ValidationError as e:
        return e.reason
    return "ok"


def _merged(lone: bool) -> tuple[Header, bytes]:
    h = Header(0x00010101 | (CHAIN_ID << 16), bytes(range(32)), b"\x11" * 32, b"\x22" * 32, 1795305700,
               REGTEST.pow_limit_bits, 0)
    if lone:
        return merge(h, TARGET, CHAIN_ID), h.hash
    script, branches = aux_tree({CHAIN_ID: h.hash, 1: b"\x99" * 32, 0x62: b"\x77" * 32}, 0, 3)
    branch, index = branches[CHAIN_ID]
    return merge(h, TARGET, CHAIN_ID, script=b"\x01\x01" + script, chain_branch=branch, chain_index=index), h.hash


@pytest.mark.parametrize("lone", [True, False])
def test_valid_auxpow_agrees(lone):
    merged, block_hash = _merged(lone)
    assert _verdict(merged.auxpow, block_hash) == _reference(merged.auxpow, block_hash) == "ok"


@pytest.mark.parametrize("tail", range(9))
@pytest.mark.parametrize("other_txids", [(), (b"\x55" * 32, b"\x66" * 32, b"\x77" * 32)])
def test_commitment_tail_and_coinbase_branch_agree(tail, other_txids):
    """The tree size and nonce cut short byte by byte (the script ends there), with and
    without a coinbase branch: checked in place, they must fail exactly where the reference does."""
    merged, block_hash = _merged(True)
    script = b"\x03\x01\x02\x03" + commitment(block_hash, 1, 0)[:36 + tail]
    header = Header(*(getattr(merged, f) for f in ("version", "prev_hash", "merkle_root", "name_root", "time",
                                                  "bits", "nonce")))
    aux = merge(header, TARGET, CHAIN_ID, script=script, other_txids=other_txids).auxpow
    assert _verdict(aux, block_hash) == _reference(aux, block_hash)
    assert (_verdict(aux, block_hash) == "ok") == (tail >= 8)


@settings(max_examples=400, deadline=None)
@given(st.booleans(), st.data())
def test_every_byte_flip_gets_the_reference_verdict(lone, data):
    merged, block_hash = _merged(lone)
    wire = bytearray(merged.auxpow.to_bytes())
    at = data.draw(st.integers(0, len(wire) - 1), label="at")
    wire[at] ^= data.draw(st.integers(1, 255), label="xor")
    try:
        aux = AuxPow.from_bytes(bytes(wire))
    except DecodeError:
        return
    assert _verdict(aux, block_hash) == _reference(aux, block_hash)
