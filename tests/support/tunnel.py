"""Tunnel test helpers: a UDP relay that loses, duplicates, reorders and tampers with
datagrams (seeded) and can change the client's source port, a local web server, and
`dotbit-tunnel serve` / `connect` as real processes."""
from __future__ import annotations

import contextlib
import os
import random
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

from support.harness import free_port, stop_process
from tunnel import crypto as C
from tunnel import keyfile
from tunnel import packet as P

TUNNEL = os.path.join(os.path.dirname(sys.executable), "dotbit-tunnel")
BIG = random.Random(18).randbytes(600_000)
INDEX = b"<html><body>hello through the tunnel</body></html>\n"


def open_frames(keys_path: str, datagram: bytes) -> list:
    """The frames of a client's OPEN, unsealed with the server's secrets from its key file
    (several ephemeral keys: the one the open names)."""
    pkt = P.parse_datagram(datagram)
    assert isinstance(pkt, P.Open)
    id_secret, eph = keyfile.read(keys_path)
    (secret,) = [s for s, _ in eph if C.key_id(C.public_of(s)) == pkt.key_id]
    keys = C.server_keys(secret, id_secret, pkt.client_pub, pkt.tid)
    return P.decode_frames(C.unseal(keys.recv, pkt.pn, pkt.header(), pkt.sealed))


class UdpRelay:
    """Between tunnel clients and a server: what a client sends to `port` goes to the server
    from the relay's upstream socket (one per client address), answers come back. Impairments
    apply both ways, decided by a seeded RNG; `move()` gives every client a new upstream
    socket, so the server sees the client's source port change mid-tunnel."""

    def __init__(self, server: tuple[str, int], seed: int = 1):
        self.server = server
        self.rng = random.Random(seed)
        self.drop = self.dup = self.reorder = self.tamper = 0.0
        self.max_size: int | None = None   # datagrams longer than this vanish (a small path MTU)
        self.too_big = self.largest = 0
        self.listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.listen.bind(("127.0.0.1", 0))
        self.port = self.listen.getsockname()[1]
        self.up: dict = {}                 # client addr -> upstream socket
        self.first: list[bytes] = []       # every client's first datagram
        self.count = 0
        self._held = None
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join(5)
        for s in [self.listen, *self.up.values()]:
            s.close()

    def impair(self, drop=0.0, dup=0.0, reorder=0.0, tamper=0.0, max_size=None) -> None:
        self.drop, self.dup, self.reorder, self.tamper = drop, dup, reorder, tamper
        self.max_size = max_size

    def reset_sizes(self) -> None:
        self.too_big = self.largest = 0

    def move(self) -> None:
        with self._lock:
            for addr, s in list(self.up.items()):
                fresh = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                fresh.bind(("127.0.0.1", 0))
                self.up[addr] = fresh
                s.close()

    def _run(self) -> None:
        while not self._stop:
            with self._lock:
                socks = [self.listen, *self.up.values()]
                ready, _, _ = select.select(socks, [], [], 0.01)
                for s in ready:
                    self._pump(s)

    def _pump(self, s) -> None:
        try:
            data, addr = s.recvfrom(65536)
        except OSError:
            return
        if s is self.listen:
            if addr not in self.up:
                up = self.up[addr] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                up.bind(("127.0.0.1", 0))
                self.first.append(data)
            self._emit(self.up[addr], data, self.server)
        else:
            client = next(a for a, u in self.up.items() if u is s)
            self._emit(self.listen, data, client)

    def _emit(self, sock, data: bytes, to) -> None:
        self.count += 1
        if self.max_size is not None and len(data) > self.max_size:
            self.too_big += 1
            return
        self.largest = max(self.largest, len(data))
        r = self.rng.random
        if r() < self.drop:
            return
        if r() < self.tamper:
            i = self.rng.randrange(len(data))
            data = data[:i] + bytes([data[i] ^ 0x20]) + data[i + 1:]
        if r() < self.reorder and self._held is None:
            self._held = (sock, data, to)          # sent after the next one
            return
        copies = 2 if r() < self.dup else 1
        for _ in range(copies):
            sock.sendto(data, to)
        if self._held is not None:
            held, self._held = self._held, None
            held[0].sendto(held[1], held[2])


@contextlib.contextmanager
def web_server(pages: dict[str, bytes]):
    """`python -m http.server` on a free port serving `pages`; yields (port, log_path)."""
    root = tempfile.mkdtemp(prefix="dotbit-web-")
    for name, body in pages.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(body)
    port = free_port()
    log = os.path.join(root, "access.log")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", root,
                                 str(port)], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_tcp(port)
        yield port, log
    finally:
        stop_process(proc)


def _wait_tcp(port: int, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def light_args(node, pin: str, light_dir: str) -> list[str]:
    return ["--network", "regtest", "--resolver", f"http://127.0.0.1:{node.http_port}", "--pin", pin,
            "--light-dir", light_dir]


@contextlib.contextmanager
def running_tool(*args: str, ready: str, timeout: float = 60):
    """A dotbit-tunnel process until its `ready` line, stopped (SIGTERM) after the block;
    yields the process. Its stderr is a file readable afterwards as proc.stderr_text()."""
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([TUNNEL, *args], stdout=subprocess.PIPE, stderr=err, text=True)
    proc.stderr_text = lambda: (err.seek(0), err.read())[1]
    try:
        ok, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ok else ""
        assert ready in line, f"{args[0]} did not start: {line!r} {proc.stderr_text()}"
        yield proc
    finally:
        if proc.poll() is None:
            stop_process(proc)
        proc.stdout.close()
