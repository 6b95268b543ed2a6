"""The harness every functional test stands on: ports no two test nodes share, a node that
finds its port taken starts again on new ones, and the load run stops every node it started
when a later one fails to start."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

from support.harness import PORTS, ROOT, NodeProcess, free_port, stop_node

ALLOCATE = ("import sys; sys.path.insert(0, 'tests'); from support.harness import free_port; "
            "print(' '.join(str(free_port()) for _ in range({n})), flush=True); sys.stdin.read()")


def test_free_ports_are_unique_across_threads_and_processes():
    other = subprocess.Popen([sys.executable, "-c", ALLOCATE.format(n=300)], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        theirs = set(map(int, other.stdout.readline().split()))   # held until its stdin closes
        mine: list[int] = []
        threads = [threading.Thread(target=lambda: mine.extend(free_port() for _ in range(50))) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.communicate("", timeout=10)
    assert len(theirs) == 300 and len(mine) == len(set(mine)) == 300
    assert not theirs & set(mine), sorted(theirs & set(mine))
    # Below the ephemeral range, so no outgoing connection is ever given one of them.
    assert all(p in PORTS for p in theirs | set(mine))


def test_node_whose_port_is_taken_starts_on_new_ports(tmp_path):
    node = NodeProcess(str(tmp_path / "node"))
    taken = node.rpc_port
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", taken))     # what a program outside free_port() may do any time
    squatter.listen()
    try:
        node.start()
        assert node.rpc_port != taken and node.call("getblockcount") == 0
        assert "address already in use" in node.log()
    finally:
        squatter.close()
        stop_node(node)


def _processes_under(path: str) -> list[int]:
    """Live processes whose command line names `path` (nodes started with a data dir in it)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if path.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_load_run_stops_started_nodes_when_a_later_one_fails(tmp_path):
    work = str(tmp_path / "load")
    os.makedirs(work)
    open(os.path.join(work, "node2"), "w").close()    # node2's data dir cannot be made
    try:
        r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "load.py"), "--nodes", "3",
                            "--minutes", "0.1", "--workdir", work], capture_output=True, text=True, timeout=120)
        assert r.returncode != 0 and "node2" in r.stderr, r.stderr[-2000:]
        assert os.path.exists(os.path.join(work, "node1", "test-node.log"))   # node0 and node1 did start
        assert _processes_under(work) == []
    finally:
        for pid in _processes_under(work):      # the nodes the bug leaves behind: ours to end
            os.kill(pid, 9)
