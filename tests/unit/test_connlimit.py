"""core/connlimit.py: per-source caps and who gives up a slot when a server is full."""
from __future__ import annotations

import pytest

from core.connlimit import ConnCaps, SourceLimiter, parse_exempt, source_group


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@pytest.mark.parametrize("address,group", [("192.0.2.77", "192.0.2.0/24"), ("::ffff:192.0.2.9", "192.0.2.0/24"),
                                           ("2001:db8:1:2ff:ffff::1", "2001:db8:1:200::/56"),
                                           ("not-an-ip", "not-an-ip")])
def test_sources_are_grouped_by_24_and_56(address, group):
    assert source_group(address) == group


def test_per_address_and_per_network_caps_refuse_and_release_frees():
    lim = SourceLimiter(100, per_address=2, per_group=3)
    assert lim.admit("a1", "10.0.0.1") == (True, []) and lim.admit("a2", "10.0.0.1") == (True, [])
    assert lim.admit("a3", "10.0.0.1") == (False, [])          # per address
    assert lim.admit("b1", "10.0.0.2") == (True, [])
    assert lim.admit("b2", "10.0.0.2") == (False, [])          # per /24: 3 already
    assert lim.admit("c1", "10.0.1.2") == (True, [])           # another /24
    assert lim.refused == 2
    lim.release("a1")
    lim.release("a1")                                           # twice is harmless
    assert lim.admit("a3", "10.0.0.1") == (True, []) and len(lim) == 4


def test_when_full_the_biggest_holder_gives_up_its_least_recently_active_connection():
    lim = SourceLimiter(4, clock=Clock())
    for i in range(3):
        lim.admit(f"x{i}", "198.51.100.1")
    lim.admit("y0", "203.0.113.5")
    lim.touch("x0")                                            # x0 just worked: x1 is the idlest
    assert lim.admit("z0", "192.0.2.1") == (True, ["x1"])
    assert lim.evicted == 1 and len(lim) == 4
    # The biggest holder itself is not let in at its own expense...
    assert lim.admit("x9", "198.51.100.1") == (False, [])
    # ...nor does anyone lose a slot to a source holding about as many.
    assert lim.admit("y1", "203.0.113.5") == (False, [])        # 2 held against its 1
    assert lim.admit("w0", "192.0.2.200") == (True, ["x2"])     # 2 held against none


def test_exempt_networks_skip_the_per_source_caps_and_none_is_the_default():
    assert ConnCaps().exempt == () and parse_exempt(["none"]) == ()
    lim = ConnCaps(per_address=1, per_group=1, exempt=("127.0.0.0/8",)).limiter(10)
    assert lim.admit(1, "127.0.0.1")[0] and lim.admit(2, "127.0.0.1")[0]
    assert lim.admit(3, "10.0.0.1")[0] and not lim.admit(4, "10.0.0.1")[0]
    with pytest.raises(ValueError):
        parse_exempt(["10.0.0.0/33"])


def test_default_caps_are_shares_of_each_servers_total():
    lim = ConnCaps().limiter(1024)
    assert (lim.max_total, lim.per_address, lim.per_group) == (1024, 64, 256)
    assert ConnCaps(per_address=5).limiter(256).per_address == 5


class _Writer:
    def __init__(self, host: str):
        self.host = host
        self.closed = False

    def get_extra_info(self, key):
        return (self.host, 40000) if key == "peername" else None

    def close(self):
        self.closed = True


def test_p2p_inbound_when_full_evicts_the_biggest_holders_oldest_peer(tmp_path):
    """p2p/connections.py's accept path with the shared limiter: 4 slots, 2 per address; one
    network holds them all, a peer from another network still gets in."""
    import asyncio

    from p2p.connections import Connections, P2PConfig

    class Held(Connections):
        def _add_peer(self, peer):
            self.peers[peer.id] = peer

        def on_closed(self, peer):
            self.peers.pop(peer.id, None)

    async def scenario():
        conns = Held(str(tmp_path), P2PConfig(port=1, maxpeers=4, max_inbound_per_host=2))
        writers = [_Writer(h) for h in ("10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.2", "10.0.0.3")]
        for w in writers:
            await conns._accept(None, w)
        assert [w.closed for w in writers] == [False] * 4 + [True]     # per-network cap: 4 per /24
        newcomer = _Writer("192.0.2.9")
        await conns._accept(None, newcomer)
        assert not newcomer.closed and writers[0].closed                # the oldest of the biggest holder
        assert len(conns.peers) == 4 and conns.inbound_limiter.evicted == 1
    asyncio.run(scenario())
