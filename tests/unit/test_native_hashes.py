"""core/_hashes.c against the pure-Python functions it stands in for: same results on every
input, and the AuxPoW fast path never accepts what the reference decoder refuses."""
from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings, strategies as st

from core import crypto
from core.auxpow import MAX_AUXPOW_SIZE, MAX_CHAIN_BRANCH, MAX_COINBASE_BRANCH, AuxPow
from core.errors import DecodeError
from node.mining.auxbuild import coinbase_tx
from node.resolver.identity import LARGE_MESSAGE, ResolverKey

if os.environ.get("DOTBIT_REQUIRE_NATIVE"):
    from core import _hashes as native          # CI: the build must have made it (ImportError fails the run)
else:
    native = pytest.importorskip("core._hashes", reason="built without a compiler: pure-Python hashing in use")


def test_the_native_module_is_the_one_in_use():
    assert crypto.NATIVE and crypto.sha256d is native.sha256d
    assert crypto.merkle_branch_root is native.merkle_branch_root


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_sha256d_agrees(data):
    assert native.sha256d(data) == crypto.py_sha256d(data)
    assert native.sha256d(bytearray(data)) == crypto.py_sha256d(data)      # any bytes-like


_hash = st.binary(min_size=32, max_size=32)


@settings(max_examples=300, deadline=None)
@given(_hash, st.lists(_hash, max_size=40), st.integers(-2**70, 2**70))
def test_merkle_branch_root_agrees_for_any_index(leaf, branch, index):
    want = crypto.py_merkle_branch_root(leaf, branch, index)
    assert native.merkle_branch_root(leaf, tuple(branch), index) == want
    assert native.merkle_branch_root(leaf, branch, index) == want          # lists too


@pytest.mark.parametrize("leaf, branch", [
    (b"\x00" * 31, ()),                       # short leaf
    (b"\x00" * 32, (b"\x00" * 31,)),          # short sibling
    (b"\x00" * 32, ("x" * 32,)),              # not bytes
    (b"\x00" * 32, (b"\x00" * 32,) * 65),     # longer than any branch we allow
])
def test_merkle_branch_root_refuses_malformed_input(leaf, branch):
    with pytest.raises(ValueError):
        native.merkle_branch_root(leaf, branch, 0)


def _aux(rng: random.Random) -> bytes:
    cb = coinbase_tx(rng.randbytes(rng.randrange(1, 120)), [(rng.randrange(1 << 40), rng.randbytes(rng.randrange(60)))
                                                            for _ in range(rng.randrange(1, 4))])
    return AuxPow(cb, tuple(rng.randbytes(32) for _ in range(rng.randrange(12))),
                  tuple(rng.randbytes(32) for _ in range(rng.randrange(4))), rng.randrange(-2**31, 2**31),
                  rng.randbytes(80), rng.randrange(-3, 3), rng.randbytes(32)).to_bytes()


def _mutations(data: bytes, rng: random.Random):
    yield data
    yield data[:rng.randrange(len(data))]                        # truncated
    yield data + rng.randbytes(rng.randrange(1, 8))              # trailing bytes
    flipped = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    yield bytes(flipped)
    at = rng.randrange(len(data))                                # a length byte made large
    yield data[:at] + bytes([rng.choice((0xFD, 0xFE, 0xFF, 0xFC, 0x80))]) + data[at + 1:]


def _same_as_reference(data: bytes) -> None:
    got = native.parse_auxpow(data, MAX_COINBASE_BRANCH, MAX_CHAIN_BRANCH)
    try:
        want = AuxPow.parse(data)
    except DecodeError:
        assert got is None, "the native decoder took apart what the reference refuses"
        return
    assert got is not None, "a well-formed AuxPoW missed the fast path"
    assert AuxPow.from_bytes(data) == want and AuxPow.from_bytes(data).script == want.script


def test_parse_auxpow_agrees_on_valid_and_mangled_encodings():
    rng = random.Random(19)
    for _ in range(400):
        for data in _mutations(_aux(rng), rng):
            if len(data) <= MAX_AUXPOW_SIZE:
                _same_as_reference(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_parse_auxpow_agrees_on_arbitrary_bytes(data):
    _same_as_reference(data)


@pytest.mark.parametrize("size", [0, 150, LARGE_MESSAGE - 1, LARGE_MESSAGE, 3 * LARGE_MESSAGE])
def test_resolver_signatures_are_the_same_whichever_library_signs(size):
    key = ResolverKey(bytes(range(32)))
    message = random.Random(size).randbytes(size)
    sig = key.sign(message)
    assert sig == key.signing_key.sign(message).signature == key.crypto_key.sign(message)
    key.signing_key.verify_key.verify(message, sig)
