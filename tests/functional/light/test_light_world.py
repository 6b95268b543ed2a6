"""One resolver must not decide what the world looks like (issue 14 §2). A frozen resolver --
a copy of the node's data directory and key, started later and cut off from the network,
while the real node moves on (a name updated, more blocks) -- answers with a valid
signature and valid proofs against its old chain. The light client catches it with headers
from a full node over p2p (`--peer`: stale-tip, or wrong-header once the copy mines its own
lower-work fork), and with no peer by the wall-clock bound (`--max-tip-age`: stale-chain).
A resolver that withholds headers is answered around by the peer's headers."""
from __future__ import annotations

import os
import shutil
import time

import pytest
from aiohttp import web

from support.harness import free_port
from support.light import caught, light_dir, resolve, running_stub
from support.light_proxy import LyingProxy
from support.resolver import ResolverNode, needs_tools, tool_query
from core.envelope import open_envelope, seal

OLD_IP, NEW_IP = "198.51.100.1", "198.51.100.2"     # d/stale before and after the update


@pytest.fixture(scope="module")
def frozen(node):
    """The copy, serving the chain as it was; the real node then updates d/stale and mines on."""
    node.stop()
    copy = node.datadir + "-frozen"
    shutil.copytree(node.datadir, copy, ignore=shutil.ignore_patterns(".cookie", "test-node.log", "*.lock"))
    node.start()
    twin = ResolverNode(copy)
    twin.start()
    try:
        node.update(b"d/stale", {"ip": [NEW_IP]})
        node.mine(8)                    # more than --max-behind (6) past the copy's tip
        yield twin
    finally:
        try:
            twin.stop()
        except Exception:
            twin.kill()
        shutil.rmtree(copy, ignore_errors=True)


@pytest.fixture(scope="module")
def forked(frozen):
    """The copy mines blocks of its own: a valid branch with less work than the network's.
    (Two, since a resolver reuses a cached answer made one block ago.)"""
    frozen.mine(2)
    return frozen


def url(n) -> str:
    return f"http://127.0.0.1:{n.http_port}"


def test_a_peer_shows_the_frozen_resolver_is_behind(node, frozen, key):
    r = resolve("stale.bit", url=url(frozen), pin=key.fingerprint, light_dir=light_dir())
    assert r.returncode == 0 and OLD_IP in r.stdout, r.stderr      # alone it looks fine: the gap
    d = light_dir()
    caught(resolve("stale.bit", "--peer", node.p2p_addr, url=url(frozen), pin=key.fingerprint, light_dir=d),
           "stale-tip", "behind our tip")
    ok = resolve("stale.bit", "--peer", node.p2p_addr, url=url(node), pin=key.fingerprint, light_dir=d)
    assert ok.returncode == 0 and NEW_IP in ok.stdout and OLD_IP not in ok.stdout, ok.stderr
    tip = node.call("getblockcount")
    assert os.path.getsize(os.path.join(d, "headers.dat")) == 112 * (tip + 1)     # the peer's headers persisted


@needs_tools("dig")
def test_the_stub_serves_only_what_the_cli_accepts(node, frozen, key):
    with running_stub(url(frozen), key.fingerprint, light_dir(), "--peer", node.p2p_addr) as (port, _):
        assert "status: SERVFAIL" in tool_query("dig", port, "stale.bit", "A")
    with running_stub(url(node), key.fingerprint, light_dir(), "--peer", node.p2p_addr) as (port, _):
        out = tool_query("dig", port, "stale.bit", "A")
        assert "status: NOERROR" in out and NEW_IP in out, out


def test_with_no_peer_the_age_bound_catches_it(frozen, key):
    tip = frozen.call("getblock", frozen.call("getbestblockhash"))["time"]
    time.sleep(max(0.0, tip + 3 - time.time()))
    d = light_dir()
    caught(resolve("stale.bit", "--max-tip-age", "2", url=url(frozen), pin=key.fingerprint, light_dir=d),
           "stale-chain", "--accept-stale")
    ok = resolve("stale.bit", "--max-tip-age", "2", "--accept-stale", url=url(frozen), pin=key.fingerprint,
                 light_dir=d)
    assert ok.returncode == 0 and OLD_IP in ok.stdout, ok.stderr     # only when the user says so, for that call


def test_a_lower_work_fork_with_valid_proofs_is_refused(node, forked, key):
    frozen = forked
    d = light_dir()
    alone = resolve("stale.bit", url=url(frozen), pin=key.fingerprint, light_dir=d)
    assert alone.returncode == 0 and OLD_IP in alone.stdout, alone.stderr     # its proofs do verify
    caught(resolve("stale.bit", "--peer", node.p2p_addr, url=url(frozen), pin=key.fingerprint, light_dir=d),
           "wrong-header", "not in our header chain")
    s = resolve("sync", "--peer", node.p2p_addr, url=url(frozen), pin=key.fingerprint, light_dir=light_dir())
    assert s.returncode == 0 and f"height {node.call('getblockcount')}," in s.stdout, s.stderr
    assert f"note: {url(frozen)} serves a chain with less work than ours" in s.stderr, s.stderr


def test_several_pinned_resolvers_keep_the_most_work(node, forked, key):
    frozen = forked
    d = light_dir()
    caught(resolve("stale.bit", "--resolver", url(node), "--pin", key.fingerprint, url=url(frozen),
                   pin=key.fingerprint, light_dir=d), "wrong-header")
    r = resolve("stale.bit", "--resolver", url(node), "--pin", "0" * 64, url=url(frozen), pin=key.fingerprint,
                light_dir=d)
    caught(r, "pin")                      # every resolver is pinned, header sources too


class _Withholding(LyingProxy):
    """The real resolver's answers, but no headers above `upto`."""
    upto = 0

    async def _handle(self, request):
        resp = await super()._handle(request)
        if not request.path.startswith("/v1/headers"):
            return resp
        body = open_envelope(resp.body, self.key.public_key)
        start = int(request.query["from"])
        body["answer"]["headers"] = body["answer"]["headers"][:max(0, self.upto + 1 - start)]
        return web.Response(body=seal(body, self.sign, "msgpack"), content_type="application/msgpack")


def test_withheld_headers_come_from_the_peer(node, key):
    with _Withholding(url(node), key) as proxy:
        proxy.upto = node.call("getblockcount") - 3
        caught(resolve("stale.bit", url=proxy.url, pin=key.fingerprint, light_dir=light_dir()), "tip-ahead")
        ok = resolve("stale.bit", "--peer", node.p2p_addr, url=proxy.url, pin=key.fingerprint,
                     light_dir=light_dir())
        assert ok.returncode == 0 and NEW_IP in ok.stdout, ok.stderr


def test_no_peer_answering_is_a_failed_check(frozen, key):
    r = resolve("stale.bit", "--peer", f"127.0.0.1:{free_port()}", url=url(frozen), pin=key.fingerprint,
                light_dir=light_dir())
    caught(r, "connect")
    bad = resolve("stale.bit", "--peer", "nonsense", url=url(frozen), pin=key.fingerprint, light_dir=light_dir())
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "HOST:PORT" in bad.stderr, bad.stderr
