"""A node under attack: garbage, oversized frames, an invalid block, a flood, a silent peer and
a peer that announces blocks but never serves them. Each is scored, banned or dropped while
the node still syncs from an honest peer; bans survive a restart, and the restarted node
catches up. Attackers connect from other loopback addresses (127.0.0.x) so that banning
their host leaves the honest nodes on 127.0.0.1 alone."""
from __future__ import annotations

import os
import struct
from dataclasses import replace


from support.chain import COIN, Key
from support.harness import NodeProcess
from core.primitives import Block, Tx, TxOut, block_merkle_root
from node.mining.miner import solve_quick
from core.params import REGTEST
from p2p import messages as M
from support.p2p import RawPeer, chain_headers, copy_chain, wait_until


def invalid_block() -> Block:
    """Height 1 on genesis, its coinbase paying itself more than the subsidy."""
    g = REGTEST.genesis
    cb = Tx(1, (), (TxOut(99 * COIN, Key.from_seed(9).address),), 1)
    hdr = replace(g.header, prev_hash=g.hash, merkle_root=block_merkle_root([cb]), time=g.header.time + 1)
    return Block(solve_quick(hdr, 1 << 254), (cb,))


def test_attackers_banned_while_sync_continues(cached, tmp_path):
    headers = chain_headers(cached.datadir)
    h = NodeProcess(copy_chain(cached, str(tmp_path / "honest"))).start()
    v = NodeProcess(str(tmp_path / "victim"))
    attackers = []
    try:
        v.start()
        # A staller: serves headers for the whole chain, then never answers getdata.
        staller = RawPeer(v.p2p_port, "127.0.0.6")
        attackers.append(staller)
        staller.handshake(height=300)

        def stall(peer, msg):
            if msg.command == "getheaders":
                peer.send(M.Headers(tuple(headers[1:])))
            elif msg.command == "ping":
                peer.send(M.Pong(msg.nonce))
        staller.serve_forever_in_thread(stall)
        wait_until(lambda: any(p["inflight"] for p in v.call("getpeerinfo")), 20, "blocks asked of the staller")

        silent = RawPeer(v.p2p_port, "127.0.0.7")
        attackers.append(silent)
        garbage = RawPeer(v.p2p_port, "127.0.0.2")
        attackers.append(garbage)
        garbage.send_raw(os.urandom(200))
        oversize = RawPeer(v.p2p_port, "127.0.0.3")
        attackers.append(oversize)
        oversize.send_raw(REGTEST.magic + struct.pack("<I", M.MAX_FRAME + 1) + b"x" * 100)
        bad_block = RawPeer(v.p2p_port, "127.0.0.4")
        attackers.append(bad_block)
        bad_block.handshake()
        bad_block.send(M.BlockMsg(invalid_block().to_bytes()))
        flood = RawPeer(v.p2p_port, "127.0.0.5")
        attackers.append(flood)
        flood.handshake()
        try:
            flood.send_raw(M.encode_frame(REGTEST.magic, M.Ping(1)) * 20_000)
        except OSError:
            pass                                 # the node may hang up mid-flood

        for peer in (garbage, oversize, bad_block, flood):
            assert peer.closed_by_remote(10)
        # sync continues with an honest peer despite all of the above
        v.call("addnode", h.p2p_addr, "onetry")
        tip = h.call("getbestblockhash")
        wait_until(lambda: v.call("getbestblockhash") == tip, 60, "victim to sync")
        banned = {b["address"]: b["ban_reason"] for b in v.call("listbanned")}
        assert set(banned) == {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}, banned
        assert "bad-magic" in banned["127.0.0.2"] and "oversize" in banned["127.0.0.3"]
        assert "bad-cb-amount" in banned["127.0.0.4"] and "flood" in banned["127.0.0.5"]
        # a banned host is refused at once; the silent peer and the staller get dropped
        again = RawPeer(v.p2p_port, "127.0.0.2")
        attackers.append(again)
        assert again.closed_by_remote(5)
        assert silent.closed_by_remote(20)
        wait_until(lambda: "block download stalled" in v.log(), 30, "staller dropped")
        assert "127.0.0.6" not in banned           # slow is not malicious: dropped, not banned
    finally:
        for a in attackers:
            a.close()
        v.stop()

    # restart: the victim catches up on blocks mined while it was down; bans persist
    h.call("generate", 20)
    tip = h.call("getbestblockhash")
    v = NodeProcess(v.datadir, "--connect", h.p2p_addr)
    try:
        v.start()
        wait_until(lambda: v.call("getbestblockhash") == tip, 30, "restarted victim to catch up")
        assert len(v.call("listbanned")) == 4
        v.call("setban", "127.0.0.9", "add", 60)
        assert "127.0.0.9" in {b["address"] for b in v.call("listbanned")}
        v.call("setban", "127.0.0.9", "remove")
        v.call("clearbanned")
        assert v.call("listbanned") == []
        peer = v.call("getpeerinfo")[0]
        v.call("disconnectnode", "", peer["id"])
        wait_until(lambda: v.call("getconnectioncount") >= 1, 20, "reconnect to the --connect peer")
    finally:
        v.stop()
        h.stop()
