"""Tunnel-area fixtures: one regtest resolver node where d/tun publishes the keys of a real
`dotbit-tunnel serve` (behind a UDP relay, whose port is the published one), names that
publish wrong keys, a local web server the tunnel fronts, and the serve process itself."""
from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import tempfile
from types import SimpleNamespace

import pytest

from support.harness import free_port
from support.light import resolver_key
from support.resolver import started_resolver_node
from support.tunnel import BIG, INDEX, TUNNEL, UdpRelay, light_args, running_tool, web_server


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


@pytest.fixture(scope="module")
def world():
    work = tempfile.mkdtemp(prefix="dotbit-tunnel-")
    keys = os.path.join(work, "server.keys")
    pub = json.loads(subprocess.run([TUNNEL, "keygen", "--keys", keys], capture_output=True, text=True,
                                    check=True, timeout=30).stdout)
    udp_port = free_port()
    rng = random.Random(5)
    with UdpRelay(("127.0.0.1", udp_port), seed=3) as relay:
        def names(node):
            node.fund(blocks=110)
            item = {"port": relay.port, "id_key": pub["id_key"], "eph_key": pub["eph_key"]}
            node.register({
                b"d/tun": {"ip": ["127.0.0.1"], "minimalT": item},
                b"d/tunbadeph": {"ip": ["127.0.0.1"], "minimalT": {**item, "eph_key": _b64(rng.randbytes(32))}},
                b"d/tunbadid": {"ip": ["127.0.0.1"], "minimalT": {**item, "id_key": _b64(rng.randbytes(32))}},
            })
        for node in started_resolver_node(names):
            pin = resolver_key(node).fingerprint
            light = tempfile.mkdtemp(prefix="dotbit-light-", dir=work)
            with web_server({"index.html": INDEX, "big.bin": BIG}) as (web_port, web_log):
                with running_tool("serve", "--name", "d/tun", "--forward", f"127.0.0.1:{web_port}", "--keys", keys,
                                  "--listen", f"127.0.0.1:{udp_port}", "--puzzle-above", "40",
                                  *light_args(node, pin, light), ready="serving d/tun") as serve:
                    yield SimpleNamespace(node=node, pin=pin, keys=keys, pub=pub, relay=relay, udp_port=udp_port,
                                          web_port=web_port, web_log=web_log, serve=serve, work=work,
                                          light=lambda: tempfile.mkdtemp(prefix="dotbit-light-", dir=work))


@pytest.fixture
def relay(world):
    """Every test starts with a clean relay, whatever impairment the last one left set."""
    world.relay.impair()
    world.relay.reset_sizes()
    yield world.relay
    world.relay.impair()
