"""Real node processes on loopback for integration tests: start, call, kill, stop."""
from __future__ import annotations

import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from wallet.nodeclient import NodeError, OperatorClient

# The repository root (tests/support/harness.py is two levels down): bench scripts, source scans.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _port_range() -> range:
    """Ports below the kernel's ephemeral range: the kernel never gives one of them to a port-0
    bind or to an outgoing connection, which is what took a port closed by the old free_port()
    before the node could bind it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(max(1024, low - 12000), low)


PORTS = _port_range()
# A port handed out stays this process's until it exits: in the set for its threads, and as a
# flock on a file of its own for every other process on the machine (parallel test runs).
_LOCK_DIR = os.path.join(tempfile.gettempdir(), "dotbit-test-ports")
_held: dict[int, int] = {}
_held_lock = threading.Lock()


def _bindable(port: int) -> bool:
    """Nothing listens on `port` now, over TCP or UDP (DNS serves both)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as the node's servers do
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _claim(port: int) -> bool:
    fd = os.open(os.path.join(_LOCK_DIR, str(port)), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    if not _bindable(port):
        os.close(fd)                 # closing drops the lock
        return False
    _held[port] = fd
    return True


def free_port() -> int:
    """A loopback port no other caller of free_port() on this machine holds, nor will be given
    while this process lives, and that nothing listens on now."""
    os.makedirs(_LOCK_DIR, exist_ok=True)
    start = random.randrange(len(PORTS))
    with _held_lock:
        for i in range(len(PORTS)):
            port = PORTS[(start + i) % len(PORTS)]
            if port not in _held and _claim(port):
                return port
    raise RuntimeError(f"no free port left in {PORTS.start}-{PORTS.stop - 1}")


def run_cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "node.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


# Python prints "[Errno 98] Address already in use": matched without case
ADDRESS_IN_USE = "address already in use"
START_ATTEMPTS = 3


def kill_child(proc) -> None:
    """SIGKILL a child process started by a test, if it still runs."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def stop_child(proc, timeout: float = 30) -> int:
    """SIGTERM a child process and wait for its exit status; SIGKILL (and raise) if it does
    not exit within `timeout`."""
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else 0
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_child(proc)
        raise


class NodeProcess:
    """A node on free ports (see `ports`); `resolver` adds DNS and HTTP on ports of their own."""

    def __init__(self, datadir: str, *extra: str, network: str = "regtest", resolver: bool = False):
        self.datadir = datadir
        self.extra = list(extra)
        self.network = network
        self.ports = ("rpc_port", "p2p_port") + (("dns_port", "http_port") if resolver else ())
        self.new_ports()                  # every test node gets its own, so nodes never clash
        self.proc: subprocess.Popen | None = None
        self.rpc: OperatorClient | None = None
        self.log_path = os.path.join(datadir, "test-node.log")
        self.env: dict | None = None      # None: this process's environment

    def new_ports(self) -> None:
        for attr in self.ports:
            setattr(self, attr, free_port())

    def start(self, timeout: float = 30) -> "NodeProcess":
        """Start and wait for RPC. A port taken by something outside free_port()'s reach (a
        program not using it) makes the node exit at once: it is started again on new ports."""
        for attempt in range(START_ATTEMPTS):
            offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            try:
                return self._start_once(timeout)
            except RuntimeError:
                if attempt + 1 == START_ATTEMPTS or ADDRESS_IN_USE not in self.log(since=offset).lower():
                    raise
            self.new_ports()
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> "NodeProcess":
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
                self.rpc.close()
                raise RuntimeError(f"node exited with {self.proc.returncode}:\n{self.log()}")
            try:
                self.rpc.call("getblockcount")
                return self
            except NodeError:
                time.sleep(0.1)
        self.kill()                      # not left running behind the error
        raise RuntimeError(f"node did not start:\n{self.log()}")

    def command(self) -> list[str]:
        """The program and its arguments (DevRun below runs `make run`'s)."""
        served = ["--dns-port", str(self.dns_port), "--http-port", str(self.http_port)] if "dns_port" in self.ports \
            else []
        return [sys.executable, "-m", "node.cli", "--network", self.network, "--datadir", self.datadir,
                "--rpc-port", str(self.rpc_port), "--p2p-port", str(self.p2p_port), *served, *self.extra]

    @property
    def p2p_addr(self) -> str:
        return f"127.0.0.1:{self.p2p_port}"

    def call(self, method: str, *params):
        return self.rpc.call(method, *params)

    def log(self, since: int = 0) -> str:
        """The log's last 5,000 characters (after byte `since`)."""
        try:
            with open(self.log_path, errors="replace") as f:
                f.seek(since)
                return f.read()[-5000:]
        except OSError:
            return ""

    def kill(self) -> None:
        kill_child(self.proc)
        if self.rpc:
            self.rpc.close()

    def stop(self, timeout: float = 30) -> int:
        try:
            return stop_child(self.proc, timeout)
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
        super().__init__(datadir, resolver=True)
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


def stop_node(node, remove: str | None = None, keep_data: bool = False) -> None:
    """Stop a node (kill it if a clean stop fails) and remove `remove` (default: its data dir)
    unless `keep_data`."""
    try:
        node.stop()
    except Exception:
        node.kill()
    if not keep_data:
        shutil.rmtree(remove or node.datadir, ignore_errors=True)


def stop_process(proc) -> None:
    """Stop a helper program (Unbound, BIND...): SIGTERM, then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
