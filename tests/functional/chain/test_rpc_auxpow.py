"""The merged-mining RPCs of a real node (Namecoin Core's shapes): createauxblock before and
after activation, submitauxblock accepting a valid AuxPoW and refusing a broken one, unknown
hashes and bad hex, and getauxblock in both its forms."""
from __future__ import annotations

import pytest

from core.auxpow import commitment
from core.primitives import Block
from support.auxpow import auxpow_for
from support.chain import Key
from wallet.nodeclient import NodeError

A = Key.from_seed(51)


def test_auxpow_rpcs(node):
    with pytest.raises(NodeError) as e:
        node.call("createauxblock", A.addr_text())     # height 1 < activation (10)
    assert "merged mining starts at height" in e.value.message
    node.call("generatetoaddress", 9 - node.call("getblockcount"), A.addr_text())
    aux = node.call("createauxblock", A.addr_text())
    assert set(aux) == {"hash", "chainid", "previousblockhash", "coinbasevalue", "bits", "height", "_target"}
    assert aux["height"] == 10 and aux["previousblockhash"] == node.call("getbestblockhash")
    assert node.call("createauxblock", A.addr_text()) == aux        # same block while the tip stands
    # a commitment in a second merged-mining header is refused: false, the tip stays
    twice = b"\x01\x01" + commitment(bytes.fromhex(aux["hash"]), 1, 0) * 2
    assert node.call("submitauxblock", aux["hash"], auxpow_for(aux, script=twice)) is False
    assert node.call("getblockcount") == 9
    assert node.call("submitauxblock", aux["hash"], auxpow_for(aux)) is True
    assert node.call("getbestblockhash") == aux["hash"]
    block = Block.from_bytes(bytes.fromhex(node.call("getblock", aux["hash"], 0)))
    assert block.header.auxpow is not None and block.header.version >> 16 == aux["chainid"]
    view = node.call("getblock", aux["hash"])["auxpow"]
    assert view["parentblock"] == block.header.auxpow.parent_header.hex() and view["chainindex"] == 0
    assert "auxpow" not in node.call("getblock", node.call("getblockhash", 9))
    # getauxblock: no arguments creates (paying the node's address), two submit
    mine = node.call("getauxblock")
    assert mine["height"] == 11
    assert node.call("getauxblock", mine["hash"], auxpow_for(mine)) is True
    assert node.call("getblockcount") == 11


@pytest.mark.parametrize("args, code", [
    (("00" * 32, "00"), -22),                      # undecodable AuxPoW
    (("00" * 32, None), -8),                       # unknown block hash (AuxPoW checked later)
    (("zz", "00"), -8),
])
def test_submitauxblock_bad_input(node, args, code):
    if node.call("getblockcount") < 9:
        node.call("generatetoaddress", 9, A.addr_text())
    aux = node.call("createauxblock", A.addr_text())
    h, proof = args
    with pytest.raises(NodeError) as e:
        node.call("submitauxblock", h, proof if proof is not None else auxpow_for(aux))
    assert e.value.code == code
    with pytest.raises(NodeError) as e:
        node.call("getauxblock", aux["hash"])
    assert e.value.code == -8


def test_mergemine_cli_refuses_in_one_line(node, tmp_path):
    import os
    import subprocess
    import sys
    from support.harness import free_port
    if node.call("getblockcount") < 9:
        node.call("generatetoaddress", 9, A.addr_text())
    base = [sys.executable, "-m", "node.mining.mergemine", "--dotbit-url", f"http://127.0.0.1:{node.rpc_port}/",
            "--dotbit-cookie", os.path.join(node.datadir, ".cookie"), "--address", A.addr_text()]
    cases = [(["--parent-url", f"http://127.0.0.1:{free_port()}/"], 1, "getblocktemplate"),   # nothing listens
             (["--parent-url", "http://127.0.0.1:1/", "--parent-script", "zz"], 2, "non-hexadecimal"),
             (["--parent-url", "http://127.0.0.1:1/", "--dotbit-cookie", str(tmp_path / "none")], 2, "No such file")]
    for extra, code, words in cases:
        r = subprocess.run(base + extra, capture_output=True, text=True, timeout=60)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == code and len(lines) == 1 and words in lines[0], r.stderr
