"""Merged mining under a real Bitcoin node: bcoin (regtest, loopback) is the parent chain and
dotbit-mergemine drives both. Both chains accept the merge-mined blocks; a second dotbit node
syncs them over p2p and the light client verifies their headers (AuxPoW and all)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from core.crypto import sha256d
from core.primitives import Block
from support.bcoin import Bcoin
from support.chain import Key
from support.harness import NodeProcess
from support.light import light_dir, resolve, resolver_key

A = Key.from_seed(41)


def _wait(pred, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_merge_mined_under_bcoin(tmp_path):
    parent = Bcoin().start()
    n1 = NodeProcess(str(tmp_path / "n1"), resolver=True).start()
    n2 = NodeProcess(str(tmp_path / "n2")).start()
    try:
        n2.call("addnode", n1.p2p_addr, "onetry")
        start = n1.call("getblockcount")
        n1.call("generatetoaddress", 9 - start, A.addr_text())        # AuxPoW is valid from height 10
        r = subprocess.run([sys.executable, "-m", "node.mining.mergemine", "--parent-url", parent.url,
                            "--parent-auth", parent.auth, "--dotbit-url", f"http://127.0.0.1:{n1.rpc_port}/",
                            "--dotbit-cookie", os.path.join(n1.datadir, ".cookie"),
                            "--address", A.addr_text(), "--blocks", "3"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert n1.call("getblockcount") == 12
        assert parent.call("getblockcount") == 3          # the parent took every block too
        for height in (10, 11, 12):
            block = Block.from_bytes(bytes.fromhex(n1.call("getblock", n1.call("getblockhash", height), 0)))
            aux = block.header.auxpow
            assert aux is not None and block.hash in aux.coinbase_tx
            parent_hash = sha256d(aux.parent_header)[::-1].hex()
            assert parent.call("getblockhash", height - 9) == parent_hash
        tip = n1.call("getbestblockhash")
        assert _wait(lambda: n2.call("getbestblockhash") == tip), "the second node did not sync over p2p"
        d = light_dir()
        url, pin = f"http://127.0.0.1:{n1.http_port}", resolver_key(n1).fingerprint
        r = resolve("sync", "--peer", n1.p2p_addr, url=url, pin=pin, light_dir=d)
        assert r.returncode == 0 and "height 12" in r.stdout, r.stdout + r.stderr
        assert os.path.getsize(os.path.join(d, "headers.dat")) == 13 * 112
    finally:
        n2.stop()
        n1.stop()
        parent.stop()
