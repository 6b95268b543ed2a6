"""The RPC name/value encodings (node/rpc/name_encoding.py), as Namecoin's encoding.cpp: any
bytes either show in an encoding and read back to the very same bytes, or are flagged with an
*_error field, never shown lossily; inputs an encoding cannot hold are -1000."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from node.rpc import name_encoding as E
from node.rpc.registry import RPCError


@settings(max_examples=300, derandomize=True)
@given(data=st.binary(max_size=300), enc=st.sampled_from(E.ENCODINGS))
def test_shown_or_flagged_never_lossy(data, enc):
    obj = {}
    E.put(obj, "value", data, enc)
    assert obj["value_encoding"] == enc
    if "value" in obj:
        assert "value_error" not in obj
        assert E.decode(obj["value"], enc) == data
    else:
        assert obj["value_error"] == f"invalid data for {enc}"
    if enc == "hex":
        assert "value" in obj                    # hex shows every byte string


@settings(max_examples=200, derandomize=True)
@given(data=st.binary(max_size=100))
def test_ascii_is_exactly_printable_bytes(data):
    assert (E.encode(data, "ascii") is not None) == all(0x20 <= c < 0x80 for c in data)


@pytest.mark.parametrize("text, enc", [("d/\n", "ascii"), ("d/äöü", "ascii"), ("d/\xff", "ascii"),
                                       ("d", "hex"), ("xx", "hex"), ("0 1", "hex"), ("\ud800", "utf8")])
def test_invalid_input_is_1000(text, enc):
    with pytest.raises(RPCError) as e:
        E.decode(text, enc)
    assert e.value.code == -1000 and e.value.message == f"Name/value is invalid for encoding {enc}"


def test_options_type_checked_unknown_falls_back():
    assert E.from_options({"nameEncoding": "hex"}, "nameEncoding", "ascii") == "hex"
    assert E.from_options({"nameEncoding": "base64"}, "nameEncoding", "utf8") == "utf8"
    assert E.from_options({}, "nameEncoding", "utf8") == "utf8"
    with pytest.raises(RPCError) as e:
        E.from_options({"valueEncoding": 42}, "valueEncoding", "ascii")
    assert e.value.code == -3 and "is not of expected type string" in e.value.message
    with pytest.raises(ValueError):
        E.check_setting("--value-encoding", "base64")
    assert E.for_message(b"d/x") == "'d/x'" and E.for_message(b"d/\xff") == "0x642fff"
