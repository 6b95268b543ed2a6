"""`make demo` (python -m node.demo) runs end to end on a fresh temp dir: node, wallet,
registration with ip + TLS + MinimaLT, DNS (dig +dnssec) and the verifying light client."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys


def test_demo_runs_end_to_end():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOTBIT_")}
    env["DOTBIT_RPC_PORT"] = "1"          # a stray setting in the caller's shell must not leak in
    r = subprocess.run([sys.executable, "-m", "node.demo"], capture_output=True, text=True, timeout=90, env=env)
    out = r.stdout
    assert r.returncode == 0, out[-3000:] + r.stderr[-2000:]
    workdir = re.search(r"dotbit demo in (\S+)", out).group(1)
    assert not os.path.exists(workdir)                           # cleaned up
    assert "node exited with status 0" in out                    # stopped cleanly
    commands = [line[2:] for line in out.splitlines() if line.startswith("$ ")]
    assert any(c.startswith("dotbit-wallet --conf ") and " name register d/example " in c for c in commands)
    assert any(" tls d/example --cert " in c for c in commands)
    assert any(" minimalt d/example --port 7000 " in c for c in commands)
    # the TLSA digest the wallet published is what DNS and the light client serve
    tls = re.search(r'tls \[3, 1, 1, "([A-Za-z0-9+/=]+)"\]', out).group(1)
    import base64
    digest = base64.b64decode(tls).hex().upper()
    light_tlsa = re.search(r"_443\._tcp\.example\.bit\.\tIN\tTLSA\t3 1 1 ([0-9A-F]+)", out).group(1)
    assert light_tlsa == digest
    keys = re.search(r"MinimaLT id_key (\S+)\n    MinimaLT eph_key (\S+)", out)
    assert f"id_key={keys.group(1)} eph_key={keys.group(2)}" in out       # dig TXT and the light client
    assert out.count(";; verified: signature, header in our chain") == 3
    assert "example.bit.\tIN\tA\t192.0.2.1" in out
    if shutil.which("dig"):
        assert re.search(r"example\.bit\.\s+300\s+IN\s+A\s+192\.0\.2\.1", out)
        assert re.search(r"example\.bit\.\s+300\s+IN\s+RRSIG\s+A 15 ", out)      # signed, Ed25519
        dig_tlsa = re.search(r"IN\s+TLSA\s+3 1 1 ([0-9A-F ]+)\n", out).group(1).replace(" ", "")
        assert dig_tlsa == digest
    else:
        assert "dig is not installed" in out
