"""Peers that try to make a node store what cannot become its chain (issue 15, §1-2): header
branches that cannot lead to more work, and blocks nobody asked for on a losing branch. The
victim keeps following its honest peer, stores next to nothing, and bans the senders.
Attackers connect from their own loopback addresses so that their bans spare the honest node."""
from __future__ import annotations

import os
import urllib.request

import pytest

from core.primitives import Block, Header, Tx, TxOut, block_merkle_root
from core.params import REGTEST
from node.mining.miner import solve_quick
from p2p import messages as M
from support.chain import Key
from support.harness import NodeProcess, free_port
from wallet.nodeclient import NodeError
from support.p2p import RawPeer, chain_headers, copy_chain, wait_until

TO = Key.from_seed(77).address


def branch(parent: Header, n: int, salt: int, start_time: int) -> list[Header]:
    """n pow-limit headers on `parent`, each stamped one second after the one before."""
    out, prev = [], parent
    for i in range(n):
        hdr = Header(1, prev.hash, salt.to_bytes(4, "little") + bytes(28), bytes(32), start_time + i,
                     REGTEST.pow_limit_bits, 0)
        prev = solve_quick(hdr, REGTEST.pow_limit)
        out.append(prev)
    return out


def fat_block(parent: Header, height: int, salt: int) -> Block:
    """A valid-looking ~80 kB block on `parent`: a coinbase with 3,000 outputs."""
    cb = Tx(1, (), tuple(TxOut(1 + (salt if i == 0 else 0), TO) for i in range(3000)), height)
    hdr = Header(1, parent.hash, block_merkle_root([cb]), bytes(32), parent.time + 1, REGTEST.pow_limit_bits, 0)
    return Block(solve_quick(hdr, REGTEST.pow_limit), (cb,))


def attacker(v: NodeProcess, source: str) -> RawPeer:
    peer = RawPeer(v.p2p_port, source)
    peer.handshake(height=10_000)

    def answer(p, msg):                       # stays a polite peer in every other respect
        if msg.command == "ping":
            p.send(M.Pong(msg.nonce))
    peer.serve_forever_in_thread(answer)
    return peer


def send_until_closed(peer: RawPeer, msgs) -> int:
    sent = 0
    try:
        for m in msgs:
            peer.send(m)
            sent += 1
    except OSError:
        pass                                  # banned and hung up on mid-attack
    return sent


def rss_kib(node: NodeProcess) -> int:
    with open(f"/proc/{node.proc.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def start_pair(cached, tmp_path):
    h = NodeProcess(copy_chain(cached, str(tmp_path / "honest"))).start()
    v = NodeProcess(copy_chain(cached, str(tmp_path / "victim")), "--connect", h.p2p_addr,
                    "--metrics-port", str(free_port()))
    try:
        v.start()
        wait_until(lambda: v.call("getconnectioncount") >= 1, 20, "victim connected to honest")
    except BaseException:
        h.stop()
        raise
    return h, v


def honest_progress(h: NodeProcess, v: NodeProcess, blocks: int) -> None:
    tip = h.call("generate", blocks)[-1]
    wait_until(lambda: v.call("getbestblockhash") == tip, 30, "victim to follow its honest peer")


def test_low_work_header_branches_are_not_kept(cached, tmp_path):
    headers = [Header.from_bytes(r) for r in chain_headers(cached.datadir)]
    tip_time = max(hd.time for hd in headers)
    h, v = start_pair(cached, tmp_path)
    peers = []
    try:
        rss0 = rss_kib(v)
        # 1: 60 branches of 100 headers forking at genesis, far below the chain's work.
        deep = attacker(v, "127.0.0.10")
        peers.append(deep)
        msgs = (M.Headers(tuple(x.to_bytes() for x in branch(headers[0], 100, s, headers[0].time + 1)))
                for s in range(60))
        send_until_closed(deep, msgs)
        assert deep.closed_by_remote(20)
        honest_progress(h, v, 2)
        # 2: 600 short branches just below the tip: cheap, but not one of them leads past it.
        near = attacker(v, "127.0.0.11")
        peers.append(near)
        fork = headers[-6]
        msgs = (M.Headers(tuple(x.to_bytes() for x in branch(fork, 4, s, tip_time + 1))) for s in range(600))
        send_until_closed(near, msgs)
        assert near.closed_by_remote(20)
        honest_progress(h, v, 2)

        banned = {b["address"]: b["ban_reason"] for b in v.call("listbanned")}
        assert "cannot lead to more work" in banned.get("127.0.0.10", ""), banned
        assert "too-many-low-work-headers" in banned.get("127.0.0.11", ""), banned
        assert "127.0.0.1" not in banned
        info = v.call("getnetworkinfo")
        assert info["low_work_headers_refused"] >= 10 * 100, info
        # the near-tip peer's headers left with it; nothing of the attack stays in memory
        wait_until(lambda: v.call("getnetworkinfo")["header_tree"] < 50, 10, "attackers' headers pruned")
        assert rss_kib(v) - rss0 < 40 * 1024, (rss0, rss_kib(v))
        honest_progress(h, v, 1)
    finally:
        for p in peers:
            p.close()
        v.stop()
        h.stop()


def test_unrequested_low_work_blocks_are_not_stored(cached, tmp_path):
    headers = [Header.from_bytes(r) for r in chain_headers(cached.datadir)]
    h, v = start_pair(cached, tmp_path)
    peer = None
    try:
        chain_dir = os.path.join(v.datadir, "chain")
        size0 = dir_bytes(chain_dir)
        blocks, parent = [], headers[1]
        for i in range(140):                   # a branch forking at height 1: far less work
            blocks.append(fat_block(parent, 2 + i, i))
            parent = blocks[-1].header
        peer = attacker(v, "127.0.0.12")
        send_until_closed(peer, (M.BlockMsg(b.to_bytes()) for b in blocks))
        closed = peer.closed_by_remote(20)
        honest_progress(h, v, 3)
        grown = dir_bytes(chain_dir) - size0
        assert grown < 1_000_000, grown        # 140 blocks of ~80 kB would be 11 MB
        for b in blocks[:3]:
            with pytest.raises(NodeError):
                v.call("getblock", b.hash.hex())
        banned = {b["address"]: b["ban_reason"] for b in v.call("listbanned")}
        assert closed and "unrequested block" in banned.get("127.0.0.12", ""), banned
        assert v.call("getnetworkinfo")["unrequested_blocks_refused"] >= 5
        port = v.extra[v.extra.index("--metrics-port") + 1]
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert 'dotbit_p2p_refused_total{what="unrequested_blocks"}' in metrics
    finally:
        if peer is not None:
            peer.close()
        v.stop()
        h.stop()
