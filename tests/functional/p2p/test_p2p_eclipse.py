"""Address-book poisoning (issue 15 §3), with real node processes: one source flooding addr
messages is rate-limited and, even unlimited, fills only its share of the book; the honest
peer survives; dead addresses are demoted so the node still reaches the honest peer; after a
restart the anchors bring it back at once.

The attacker connects from 127.1.0.6 (its own /24, so its own source group) and announces
loopback addresses on port 1, where nothing listens: "dead" without the node dialling
anything off this machine. Honest nodes listen on 127.0.0.1."""
from __future__ import annotations

import json
import os
import random
import re
import time
import urllib.request

from support.harness import NodeProcess, free_port, stop_node
from p2p import messages as M
from p2p.addrpolicy import BUCKET_SIZE, NEW_BUCKETS_PER_SOURCE_GROUP
from support.p2p import RawPeer, wait_until

ATTACKER = "127.1.0.6"
ATTACKER_GROUP = "127.1.0.0/24"


def metric(port: int, name: str, labels: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\d+)$", text, re.M)
    return int(m.group(1)) if m else -1


def addr_seen(port: int) -> int:
    return sum(max(0, metric(port, "dotbit_p2p_addr_total", f'result="{r}"'))
               for r in ("added", "known_or_refused", "rate_limited"))


def flood(peer: RawPeer, messages: int, seed: int) -> None:
    """`messages` full addr messages of distinct dead loopback addresses, stamped a day ahead
    (the old book clamped that to "now": always the freshest)."""
    rng = random.Random(seed)
    ahead = int(time.time()) + 86400
    for _ in range(messages):
        peer.send(M.Addr(tuple((f"127.{rng.randrange(2, 255)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", 1, ahead)
                               for _ in range(M.MAX_ADDR))))


def book(node: NodeProcess) -> dict:
    return {f'{a["address"]}:{a["port"]}': a for a in node.call("getnodeaddresses", 0)}


def outbound_to(node: NodeProcess, target: str) -> bool:
    return any(not p["inbound"] and p["addr"] == target and p["handshake_done"] for p in node.call("getpeerinfo"))


def test_an_addr_flood_from_one_peer_is_rate_limited(tmp_path):
    mport = free_port()
    v = NodeProcess(str(tmp_path / "victim"), "--metrics-port", str(mport))
    attacker = None
    try:
        v.start()
        attacker = RawPeer(v.p2p_port, ATTACKER)
        attacker.handshake()
        flood(attacker, 12, seed=1)
        wait_until(lambda: addr_seen(mport) >= 12 * M.MAX_ADDR, 30, "the node to read every addr message")
        # 0.1 addresses a second after a first one: nearly all 12,000 dropped, counted, not punished
        assert metric(mport, "dotbit_p2p_addr_total", 'result="rate_limited"') >= 12 * M.MAX_ADDR - 5
        from_attacker = [a for a in book(v).values() if a["source"] == ATTACKER_GROUP]
        assert len(from_attacker) <= 5, len(from_attacker)
        assert all(a["time"] <= time.time() for a in from_attacker)       # a day ahead: not believed
        assert v.call("listbanned") == []
    finally:
        if attacker is not None:
            attacker.close()
        stop_node(v, keep_data=True)


def test_one_source_cannot_poison_the_book_and_anchors_bring_the_honest_peer_back(tmp_path):
    h = NodeProcess(str(tmp_path / "honest"))
    mport = free_port()
    # the rate limit off: the book's own bucketing must bound what one source adds
    v = NodeProcess(str(tmp_path / "victim"), "--addr-rate", "0", "--metrics-port", str(mport))
    attacker = None
    try:
        h.start()
        v.start()
        v.call("addnode", h.p2p_addr, "onetry")
        wait_until(lambda: book(v).get(h.p2p_addr, {}).get("tried"), 20, "the honest peer in the tried table")
        attacker = RawPeer(v.p2p_port, ATTACKER)
        attacker.handshake()
        flood(attacker, 12, seed=2)
        wait_until(lambda: addr_seen(mport) >= 12 * M.MAX_ADDR, 30, "the node to read every addr message")
        entries = book(v)
        from_attacker = [a for a in entries.values() if a["source"] == ATTACKER_GROUP]
        assert len(from_attacker) <= NEW_BUCKETS_PER_SOURCE_GROUP * BUCKET_SIZE, len(from_attacker)
        assert h.p2p_addr in entries and entries[h.p2p_addr]["tried"]
        assert metric(mport, "dotbit_p2p_addrbook_changes_total", 'change="refused"') > 0
        assert metric(mport, "dotbit_p2p_addrbook_entries", 'table="tried"') >= 1
        attacker.close()
        attacker = None
        v.stop()
        with open(os.path.join(v.datadir, "peers.json")) as f:
            assert ["127.0.0.1", h.p2p_port] in json.load(f)["anchors"]

        # restarted with no --addnode: the anchor is dialled first, whatever the book holds
        v.start()
        started = time.monotonic()
        wait_until(lambda: outbound_to(v, h.p2p_addr), 10, "an outbound connection to the honest peer")
        assert time.monotonic() - started < 10
    finally:
        if attacker is not None:
            attacker.close()
        stop_node(v, keep_data=True)
        stop_node(h, keep_data=True)


def test_dead_addresses_are_demoted_and_the_honest_peer_is_reached(tmp_path):
    h = NodeProcess(str(tmp_path / "honest"))
    mport = free_port()
    v = NodeProcess(str(tmp_path / "victim"), "--addr-rate", "0", "--metrics-port", str(mport))
    peers = []
    try:
        h.start()
        v.start()
        # an honest peer tells of the honest node (an hour ago); the attacker, in one message,
        # of eight dead addresses "seen" a day from now
        friend = RawPeer(v.p2p_port, "127.2.0.1")
        peers.append(friend)
        friend.handshake()
        friend.send(M.Addr((("127.0.0.1", h.p2p_port, int(time.time()) - 3600),)))
        attacker = RawPeer(v.p2p_port, ATTACKER)
        peers.append(attacker)
        attacker.handshake()
        dead = [(f"127.3.{i}.1", 1) for i in range(8)]
        attacker.send(M.Addr(tuple((host, port, int(time.time()) + 86400) for host, port in dead)))
        wait_until(lambda: addr_seen(mport) >= 9, 10, "both addr messages read")
        wait_until(lambda: outbound_to(v, h.p2p_addr), 20, "an outbound connection to the honest peer")
        # every dead address tried has been demoted (attempts count against it)
        wait_until(lambda: metric(mport, "dotbit_p2p_outbound_dials_total", 'result="failed"') >= 1, 10,
                   "a failed dial counted")
        entries = book(v)
        tried_dead = [entries[f"{h_}:{p}"] for h_, p in dead if f"{h_}:{p}" in entries]
        assert any(a["attempts"] >= 1 for a in tried_dead)
        assert all(not a["tried"] for a in tried_dead) and entries[h.p2p_addr]["tried"]
    finally:
        for p in peers:
            p.close()
        stop_node(v, keep_data=True)
        stop_node(h, keep_data=True)


def test_a_node_upgraded_in_place_migrates_its_old_address_book(tmp_path):
    h = NodeProcess(str(tmp_path / "honest"))
    v = NodeProcess(str(tmp_path / "victim"))
    try:
        h.start()
        os.makedirs(v.datadir)
        now = int(time.time())
        # the format before new/tried tables: {"host:port": last_seen}, the dead one "seen" ahead
        with open(os.path.join(v.datadir, "peers.json"), "w") as f:
            json.dump({h.p2p_addr: now - 100, "127.3.0.1:1": now + 10 ** 6, "junk": "x"}, f)
        v.start()
        entries = book(v)
        assert set(entries) >= {h.p2p_addr, "127.3.0.1:1"} and entries["127.3.0.1:1"]["time"] <= now
        wait_until(lambda: outbound_to(v, h.p2p_addr), 20, "an outbound connection from the migrated book")
        v.stop()
        with open(os.path.join(v.datadir, "peers.json")) as f:
            saved = json.load(f)
        assert saved["version"] == 2 and ["127.0.0.1", h.p2p_port] in [r[:2] for r in saved["tried"]]
    finally:
        stop_node(v, keep_data=True)
        stop_node(h, keep_data=True)
