"""dotbit-tunnel connect -> (UDP relay) -> dotbit-tunnel serve -> a local web server, all real
processes on loopback, keys learned through the light client's verified path: the page
arrives, the request rides in the first datagram, a replayed first datagram is not served
twice, loss/duplication/reordering/tampering are survived, and wrong keys or a lying
resolver mean no connection (exit 2, one line naming the check)."""
from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request

import pytest

from support.harness import free_port
from support.light_proxy import LyingProxy
from support.light import resolver_key
from support.tunnel import BIG, INDEX, TUNNEL, light_args, open_frames, running_tool
from tunnel import packet as P


def connect(world, name: str, *extra: str):
    port = free_port()
    args = light_args(world.node, world.pin, world.light())
    return port, running_tool("connect", name, "--listen", f"127.0.0.1:{port}", *args, *extra,
                              ready="listening on tcp")


def get(port: int, path: str, timeout: float = 60) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read()


def test_page_through_the_tunnel_and_the_request_in_the_first_datagram(world, relay):
    port, tool = connect(world, "tun.bit")
    with tool:
        before = len(relay.first)
        assert get(port, "/index.html?first") == INDEX
    (first,) = relay.first[before:]
    frames = open_frames(world.keys, first)          # the server's secrets open it: an OPEN, sealed to them
    data = b"".join(f.data for f in frames if hasattr(f, "data"))
    assert data.startswith(b"GET /index.html?first HTTP/1.1\r\n")


def test_a_replayed_first_datagram_is_not_served_twice(world, relay):
    port, tool = connect(world, "tun.bit")
    with tool:
        before = len(relay.first)
        assert get(port, "/index.html?replayed-once") == INDEX
    (first,) = relay.first[before:]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        for _ in range(3):                       # from another address too: the ID is what counts
            s.sendto(first, ("127.0.0.1", world.udp_port))
            time.sleep(0.2)
    time.sleep(1.0)
    with open(world.web_log) as f:
        assert sum("replayed-once" in line for line in f) == 1


def test_loss_duplication_reordering_and_tampering_are_survived(world, relay):
    # An Internet-sized path (1400-byte datagrams; probes for more are lost), so the transfer
    # crosses the impaired relay in hundreds of datagrams, not the few dozen loopback's MTU allows.
    relay.impair(drop=0.05, dup=0.05, reorder=0.1, tamper=0.03, max_size=P.BASE_DATAGRAM)
    port, tool = connect(world, "tun.bit")
    with tool:
        assert get(port, "/big.bin", timeout=120) == BIG
    assert relay.count > 400


@pytest.mark.parametrize("name", ["tunbadeph.bit", "tunbadid.bit"])
def test_wrong_published_keys_mean_no_connection(world, relay, name):
    port, tool = connect(world, name, "--open-timeout", "2")
    with tool as proc:
        with pytest.raises(OSError):
            get(port, "/index.html?never", timeout=20)
        assert proc.wait(20) == 2
        lines = proc.stderr_text().strip().splitlines()
    assert len(lines) == 1 and "tunnel failed: handshake:" in lines[0], lines


def test_a_lying_resolver_means_no_connection(world):
    def lie(body):
        for m in body["answer"]["minimalt"]:
            m["eph_key"] = bytes(32 * [7])        # the attacker's key, validly signed by the resolver
        return body

    with LyingProxy(f"http://127.0.0.1:{world.node.http_port}", resolver_key(world.node)) as proxy:
        proxy.lie = lie
        port = free_port()
        args = light_args(world.node, world.pin, world.light())
        args[args.index("--resolver") + 1] = proxy.url
        r = subprocess.run([TUNNEL, "connect", "tun.bit", "--listen", f"127.0.0.1:{port}", *args],
                           capture_output=True, text=True, timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "verification failed: ekey:" in lines[0], r.stderr


@pytest.mark.parametrize("args, words", [
    (["connect", "tun.bit", "--listen", "nowhere", "--pin", "0" * 64], "usage: --listen 'nowhere': expected HOST:PORT"),
    (["connect", "tun.bit", "--listen", "127.0.0.1:1"], "usage: no --pin given"),
    (["serve", "--name", "tun", "--forward", "127.0.0.1:1", "--pin", "0" * 64], "usage: serve needs --name d/NAME"),
    (["ekey-new", "--keys", "/nonexistent/keys"], "keys: cannot read /nonexistent/keys"),
    (["bogus"], "usage: argument command: invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(args, words):
    r = subprocess.run([TUNNEL, *args], capture_output=True, text=True, timeout=30)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and words in lines[0], r.stderr


def test_keygen_refuses_to_replace_an_identity(tmp_path):
    path = str(tmp_path / "k")
    assert subprocess.run([TUNNEL, "keygen", "--keys", path], capture_output=True, timeout=30).returncode == 0
    r = subprocess.run([TUNNEL, "keygen", "--keys", path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "refusing to replace" in r.stderr
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_connect_opens_a_new_tunnel_when_the_server_restarted(world, relay):
    port, tool = connect(world, "tun.bit", "--dead-after", "2")
    with tool:
        assert get(port, "/index.html?before-restart") == INDEX
        fresh = free_port()                   # a new server process: it knows nothing of our tunnel
        with running_tool("serve", "--name", "d/tun", "--forward", f"127.0.0.1:{world.web_port}", "--keys",
                          world.keys, "--listen", f"127.0.0.1:{fresh}", *light_args(world.node, world.pin, world.light()),
                          ready="serving d/tun"):
            relay.server = ("127.0.0.1", fresh)
            try:
                with pytest.raises(OSError):
                    get(port, "/index.html?lost", timeout=4)
                time.sleep(2)
                assert get(port, "/index.html?after-restart") == INDEX
            finally:
                relay.server = ("127.0.0.1", world.udp_port)
