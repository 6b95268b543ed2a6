"""Light-client test helpers: a resolver node with the names the light tests ask about, and
`dotbit-resolve` run as a real process."""
from __future__ import annotations

import base64
import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile

from support.harness import free_port
from support.resolver import EPH_KEY, ID_KEY, TLS_DIGEST_B64, sample_names, started_resolver_node
from node.resolver.identity import load_or_create

RESOLVE = os.path.join(os.path.dirname(sys.executable), "dotbit-resolve")

LIGHT_NAMES = {
    b"d/light": {"ip": ["198.51.100.7"], "ip6": ["2001:db8::7"], "txt": ["light client"],
                 "map": {"_tcp": {"map": {"_443": {"tls": [[3, 1, 1, TLS_DIGEST_B64]]}}},
                         "www": {"import": "d/lib"}},
                 "minimalT": {"port": 7100, "id_key": ID_KEY, "eph_key": EPH_KEY}},
    b"d/lib": {"ip": ["198.51.100.99"]},                  # imported by www.light.bit
    b"d/stale": {"ip": ["198.51.100.1"]},                 # updated later by the lie tests
}


def _light_names(node) -> None:
    node.fund(blocks=112)
    node.register({b"d/old": {"ip": ["192.0.2.50"]}})
    node.mine(18)                     # with the 13 blocks of the next registration: > 30
    node.register({**sample_names(), **LIGHT_NAMES})


def started_light_node():
    """A funded node where d/old has expired and sample + light names are live."""
    yield from started_resolver_node(_light_names)


def resolver_key(node):
    return load_or_create(os.path.join(node.datadir, "resolver_key"))


def resolve(*args, url: str, pin: str, light_dir: str, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = [RESOLVE, "--network", "regtest", "--resolver", url, "--pin", pin, "--light-dir", light_dir,
           "--config", os.devnull, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def light_dir() -> str:
    return tempfile.mkdtemp(prefix="dotbit-light-")


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def caught(r: subprocess.CompletedProcess, check: str, words: str = "") -> None:
    """The CLI refused with exit 2 and ONE stderr line naming `check` (and saying `words`)."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and f"verification failed: {check}:" in lines[0], r.stderr
    assert words in lines[0], lines[0]


@contextlib.contextmanager
def running_stub(url: str, pin: str, light_dir: str, *flags: str):
    """`dotbit-resolve serve` as a real process on a free port, until SIGTERM; yields
    (port, process). The caller reads its stderr only after the block, once it has stopped."""
    port = free_port()
    cmd = [RESOLVE, "--network", "regtest", "--resolver", url, "--pin", pin, "--light-dir", light_dir,
           "--config", os.devnull, *flags, "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready and "serving verified" in proc.stdout.readline(), "the stub did not start"
        yield port, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
