"""Namecoin Core's name_encodings functional test replayed against a real dotbit node through
python-bitcoinrpc: the name_encoding / value_encoding settings (as -nameencoding /
-valueencoding: flag, environment, config file), per-call overrides, names and values that an
encoding cannot show (name_error / value_error, never a failed listing), and Namecoin's view of
name operations in transactions (vout[].scriptPubKey.nameOp). The node holds no wallet, so the
write side (name_new, name_firstupdate, name_update RPCs) is dotbit-wallet serve's; here the
transactions are built by the test and the node's read side is checked."""
from __future__ import annotations

import json
import os

import pytest

from support.harness import NodeProcess
from support.namecoin_rpc import Names, assert_rpc_error

READS = ("name_show", "name_history", "name_scan", "name_pending")


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    node = NodeProcess(str(tmp_path_factory.mktemp("enc") / "node")).start()
    try:
        n = Names(node)
        n.fund(90)
        yield n
    finally:
        node.stop()


def set_encodings(names, name_enc="ascii", value_enc="ascii", how="flag"):
    """Restart the node with these defaults, given as flags, environment or config file."""
    node = names.node
    node.stop()
    node.extra, node.env = [], None
    conf = f"{node.datadir}/dotbit.toml"
    with open(conf, "w") as f:
        f.write("" if how != "file" else f'[rpc]\nname_encoding = "{name_enc}"\nvalue_encoding = "{value_enc}"\n')
    if how == "flag":
        node.extra = ["--nameencoding", name_enc, "--value-encoding", value_enc]
    elif how == "env":
        node.env = dict(os.environ, DOTBIT_RPC_NAME_ENCODING=name_enc, DOTBIT_RPC_VALUE_ENCODING=value_enc)
    node.start()
    names.reconnect()


def to_bytes(text: str, enc: str) -> bytes:
    return bytes.fromhex(text) if enc == "hex" else text.encode("utf-8")


counter = iter(range(10**6))


def unique(base: str, enc: str) -> str:
    suffix = "%09d" % next(counter)
    return base + (suffix.encode().hex() if enc == "hex" else suffix)


def verify_pending_then_mined(names, name: str, value: str, txid: str, encs):
    rpc = names.rpc
    (p,) = rpc.name_pending(name)
    assert (p["name"], p["name_encoding"], p["value"], p["value_encoding"], p["txid"]) == (name, encs[0], value,
                                                                                            encs[1], txid)
    names.generate(1)
    data = rpc.name_show(name)
    assert (data["name"], data["name_encoding"], data["value"], data["value_encoding"], data["txid"]) == (
        name, encs[0], value, encs[1], txid)
    assert rpc.name_history(name)[-1] == data
    assert rpc.name_scan(name, 1)[0] == data


def lifecycle(names, name: str, value: str, encs):
    nb, vb = to_bytes(name, encs[0]), to_bytes(value, encs[1])
    (txid,) = names.register([(nb, vb)])
    verify_pending_then_mined(names, name, value, txid, encs)
    txid = names.update(nb, vb)
    verify_pending_then_mined(names, name, value, txid, encs)


@pytest.mark.parametrize("base, enc, how", [("d/abc", "ascii", "flag"), ("d/\x00äöü\n", "utf8", "env"),
                                            ("0011ff", "hex", "file")])
def test_valid_names(names, base, enc, how):
    set_encodings(names, name_enc=enc, how=how)
    lifecycle(names, unique(base, enc), "test-value", (enc, "ascii"))


@pytest.mark.parametrize("value, enc", [('{"foo":"bar"}', "ascii"), ('{"foo":"\x00äöü\n"}', "utf8"),
                                        ('{"foo":"\x00\xff"}'.encode("latin1").hex(), "hex"), ("", "hex")])
def test_valid_values(names, value, enc):
    set_encodings(names, value_enc=enc)
    lifecycle(names, unique("d/test", "ascii"), value, ("ascii", enc))


@pytest.mark.parametrize("name, enc", [("d/\n", "ascii"), ("d/äöü", "ascii"), ("d/\xff", "ascii"),
                                       ("d", "hex"), ("xx", "hex")])
def test_invalid_names(names, name, enc):
    set_encodings(names, name_enc=enc)
    for method in READS:
        assert_rpc_error(-1000, "Name/value is invalid", getattr(names.rpc, method), name)


def test_output_side(names):
    """Names and values registered as hex, read back as ascii: each field the encoding cannot
    show becomes a *_error field, and the listings still succeed."""
    set_encodings(names)
    name_ascii, value_ascii = unique("d/test", "ascii"), "{}"
    name_hex = unique("0011ff", "hex")
    value_bad = '{"msg":"\x00\xff"}'.encode("latin1")
    txid_ascii, txid_hex = names.register([(name_ascii.encode(), value_bad),
                                           (bytes.fromhex(name_hex), value_ascii.encode())])
    names.generate(5)
    rpc = names.rpc
    data = rpc.name_show(name_ascii)
    assert data["name"] == name_ascii and "name_error" not in data
    assert "value" not in data and data["value_error"] == "invalid data for ascii"
    assert (data["name_encoding"], data["value_encoding"], data["txid"]) == ("ascii", "ascii", txid_ascii)

    (found,) = [d for d in rpc.name_scan() if d["txid"] == txid_hex]
    assert "name" not in found and found["name_error"] == "invalid data for ascii"
    assert found["value"] == value_ascii and "value_error" not in found

    tx = rpc.decoderawtransaction(rpc.getrawtransaction(txid_ascii))
    (op,) = [o["scriptPubKey"]["nameOp"] for o in tx["vout"] if "nameOp" in o["scriptPubKey"]]
    assert (op["op"], op["name"], op["name_encoding"], op["value_encoding"]) == (
        "name_firstupdate", name_ascii, "ascii", "ascii")
    assert "value" not in op and op["value_error"] == "invalid data for ascii"
    assert len(op["rand"]) == 40 and "hash" not in op
    set_encodings(names, value_enc="hex")
    op = [o["scriptPubKey"]["nameOp"] for o in names.rpc.getrawtransaction(txid_ascii, True)["vout"]
          if "nameOp" in o["scriptPubKey"]][0]
    assert bytes.fromhex(op["value"]) == value_bad            # never lossy: hex shows every byte


def test_rpc_option_overrides_for_reads(names):
    set_encodings(names)
    name_ascii, name_utf8 = unique("d/abc", "ascii"), unique("d/äöü", "utf8")
    value_ascii, value_utf8 = "{}", '{"foo":"äöü"}'
    names.register([(name_ascii.encode(), value_utf8.encode()), (name_utf8.encode(), value_ascii.encode())])
    names.generate(1)
    rpc = names.rpc

    def verify(fn):
        assert_rpc_error(-3, "is not of expected type string", fn, name_ascii, {"nameEncoding": 42})
        assert_rpc_error(-3, "is not of expected type string", fn, name_ascii, {"valueEncoding": 42})
        assert_rpc_error(-1000, "Name/value is invalid", fn, name_utf8)
        res = fn(name_utf8, {"nameEncoding": "utf8"})
        assert (res["name"], res["name_encoding"], res["value"], res["value_encoding"]) == (
            name_utf8, "utf8", value_ascii, "ascii")
        res = fn(name_ascii)
        assert (res["name"], res["value_encoding"], res["value_error"]) == (name_ascii, "ascii",
                                                                            "invalid data for ascii")
        assert "value" not in res
        res = fn(name_ascii, {"valueEncoding": "utf8"})
        assert (res["value"], res["value_encoding"]) == (value_utf8, "utf8")

    verify(rpc.name_show)
    verify(lambda n, *o: rpc.name_history(n, *o)[-1])
    verify(lambda n, *o: single(rpc.name_scan(n, 1, *o)))
    names.update(name_ascii.encode(), value_utf8.encode())
    names.update(name_utf8.encode(), value_ascii.encode())
    verify(lambda n, *o: single(rpc.name_pending(n, *o)))
    assert any(e.get("name") == name_utf8 and e["name_encoding"] == "utf8"
               for e in rpc.name_pending(None, {"nameEncoding": "utf8"}))
    names.generate(1)


def single(rows):
    assert len(rows) == 1
    return rows[0]


def test_non_ascii_name_and_value_never_fail_a_listing(names):
    """The issue's case: d/café on chain with a non-ASCII value; ncdns's zone dumper pages
    with name_scan and no options, and every listing call must still succeed."""
    set_encodings(names)
    (txid,) = names.register([("d/café".encode(), '{"ip":"10.0.0.9","info":"naïve"}'.encode())])
    rpc = names.rpc
    (p,) = [e for e in rpc.name_pending() if e["txid"] == txid]
    assert p["name_error"] == p["value_error"] == "invalid data for ascii"
    names.generate(1)
    block = rpc.getblock(rpc.getbestblockhash(), 2)
    assert any(o["scriptPubKey"].get("nameOp", {}).get("name_error") for t in block["tx"] for o in t["vout"])
    for rows in (rpc.name_scan(), rpc.name_scan("d/", 1000), rpc.name_scan("", 500, {"prefix": "d/"})):
        (row,) = [r for r in rows if r["txid"] == txid]
        assert "name" not in row and "value" not in row
    utf8 = {"nameEncoding": "utf8", "valueEncoding": "utf8"}
    (hist,) = rpc.name_history("d/café", utf8)
    assert json.loads(hist["value"])["info"] == "naïve"
    assert rpc.name_show("d/café", utf8)["name"] == "d/café"
    assert rpc.getrawtransaction(txid, True)["txid"] == txid
    assert rpc.decoderawtransaction(rpc.getrawtransaction(txid))["txid"] == txid


def test_unknown_encoding_setting_is_refused(tmp_path):
    """A per-call unknown encoding falls back to the default (as Namecoin); a node setting
    with an unknown encoding is a start-up error with one line, not a silent ascii."""
    node = NodeProcess(str(tmp_path / "node"))
    node.env = dict(os.environ, DOTBIT_RPC_VALUE_ENCODING="base64")
    try:
        with pytest.raises(RuntimeError) as e:
            node.start(timeout=15)
        assert "unknown encoding 'base64'" in str(e.value)
    finally:
        node.stop()
