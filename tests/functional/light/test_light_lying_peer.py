"""A lying --peer must not stop the light client (it once failed the whole call): a p2p
listener that answers with the node's own headers and, above them, headers that fail the
checks (proof of work, bits, time, linkage, a start outside our locator) is noted and skipped while an honest peer's headers
carry the answer; with only liars the call fails (the user asked for the network's view)."""
from __future__ import annotations

import asyncio
import dataclasses
import threading
import time

import pytest

from core.consensus import check_pow
from core.errors import ValidationError
from core.params import REGTEST
from core.primitives import Header
from support.header_peer import serve_headers
from support.light import caught, light_dir, resolve


def _mined(prev: bytes, **fields) -> bytes:
    """A header on top of `prev` (wire bytes), its nonce ground until the hash meets (or,
    with pow_ok=False, misses) the target its bits say."""
    pow_ok = fields.pop("pow_ok", True)
    p = Header.from_wire(prev)
    h = Header(p.version, p.hash, bytes([9]) * 32, p.name_root, p.time + 1, p.bits, 0)
    h = dataclasses.replace(h, **fields)
    for nonce in range(1 << 20):
        h = dataclasses.replace(h, nonce=nonce)
        try:                                      # the consensus rule itself decides
            check_pow(h, h.hash, REGTEST)
            meets = True
        except ValidationError:
            meets = False
        if meets == pow_ok:
            return h.to_bytes()
    raise AssertionError("no nonce found")


def _lie(kind: str, headers: list[bytes]) -> list[bytes]:
    """The node's header chain and, above its tip (where the client has no headers yet),
    three more that are wrong in one way."""
    tip = headers[-1]
    if kind == "no-proof-of-work":
        extra = [_mined(tip, pow_ok=False)]
    elif kind == "wrong-bits":                   # not the bits the chain's history sets
        extra = [_mined(tip, bits=0x207fffff if Header.from_wire(tip).bits != 0x207fffff else 0x2000ffff)]
    elif kind == "time-far-ahead":                # more than two hours in the future
        extra = [_mined(tip, time=int(time.time()) + 86_400)]
    elif kind == "does-not-link":                 # the second does not build on the first
        first = _mined(tip)
        extra = [first, _mined(first, prev_hash=bytes([7]) * 32)]
    else:                                         # starts from no header of ours
        extra = [_mined(tip, prev_hash=bytes([7]) * 32)]
    while len(extra) < 3:
        extra.append(_mined(extra[-1]))
    return headers + extra


class LyingPeer:
    """support.header_peer's listener serving `headers`, on a loop in a thread of its own."""

    def __init__(self, headers: list[bytes]):
        self.headers = headers
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server, port = self.loop.run_until_complete(serve_headers(self.headers))
        self.addr = f"127.0.0.1:{port}"
        self.ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()


@pytest.fixture(scope="module")
def chain(node):
    tip = node.call("getblockcount")
    return [bytes.fromhex(node.call("getblockheader", node.call("getblockhash", h), False)) for h in range(tip + 1)]


def url(n) -> str:
    return f"http://127.0.0.1:{n.http_port}"


@pytest.mark.parametrize("kind, reason", [
    ("no-proof-of-work", "high-hash"),
    ("wrong-bits", "bad-diffbits"),
    ("time-far-ahead", "time-too-new"),
    ("does-not-link", "does not link to the previous header"),
    ("foreign-start", "do not start from our locator"),
])
def test_a_lying_peer_is_skipped_and_an_honest_one_carries_the_answer(node, key, chain, kind, reason):
    with LyingPeer(_lie(kind, chain)) as liar:
        alone = resolve("light.bit", "--peer", liar.addr, url=url(node), pin=key.fingerprint, light_dir=light_dir())
        caught(alone, "connect", "sent headers that fail our checks")
        assert reason in alone.stderr, alone.stderr          # refused for the lie planted, not another
        both = resolve("light.bit", "--peer", liar.addr, "--peer", node.p2p_addr, url=url(node),
                       pin=key.fingerprint, light_dir=light_dir())
    assert both.returncode == 0, both.stderr
    assert f"{liar.addr} sent headers that fail our checks" in both.stdout + both.stderr
