"""Real node processes on loopback for integration tests: start, call, kill, stop."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from wallet.nodeclient import NodeError, OperatorClient

# The repository root (tests/support/harness.py is two levels down): bench scripts, source scans.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "node.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


class NodeProcess:
    def __init__(self, datadir: str, *extra: str, network: str = "regtest"):
        self.datadir = datadir
        self.extra = list(extra)
        self.network = network
        self.rpc_port = free_port()
        self.p2p_port = free_port()       # every test node gets its own, so nodes never clash
        self.proc: subprocess.Popen | None = None
        self.rpc: OperatorClient | None = None
        self.log_path = os.path.join(datadir, "test-node.log")
        self.env: dict | None = None      # None: this process's environment

    def start(self, timeout: float = 30) -> "NodeProcess":
        os.makedirs(self.datadir, exist_ok=True)
        cookie = os.path.join(self.datadir, ".cookie")
        if os.path.exists(cookie):
            os.unlink(cookie)            # a killed node leaves its cookie behind
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        self.rpc = OperatorClient(f"http://127.0.0.1:{self.rpc_port}", cookie)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited with {self.proc.returncode}:\n{self.log()}")
            try:
                self.rpc.call("getblockcount")
                return self
            except NodeError:
                time.sleep(0.1)
        raise RuntimeError(f"node did not start:\n{self.log()}")

    def command(self) -> list[str]:
        """The program and its arguments (DevRun below runs `make run`'s)."""
        return [sys.executable, "-m", "node.cli", "--network", self.network, "--datadir", self.datadir,
                "--rpc-port", str(self.rpc_port), "--p2p-port", str(self.p2p_port), *self.extra]

    @property
    def p2p_addr(self) -> str:
        return f"127.0.0.1:{self.p2p_port}"

    def call(self, method: str, *params):
        return self.rpc.call(method, *params)

    def log(self) -> str:
        try:
            with open(self.log_path) as f:
                return f.read()[-5000:]
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if self.rpc:
            self.rpc.close()

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        finally:
            if self.rpc:
                self.rpc.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            self.stop()
        except Exception:
            self.kill()


class DevRun(NodeProcess):
    """`make run` (python -m node.devrun) on a temporary data dir and free ports, mining every
    `interval` seconds; `env` adds to this process's environment."""

    def __init__(self, datadir: str, interval: float = 2.0, env: dict | None = None):
        super().__init__(datadir)
        self.dns_port, self.http_port = free_port(), free_port()
        self.interval = interval
        self.env = {**os.environ, **env} if env else None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "node.devrun", "--datadir", self.datadir, "--rpc-port", str(self.rpc_port),
                "--p2p-port", str(self.p2p_port), "--dns-port", str(self.dns_port),
                "--http-port", str(self.http_port), "--interval", str(self.interval)]


def running(node, setup=None, remove: str | None = None):
    """Generator for a module fixture: start `node`, run `setup(node)` if given, yield it; then
    stop it (kill it if a clean stop fails) and remove `remove` (default: its data dir)."""
    node.start()
    try:
        if setup is not None:
            setup(node)
        yield node
    finally:
        stop_node(node, remove)


def stop_node(node, remove: str | None = None) -> None:
    """Stop a node (kill it if a clean stop fails) and remove `remove` (default: its data dir)."""
    try:
        node.stop()
    except Exception:
        node.kill()
    shutil.rmtree(remove or node.datadir, ignore_errors=True)


def stop_process(proc) -> None:
    """Stop a helper program (Unbound, BIND...): SIGTERM, then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
