"""A real `dotbit-wallet serve` process (python -m wallet.cli serve) on a free port, over a
wallet file made by the CLI, and python-bitcoinrpc proxies to it: what a namecoind script
would use."""
from __future__ import annotations

import os
import subprocess
import time

from bitcoinrpc.authproxy import AuthServiceProxy

from support.harness import free_port, kill_child, stop_child
from support.wallet_cli import W


class WalletDaemon:
    def __init__(self, w: W, *extra: str):
        self.w = w
        self.extra = list(extra)
        self.port = free_port()
        self.cookie = w.path + ".cookie"
        self.log_path = w.path + ".serve.log"
        self.proc: subprocess.Popen | None = None

    def start(self, env: dict | None = None, timeout: float = 30) -> "WalletDaemon":
        if os.path.exists(self.cookie):
            os.unlink(self.cookie)         # a killed daemon leaves its cookie behind
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.w.argv("serve", "--rpc-port", str(self.port), "--poll", "0.2",
                                                 *self.extra),
                                     stdout=log, stderr=subprocess.STDOUT, env=env or self.w.env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wallet daemon exited with {self.proc.returncode}:\n{self.log()}")
            if os.path.exists(self.cookie):
                try:
                    self.proxy().getblockcount()
                    return self
                except (OSError, ConnectionError):
                    pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"wallet daemon did not start:\n{self.log()}")

    def credentials(self) -> str:
        with open(self.cookie) as f:
            return f.read().strip()

    def url(self, credentials: str | None = None) -> str:
        return f"http://{credentials or self.credentials()}@127.0.0.1:{self.port}"

    def proxy(self, credentials: str | None = None, timeout: float = 120) -> AuthServiceProxy:
        return AuthServiceProxy(self.url(credentials), timeout=timeout)

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-5000:]
        except OSError:
            return ""

    def kill(self) -> None:
        kill_child(self.proc)

    def stop(self, timeout: float = 30) -> int:
        return stop_child(self.proc, timeout)
