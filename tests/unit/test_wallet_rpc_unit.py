"""Wallet RPC parts without processes: names of any bytes survive the wallet's text form and
its file, the RPC's name/value encodings round-trip, amounts are exact both ways, and bad
arguments get Namecoin's codes."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallet import storage
from wallet.daemon import dumps
from wallet.errors import WalletError
from wallet.names import name_bytes, name_text
from wallet.rpc_args import (NAME_INVALID_ENCODING, TYPE_ERROR, RPCError, amount_arg, bool_arg, decode_arg,
                             encode_out)
from wallet.values import value_bytes

NAMES = st.binary(min_size=1, max_size=255)


@settings(max_examples=300, derandomize=True)
@given(NAMES)
def test_any_name_bytes_survive_the_wallet_text_and_its_json(b):
    text = name_text(b)
    assert name_bytes(text) == b
    # the wallet file's document is JSON (storage.Sealer.seal): pending registrations are keyed by name
    doc = json.loads(json.dumps({"pending": {text: {"state": "new"}}}, sort_keys=True).encode())
    assert name_bytes(next(iter(doc["pending"]))) == b


def test_name_file_round_trip(tmp_path):
    name = name_text(bytes([0x78, 0x2F, 0xFF, 0x00]))
    sealer = storage.Sealer("pw", opslimit=storage.OPS_RANGE[0], memlimit=storage.MEM_RANGE[0])
    path = str(tmp_path / "w.json")
    storage.save(path, {"version": storage.VERSION, "pending": {name: 1}, "ekeys": {}, "values": {}}, sealer)
    assert list(storage.reload(path, sealer)["pending"]) == [name]


def test_name_bytes_bounds():
    with pytest.raises(WalletError):
        name_bytes("")
    with pytest.raises(WalletError):
        name_bytes("x" * 256)
    assert name_bytes("é" * 127) == "é".encode() * 127


@settings(max_examples=300, derandomize=True)
@given(st.binary(max_size=600))
def test_hex_encoding_round_trips_any_bytes(b):
    opts = {"nameEncoding": "hex"}
    assert decode_arg(encode_out(b, opts, "nameEncoding", "name"), opts, "nameEncoding", "name") == b
    assert value_bytes(b.hex(), "hex") == b


@settings(max_examples=300, derandomize=True)
@given(st.text(max_size=100))
def test_utf8_encoding_round_trips_text(s):
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:       # lone surrogates are not text a JSON client can send as UTF-8
        with pytest.raises(RPCError):
            decode_arg(s, {}, "valueEncoding", "value")
        return
    b = decode_arg(s, {}, "valueEncoding", "value")
    assert encode_out(b, {}, "valueEncoding", "value") == s


def test_encoding_refusals():
    with pytest.raises(RPCError) as e:
        encode_out(b"\xff", {}, "nameEncoding", "name")
    assert e.value.code == NAME_INVALID_ENCODING
    with pytest.raises(RPCError) as e:
        decode_arg("café", {"nameEncoding": "ascii"}, "nameEncoding", "name")
    assert e.value.code == NAME_INVALID_ENCODING
    with pytest.raises(RPCError) as e:
        decode_arg(5, {}, "nameEncoding", "name")
    assert e.value.code == TYPE_ERROR
    with pytest.raises(RPCError) as e:
        bool_arg(42.5, "allowExisting")
    assert e.value.code == TYPE_ERROR and "is not of expected type bool" in e.value.message


@settings(max_examples=300, derandomize=True)
@given(st.integers(min_value=1, max_value=21_000_000 * 10**8))
def test_amounts_are_exact_both_ways(units):
    coins = Decimal(units) / 10**8
    text = dumps({"amount": coins})
    assert json.loads(text, parse_float=Decimal)["amount"] == coins
    assert amount_arg(json.loads(text, parse_float=Decimal)["amount"]) == units
    if units < 10**15:              # what a float carries exactly (15 significant digits)
        assert amount_arg(float(coins)) == units


@pytest.mark.parametrize("bad", [0, -1, "x", "1e-9", True, None, float("nan")])
def test_bad_amounts(bad):
    with pytest.raises(RPCError) as e:
        amount_arg(bad)
    assert e.value.code == TYPE_ERROR


@settings(max_examples=200, derandomize=True)
@given(st.text(max_size=40))
def test_strings_stay_strings_next_to_amounts(s):
    """Only the daemon's own amounts become numbers; a value that looks like one stays text."""
    assert json.loads(dumps({"v": s, "w": f"\0dec:{s}", "a": Decimal(1)})) == {"v": s, "w": f"\0dec:{s}", "a": 1}
