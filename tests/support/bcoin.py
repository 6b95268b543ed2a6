"""bcoin (a real Bitcoin full node, JavaScript) as the parent chain of merged-mining tests.

Installed from tests/support/bcoin/package.json (bcoin 1.0.2, its leveldown overridden to a
version that builds on Node 20) by .ci/run, or here by `npm ci` on first use. Runs in regtest
on loopback, in memory, with no p2p listener; its only peer is a free loopback port where
nothing listens (regtest's default seed is localhost's 48444): only its JSON-RPC is used.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from support.harness import free_port, stop_process

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bcoin")
BCOIN = os.path.join(HERE, "node_modules", ".bin", "bcoin")


def ensure_bcoin() -> str:
    """The bcoin executable, installed with npm if need be. CI (DOTBIT_REQUIRE_BCOIN=1) fails
    without it; elsewhere the test is skipped only when npm itself is missing."""
    if os.path.exists(BCOIN):
        return BCOIN
    npm = shutil.which("npm")
    if npm is None:
        if os.environ.get("DOTBIT_REQUIRE_BCOIN"):
            pytest.fail("bcoin is required (DOTBIT_REQUIRE_BCOIN) but npm is not installed")
        pytest.skip("npm is not installed: cannot install bcoin")
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and os.path.exists(BCOIN), r.stderr[-2000:]
    return BCOIN


class Bcoin:
    def __init__(self):
        self.prefix = tempfile.mkdtemp(prefix="dotbit-bcoin-")
        self.http_port, self.key = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.http_port}/"
        self.auth = f"x:{self.key}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "Bcoin":
        cmd = [ensure_bcoin(), "--network=regtest", "--memory=true", "--listen=false",
               f"--prefix={self.prefix}", "--http-host=127.0.0.1", f"--http-port={self.http_port}",
               f"--port={free_port()}", f"--only=127.0.0.1:{free_port()}", f"--api-key={self.key}", "--workers=false", "--no-wallet",
               "--log-level=warning"]
        self.log = open(os.path.join(self.prefix, "stdout.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bcoin exited with {self.proc.returncode}")
            try:
                self.call("getblockcount")
                return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("bcoin did not start")

    def call(self, method: str, *params):
        body = json.dumps({"method": method, "params": list(params), "id": 1}).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        req.add_header("Authorization", "Basic " + base64.b64encode(self.auth.encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                out = json.loads(r.read())
        except urllib.error.HTTPError as e:
            out = json.loads(e.read())
        if out.get("error"):
            raise RuntimeError(f"bcoin {method}: {out['error']}")
        return out["result"]

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.log.close()
        shutil.rmtree(self.prefix, ignore_errors=True)
