"""p2p between real node processes: initial sync from two peers, relay across five nodes,
and a partition that heals onto the most-work chain."""
from __future__ import annotations

from support.harness import NodeProcess
from support.p2p import NAME, copy_chain, name_update, pay, wait_until
from support.chain import Key


def start_all(nodes):
    started = []
    try:
        for n in nodes:
            started.append(n.start())
    except BaseException:
        stop_all(started)
        raise
    return nodes


def stop_all(nodes):
    for n in nodes:
        try:
            n.stop()
        except Exception:
            n.kill()


def test_initial_sync_from_two_peers(cached, tmp_path):
    a = NodeProcess(copy_chain(cached, str(tmp_path / "a")))
    b = NodeProcess(copy_chain(cached, str(tmp_path / "b")))
    start_all([a, b])
    c = NodeProcess(str(tmp_path / "c"), "--connect", a.p2p_addr, "--connect", b.p2p_addr)
    try:
        c.start()
        tip = a.call("getbestblockhash")
        wait_until(lambda: c.call("getbestblockhash") == tip, 60, "c to sync")
        info_a, info_c = a.call("getblockchaininfo"), c.call("getblockchaininfo")
        assert info_c["blocks"] == 300 and info_c["name_root"] == info_a["name_root"] != "00" * 32
        assert c.call("name_show", NAME.decode())["value"] == '{"ip":"10.0.0.1"}'
        peers = c.call("getpeerinfo")
        outbound = [p for p in peers if not p["inbound"]]
        assert len(outbound) == 2 and all(p["blocks_recv"] > 20 for p in outbound), outbound
        assert "sync: height" in c.log() and "blocks/s" in c.log()
        assert c.call("getconnectioncount") >= 2
        net = c.call("getnetworkinfo")
        assert net["connections_out"] == 2 and net["headers"] == 300
    finally:
        stop_all([c, a, b])


def test_tx_and_block_reach_all_five(cached, tmp_path):
    nodes = [NodeProcess(copy_chain(cached, str(tmp_path / "n0")))]
    for i in range(1, 5):      # a line: every message must be relayed hop by hop
        nodes.append(NodeProcess(copy_chain(cached, str(tmp_path / f"n{i}")), "--connect", nodes[-1].p2p_addr))
    start_all(nodes)
    try:
        wait_until(lambda: all(len(n.call("getpeerinfo")) >= 1 for n in nodes), 20, "connections")
        tx = pay(cached.spare[0], Key.from_seed(503).address)
        nodes[2].call("sendrawtransaction", tx.to_bytes().hex())
        wait_until(lambda: all(tx.txid.hex() in n.call("getrawmempool") for n in nodes), 30, "tx everywhere")
        # no storm: every node but the origin received the transaction itself exactly once
        got = [sum(p["msgs_recv"].get("tx", 0) for p in n.call("getpeerinfo")) for n in nodes]
        assert got == [1, 1, 0, 1, 1], got
        h = nodes[4].call("generate", 1)[0]
        wait_until(lambda: all(n.call("getbestblockhash") == h for n in nodes), 30, "block everywhere")
        assert all(n.call("getmempoolinfo")["size"] == 0 for n in nodes)
        assert nodes[0].call("getrawtransaction", tx.txid.hex(), True)["blockhash"] == h
    finally:
        stop_all(nodes)


def test_partition_heals_to_most_work_chain(cached, tmp_path):
    a1 = NodeProcess(copy_chain(cached, str(tmp_path / "a1")))
    a2 = NodeProcess(copy_chain(cached, str(tmp_path / "a2")), "--connect", a1.p2p_addr)
    b1 = NodeProcess(copy_chain(cached, str(tmp_path / "b1")))
    b2 = NodeProcess(copy_chain(cached, str(tmp_path / "b2")), "--connect", b1.p2p_addr)
    nodes = start_all([a1, a2, b1, b2])
    try:
        wait_until(lambda: a1.call("getconnectioncount") and b1.call("getconnectioncount"), 20, "groups")
        fu = cached.firstupdate
        # group A: a payment and the name set to "a", 2 blocks
        pay_a = pay(cached.spare[1], Key.from_seed(504).address)
        upd_a = name_update(cached.spare[2], fu, b"a")
        a1.call("sendrawtransaction", pay_a.to_bytes().hex())
        a1.call("sendrawtransaction", upd_a.to_bytes().hex())
        a_tip = a1.call("generate", 2)[-1]
        # group B: the name set to "b", 4 blocks (more work)
        upd_b = name_update(cached.spare[3], fu, b"b")
        b2.call("sendrawtransaction", upd_b.to_bytes().hex())
        wait_until(lambda: upd_b.txid.hex() in b1.call("getrawmempool"), 20, "tx inside group B")
        b_tip = b1.call("generate", 4)[-1]
        wait_until(lambda: a2.call("getbestblockhash") == a_tip, 20, "group A agrees")
        wait_until(lambda: b2.call("getbestblockhash") == b_tip, 20, "group B agrees")
        assert a2.call("name_show", NAME.decode())["value"] == "a"
        assert pay_a.txid.hex() not in a2.call("getrawmempool")
        # heal the partition
        a2.call("addnode", b2.p2p_addr, "add")
        wait_until(lambda: all(n.call("getbestblockhash") == b_tip for n in nodes), 60, "convergence")
        for n in nodes:
            assert n.call("name_show", NAME.decode())["value"] == "b"
        for n in (a1, a2):
            wait_until(lambda: pay_a.txid.hex() in n.call("getrawmempool"), 10, "losing tx back in mempool")
            assert upd_a.txid.hex() not in n.call("getrawmempool")   # conflicts with the winner
        roots = {n.call("getblockchaininfo")["name_root"] for n in nodes}
        assert len(roots) == 1
    finally:
        stop_all(nodes)
