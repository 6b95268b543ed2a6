"""The Python API (tunnel.client.Tunnel) against the real `dotbit-tunnel serve` process, with
keys from the verified resolve path: a rekey mid-transfer, a change of the client's address
mid-transfer, an ephemeral-key rotation with clients still on the old key, and an open flood
that makes the server ask for puzzles while a legitimate client still gets through."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace

import pytest

from support.resolver import OWNER
import support.tunnel
from support.harness import free_port
from support.tunnel import BIG, INDEX, TUNNEL, light_args, running_tool
from core.ekey import make_update
from light.client import LightClient
from core.params import REGTEST
from tunnel import crypto as C
from tunnel import packet as P
from tunnel.client import Tunnel, TunnelError
from tunnel.resolve import resolve_server


def resolved(world, name: str = "tun.bit"):
    async def go():
        url = f"http://127.0.0.1:{world.node.http_port}"
        async with LightClient(REGTEST, world.light(), url, world.pin) as light:
            return await resolve_server(light, name)
    return asyncio.run(go())


async def fetch(tunnel: Tunnel, path: str, during=None) -> bytes:
    """An HTTP/1.0 GET over one tunnel connection; `during(received_bytes)` is awaited as data
    arrives (to move or rekey mid-transfer)."""
    conn = tunnel.connection()
    conn.write(f"GET {path} HTTP/1.0\r\nHost: tun.bit\r\n\r\n".encode())
    conn.close()
    await tunnel.wait_open()
    out = bytearray()
    while data := await asyncio.wait_for(conn.read(), 60):
        out += data
        if during:
            await during(len(out))
    head, _, body = bytes(out).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head[:100]
    return body


async def _until(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def test_rekey_mid_transfer(world, relay):
    info = resolved(world)

    async def go():
        async with Tunnel(info, rekey_bytes=20_000) as t:
            tids, mid = {t.session.tid}, []

            async def during(n):
                tids.add(t.session.tid)
                if n > 200_000 and not mid:
                    # With 64 KiB datagrams the rest can arrive before the first rekey's round
                    # trip ends (a CI flake): hold the reader until it has, so data flows on both
                    # sides of it. The session keeps running meanwhile; only this stream waits.
                    await _until(lambda: t.session.rekeys >= 1)
                    mid.append(t.session.rekeys)
            body = await fetch(t, "/big.bin", during)
            return body, mid[0], len(tids)
    body, rekeys_midway, tunnel_ids = asyncio.run(go())
    assert body == BIG and rekeys_midway >= 1 and tunnel_ids >= 2     # rekeyed (new tunnel IDs) while data flowed


def test_address_change_mid_transfer(world, relay):
    info = resolved(world)
    relay.impair(drop=0.02)

    async def go():
        async with Tunnel(info) as t:
            moved = []

            async def during(n):
                if n > 200_000 and not moved:
                    moved.append(t.transport.get_extra_info("sockname"))
                    before = t.session.rekeys
                    await t.rebind()               # a new source port: the tunnel carries on by its ID
                    await _until(lambda: t.session.rekeys > before)    # as above: mid-transfer, not after
            body = await fetch(t, "/big.bin", during)
            assert t.transport.get_extra_info("sockname") != moved[0]
            return body, t.session.rekeys
    body, rekeys = asyncio.run(go())
    assert body == BIG and rekeys >= 1             # moving also rekeyed


def test_eph_key_rotation_serves_old_and_new_clients(world, relay):
    old = resolved(world)
    out = subprocess.run([TUNNEL, "ekey-new", "--keys", world.keys], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    new_key = json.loads(out.stdout)["eph_key"]
    eph = base64.b64decode(new_key)
    update = make_update(b"d/tun", eph, int(time.time()), int(time.time()) + 3600, OWNER.secret, OWNER.pubkey)
    req = urllib.request.Request(f"http://127.0.0.1:{world.node.http_port}/v1/ekey", data=update.to_bytes(),
                                 headers={"Content-Type": "application/msgpack"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    new = resolved(world)
    assert new.eph_key == eph != old.eph_key
    time.sleep(1.5)                                # serve re-reads its key file within a second

    async def go(info):
        async with Tunnel(info, open_timeout=3) as t:
            return await fetch(t, "/index.html")
    assert asyncio.run(go(old)) == INDEX           # clients still holding the old key (overlap)
    assert asyncio.run(go(new)) == INDEX           # and those that resolved after the rotation
    with pytest.raises(TunnelError) as e:          # a key the server never held: no reply at all
        asyncio.run(go(replace(old, eph_key=C.public_of(os.urandom(32)))))
    assert e.value.check == "handshake"


def _flood(port: int, key_id: bytes, stop: threading.Event, sent: list) -> None:
    """Opens with the right key id and garbage inside, as fast as one thread can."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    junk = os.urandom(200)
    n = 0
    while not stop.is_set():
        pkt = P.Open(os.urandom(8), 0, key_id, os.urandom(32), int(time.time()), bytes(16), bytes(8), junk)
        s.sendto(pkt.to_bytes(), ("127.0.0.1", port))
        n += 1
        if n % 50 == 0:
            time.sleep(0.005)
    s.close()
    sent.append(n)


def test_open_flood_triggers_puzzles_and_a_real_client_still_connects(world, relay):
    info = resolved(world)
    stop, sent = threading.Event(), []
    flood = threading.Thread(target=_flood, args=(world.udp_port, C.key_id(info.eph_key), stop, sent))
    flood.start()
    try:
        time.sleep(1.0)

        async def go():
            async with Tunnel(info, open_timeout=20) as t:
                body = await fetch(t, "/index.html")
                return body, t.puzzles
        body, puzzles = asyncio.run(go())
    finally:
        stop.set()
        flood.join(10)
    assert body == INDEX and puzzles >= 1 and sent[0] > 200


def test_rekey_on_a_timer_keeps_the_tunnel(world, relay):
    info = resolved(world)

    async def go():
        async with Tunnel(info, rekey_interval=0.3) as t:
            first = await fetch(t, "/index.html?timer-1")
            tid = t.session.tid
            await asyncio.sleep(1.0)             # idle: the timer alone rekeys
            second = await fetch(t, "/index.html?timer-2")
            return first, second, t.session.rekeys, t.session.tid != tid
    first, second, rekeys, moved = asyncio.run(go())
    assert first == second == INDEX and rekeys >= 1 and moved


def test_serve_rotates_and_publishes_on_a_schedule(world, relay):
    before = resolved(world)
    signer = f"{sys.executable} {os.path.join(os.path.dirname(support.tunnel.__file__), 'tunnel_signer.py')} " \
             f"http://127.0.0.1:{world.node.http_port} d/tun"
    port = free_port()
    with running_tool("serve", "--name", "d/tun", "--forward", f"127.0.0.1:{world.web_port}", "--keys", world.keys,
                      "--listen", f"127.0.0.1:{port}", "--rotate-every", "1.5", "--publish-cmd", signer,
                      *light_args(world.node, world.pin, world.light()), ready="serving d/tun") as serve:
        relay.server = ("127.0.0.1", port)
        try:
            end = time.monotonic() + 30
            while (after := resolved(world)).eph_key == before.eph_key and time.monotonic() < end:
                time.sleep(0.5)
            assert after.eph_key != before.eph_key, serve.stderr_text()

            async def go(info):
                async with Tunnel(info, open_timeout=3) as t:
                    return await fetch(t, "/index.html?scheduled")
            assert asyncio.run(go(after)) == INDEX        # the published key opens
            assert asyncio.run(go(before)) == INDEX       # and the one before it, within the overlap
        finally:
            relay.server = ("127.0.0.1", world.udp_port)
    assert "made and published" in serve.stderr_text()


# --- path MTU discovery over real sockets (tunnel/pmtu.py): the relay measures and limits sizes ---

def _fetch_big(world, during=None) -> bytes:
    info = resolved(world)

    async def go():
        async with Tunnel(info) as t:
            return await fetch(t, "/big.bin", during)
    return asyncio.run(go())


def test_probes_raise_the_datagram_size_over_loopback(world, relay):
    assert _fetch_big(world) == BIG
    assert relay.largest > 8972 and relay.too_big == 0      # the server's answers grew past 1400 bytes


def test_a_path_that_drops_big_datagrams_keeps_1400_bytes(world, relay):
    relay.impair(max_size=P.BASE_DATAGRAM)
    assert _fetch_big(world) == BIG
    assert relay.largest <= P.BASE_DATAGRAM and relay.too_big >= 1     # probes were sent and lost, data was not


def test_a_black_hole_mid_transfer_falls_back_and_the_transfer_completes(world, relay):
    seen = []

    async def during(n):
        if n > 150_000 and not seen:
            seen.append(relay.largest)
            relay.impair(max_size=P.BASE_DATAGRAM)       # the route changes: big datagrams now vanish
    assert _fetch_big(world, during) == BIG
    assert seen[0] > P.BASE_DATAGRAM and relay.too_big >= 1
