"""Light-client test helpers: a resolver node with the names the light tests ask about, and
`dotbit-resolve` run as a real process."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile

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
