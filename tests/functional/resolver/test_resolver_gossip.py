"""MinimaLT ephemeral-key updates travel between nodes over p2p: an update accepted by one
node's HTTP API is served by a peer's DNS, and a later update replaces it there too."""
from __future__ import annotations

import base64
import time
import urllib.request

import dns.message
import dns.query

from support.resolver import OWNER, ResolverNode, new_datadir
from node.resolver.ekeys import make_update

NAME = b"d/gossip"
VALUE = {"ip": ["192.0.2.8"], "minimalT": {"port": 7000, "id_key": base64.b64encode(bytes([1] * 32)).decode(),
                                          "eph_key": base64.b64encode(bytes([2] * 32)).decode()}}


def minimalt_txt(node) -> str:
    q = dns.message.make_query("_minimalt._udp.gossip.bit.", "TXT")
    r = dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5)
    return b"".join(r.answer[0][0].strings).decode() if r.answer else ""


def post_ekey(node, update) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{node.http_port}/v1/ekey", data=update.to_bytes(),
                                 headers={"Content-Type": "application/msgpack"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def wait_for(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_ekey_updates_gossip_to_peers():
    a = ResolverNode(new_datadir())
    a.start()
    b = None
    try:
        a.fund(blocks=103)
        a.register({NAME: VALUE})
        b = ResolverNode(new_datadir(), "--connect", a.p2p_addr)
        b.start()
        assert wait_for(lambda: b.call("getblockcount") == a.call("getblockcount"))
        assert wait_for(lambda: b.call("getconnectioncount") >= 1)
        now = int(time.time())
        for seq, eph in ((1, bytes([7] * 32)), (2, bytes([8] * 32))):
            assert post_ekey(a, make_update(NAME, eph, seq, now + 3600, OWNER.secret, OWNER.pubkey)) == 200
            want = "eph_key=" + base64.b64encode(eph).decode()
            assert want in minimalt_txt(a)
            assert wait_for(lambda: want in minimalt_txt(b)), minimalt_txt(b)
    finally:
        for n in (b, a):
            if n is not None:
                try:
                    n.stop()
                except Exception:
                    n.kill()
