"""Encodings round-trip; decoding rejects trailing bytes, oversize input and wrong shapes;
ids come from the canonical re-encoding."""
from __future__ import annotations

from dataclasses import replace

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from core.auxpow import AUXPOW_FLAG, AuxPow
from core.encoding import pack
from core.errors import DecodeError
from core.primitives import (HEADER_SIZE, PLAIN, Block, Covenant, Header, Tx, TxIn, TxOut,
                                   checked_input_from_obj, input_from_obj, merkle_root)
from node.mining.auxbuild import coinbase_tx

b32 = st.binary(min_size=32, max_size=32)
u32 = st.integers(0, 2**32 - 1)
covenants = st.builds(Covenant, st.integers(0, 4), st.lists(st.binary(max_size=64), max_size=3).map(tuple))
txins = st.builds(TxIn, b32, u32, st.binary(min_size=64, max_size=64), st.binary(min_size=33, max_size=33))
txouts = st.builds(TxOut, st.integers(0, 2**63), st.binary(min_size=20, max_size=20), covenants)
txs = st.builds(Tx, u32, st.lists(txins, max_size=4).map(tuple), st.lists(txouts, min_size=1, max_size=4).map(tuple), u32)
_plain = st.builds(Header, u32.map(lambda v: v & ~AUXPOW_FLAG), b32, b32, b32, u32, u32, u32)
_auxpows = st.builds(AuxPow, st.binary(max_size=100).map(lambda s: coinbase_tx(s, [(1, b"\x51")])),
                     st.lists(b32, max_size=3).map(tuple), st.lists(b32, max_size=3).map(tuple),
                     st.integers(-2**31, 2**31 - 1), st.binary(min_size=80, max_size=80))
_merged = st.builds(Header, u32.map(lambda v: v | AUXPOW_FLAG), b32, b32, b32, u32, u32, u32, _auxpows)
# The AuxPoW flag in the version says whether an AuxPoW follows (core/auxpow.py).
headers = st.one_of(_plain, _merged)


@settings(max_examples=300, derandomize=True)
@given(txs)
def test_tx_roundtrip(tx):
    data = tx.to_bytes()
    back = Tx.from_bytes(data)
    assert back == tx and back.txid == tx.txid and back.wtxid == tx.wtxid
    with pytest.raises(DecodeError):
        Tx.from_bytes(data + b"\x00")


@settings(max_examples=200, derandomize=True)
@given(headers)
def test_header_roundtrip(h):
    assert Header.from_wire(h.to_wire()) == h
    with pytest.raises(DecodeError):
        Header.from_wire(h.to_wire() + b"\x00")
    h = replace(h, auxpow=None)          # the hashed 112 bytes alone
    data = h.to_bytes()
    assert len(data) == HEADER_SIZE and Header.from_bytes(data) == h
    with pytest.raises(DecodeError):
        Header.from_bytes(data + b"\x00")
    with pytest.raises(DecodeError):
        Header.from_bytes(data[:-1])


@settings(max_examples=100, derandomize=True)
@given(headers, st.lists(txs, min_size=1, max_size=4))
def test_block_roundtrip(h, tx_list):
    b = Block(h, tuple(tx_list))
    assert b.to_bytes() == pack(b.to_obj())          # joined from the txs' cached encodings
    assert Block.from_bytes(b.to_bytes()) == b
    with pytest.raises(DecodeError):
        Block.from_bytes(b.to_bytes() + b"\x90")


@settings(max_examples=20, derandomize=True)
@given(headers, txs, st.integers(14, 70))
def test_block_bytes_past_a_short_array(h, tx, n):
    """Past 15 txs msgpack's array header grows from one byte to three: the joined encoding
    still equals the whole block packed at once, whether the txs' bytes were cached or not."""
    b = Block(h, (tx,) * n)
    fresh = Block(h, tuple(Tx.from_bytes(tx.to_bytes()) for _ in range(n)))
    assert b.to_bytes() == fresh.to_bytes() == pack(b.to_obj())


def test_witness_not_in_txid():
    tx = Tx(1, (TxIn(bytes(32), 0, bytes(64), bytes(33)),), (TxOut(1, bytes(20)),))
    other = Tx(1, (TxIn(bytes(32), 0, b"\x01" * 64, bytes(33)),), (TxOut(1, bytes(20)),))
    assert tx.txid == other.txid and tx.wtxid != other.wtxid


def test_non_canonical_encoding_does_not_change_id():
    tx = Tx(7, (), (TxOut(5, bytes(20)),), 3)
    # the same tx with its integers widened (uint64 where a fixint suffices)
    obj = tx.to_obj()
    wide = b"\x94" + b"\xcf" + (7).to_bytes(8, "big") + pack(obj[1]) + pack(obj[2]) + b"\xcf" + (3).to_bytes(8, "big")
    assert wide != tx.to_bytes()
    back = Tx.from_bytes(wide)
    assert back == tx and back.txid == tx.txid and back.to_bytes() == tx.to_bytes()


@pytest.mark.parametrize("obj", [
    [1, [], [[1, b"x" * 20, [0]]]],                         # 3 fields
    [1, [], [[1, b"x" * 19, [0]]], 0],                      # short address
    [1, [], [[-1, b"x" * 20, [0]]], 0],                     # negative value
    [1, [], [[1, "x" * 20, [0]]], 0],                       # str instead of bin
    [1, [], [[True, b"x" * 20, [0]]], 0],                   # bool is not an int
    [1, [[b"t" * 32, 0, [b"s" * 64]]], [[1, b"x" * 20, [0]]], 0],   # witness of 1
    [1, [], [[1, b"x" * 20, []]], 0],                       # empty covenant
    {"version": 1},
])
def test_bad_shapes_rejected(obj):
    with pytest.raises(DecodeError):
        Tx.from_bytes(msgpack.packb(obj, use_bin_type=True))


def test_oversize_rejected():
    with pytest.raises(DecodeError) as e:
        Tx.from_bytes(pack([1, [], [[1, bytes(20), [0, b"v" * 1000]]] * 200, 0]))
    assert e.value.reason == "oversize"


@settings(max_examples=200, derandomize=True)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data):
    for decoder in (Tx.from_bytes, Block.from_bytes):
        try:
            decoder(data)
        except DecodeError:
            pass


def test_merkle_no_duplication_collision():
    a, b, c = (bytes([i]) * 32 for i in (1, 2, 3))
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, c])
    assert merkle_root([a]) == a


# Near-valid shapes for the decoders' inline paths (a plain output, an input): a valid one
# with at most one field made wrong in one of the ways msgpack can carry (bool for int, str
# for bin, a length off by one, a value past its width, a covenant with items or of another
# type, a list of another length).
_odd = st.sampled_from([-1, 0, 1, 2, 2**32 - 1, 2**32, 2**64 - 1, 2**64, True, False, None, "x" * 20,
                        *(bytes([n]) * n for n in (19, 20, 21, 31, 32, 33, 34, 63, 64, 65)),
                        [0], [False], [0, b""], [1], [], [0.0], [b"s" * 64], [b"s" * 64, b"p" * 33, b""]])


@st.composite
def _near_valid(draw, valid, paths):
    obj = valid(draw)
    path = draw(st.sampled_from(paths))
    if path is not None:
        where = obj
        for i in path[:-1]:
            where = where[i]
        where[path[-1]] = draw(_odd)
    if draw(st.integers(0, 9)) == 0:
        obj = obj + [0] if draw(st.booleans()) else obj[:-1]
    return obj


_outputs = _near_valid(lambda d: [d(st.sampled_from([0, 1, 2**64 - 1])), d(st.binary(min_size=20, max_size=20)), [0]],
                       [None, (0,), (1,), (2,), (2, 0)])
_inputs = _near_valid(lambda d: [d(st.binary(min_size=32, max_size=32)), d(st.sampled_from([0, 2**32 - 1])),
                                 [d(st.binary(min_size=64, max_size=64)), d(st.binary(min_size=33, max_size=33))]],
                      [None, (0,), (1,), (2,), (2, 0), (2, 1)])


def _decoded(decoder, obj):
    try:
        return decoder(obj)
    except DecodeError as e:
        return ("error", str(e))


@settings(max_examples=1000, derandomize=True)
@given(_outputs, _inputs)
def test_inline_decoding_agrees_with_the_checked_path(out, txin):
    """The inline paths of TxOut.from_obj and input_from_obj decode exactly what the checked
    paths accept, to equal values, and leave every error to them."""
    assert _decoded(TxOut.from_obj, out) == _decoded(TxOut.checked_from_obj, out)
    assert _decoded(input_from_obj, txin) == _decoded(checked_input_from_obj, txin)


def test_inline_decoding_takes_the_plain_shapes():
    out = [5, bytes(20), [0]]
    assert TxOut.from_obj(out) == TxOut.checked_from_obj(out) and TxOut.from_obj(out).covenant is PLAIN
    txin = [bytes(32), 2**32 - 1, [bytes(64), bytes(33)]]
    assert input_from_obj(txin) == checked_input_from_obj(txin) == TxIn(bytes(32), 2**32 - 1, bytes(64), bytes(33))


_good_in = txins.map(lambda i: [i.prev_txid, i.prev_index, [i.sig, i.pubkey]])
_good_out = txouts.map(lambda o: o.to_obj())
# Mostly valid parts (any covenant), some near-valid ones: most of these txs decode.
_tx_objs = _near_valid(lambda d: [d(st.sampled_from([0, 1, 2**32 - 1])),
                                  d(st.lists(st.one_of(_good_in, _good_in, _good_in, _inputs), max_size=3)),
                                  d(st.lists(st.one_of(_good_out, _good_out, _good_out, _outputs), max_size=3)),
                                  d(st.sampled_from([0, 7, 2**32 - 1]))],
                       [None] * 6 + [(0,), (1,), (2,), (3,)])


@settings(max_examples=1500, derandomize=True)
@given(_tx_objs)
def test_decoded_ids_equal_the_rebuilt_ones(obj):
    """Tx.from_obj takes a decoded tx's encoding and txid from the decoded list itself; for
    every list it accepts (near-valid ones included: wrong types, lengths, odd covenants)
    they equal those of the same tx rebuilt from its fields, and the decoder never keeps
    the list (a caller changing it afterwards changes nothing)."""
    try:
        tx = Tx.from_obj(obj)
    except DecodeError:
        return
    rebuilt = Tx(tx.version, tx.inputs, tx.outputs, tx.locktime)
    assert tx.to_bytes() == rebuilt.to_bytes() == pack(obj)
    assert tx.txid == rebuilt.txid and tx.wtxid == rebuilt.wtxid
    obj[0] = "changed"
    assert tx.to_bytes() == rebuilt.to_bytes() and tx.txid == rebuilt.txid


def test_a_replaced_tx_gets_its_own_ids():
    """dataclasses.replace() on a decoded tx (ids cached at decoding) or on one whose ids were
    asked for: the new tx's ids are its own, never the original's."""
    tx = Tx(1, (TxIn(bytes(32), 0, bytes(64), bytes(33)),), (TxOut(1, bytes(20)),))
    for original in (Tx.from_bytes(tx.to_bytes()), tx):
        assert original.txid == tx.txid
        other = replace(original, outputs=(TxOut(2, bytes(20)),))
        fresh = Tx(1, tx.inputs, (TxOut(2, bytes(20)),))
        assert other.txid == fresh.txid != tx.txid
        assert other.wtxid == fresh.wtxid and other.to_bytes() == fresh.to_bytes()
