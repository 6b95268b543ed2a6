"""Operator commands given only `--datadir` read the network from the data dir (the node
records it), as the docs write them: status (text and --json), zone export, checkdb, reindex,
dnssec-anchor; a conflicting --network is one clear error line."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile

import pytest

from support.harness import NodeProcess, run_cli, stop_node


def log(msg: str) -> None:
    print(f"-- {msg}", file=sys.stderr)


@pytest.fixture(scope="module")
def node():
    n = NodeProcess(tempfile.mkdtemp(prefix="dotbit-datadir-"))
    n.start()
    try:
        n.call("generate", 3)
        yield n
    finally:
        stop_node(n)


def test_commands_read_the_network_from_the_datadir(node, tmp_path):
    d = node.datadir
    log("status, without --regtest, while the node runs")
    r = run_cli("--datadir", d, "--rpc-port", str(node.rpc_port), "status")
    assert r.returncode == 0, r.stderr
    assert "network      regtest" in r.stdout
    assert re.search(r"header time \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", r.stdout), r.stdout
    r = run_cli("--datadir", d, "--rpc-port", str(node.rpc_port), "status", "--json")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["network"] == "regtest" and status["blocks"] == 3
    log("zone export through the running node")
    r = run_cli("--datadir", d, "--rpc-port", str(node.rpc_port), "zone", "export", str(tmp_path / "bit.zone"))
    # The zone is first built here, above the height (serials before it were heights).
    assert r.returncode == 0 and "serial 4" in r.stdout, r.stderr
    node.stop()
    # reindex rebuilds the zone (the data dir has a resolver key now): one serial more.
    for args, expect in ((["checkdb"], "checkdb: ok at height 3"), (["reindex"], "zone bit. rebuilt: serial 5"),
                         (["dnssec-anchor"], "DNSKEY"), (["zone", "export", str(tmp_path / "z")], "serial 5")):
        log(f"{args[0]} without --regtest, node stopped")
        r = run_cli("--datadir", d, *args)
        assert r.returncode == 0 and expect in r.stdout, r.stderr


def test_a_datadir_from_before_the_marker_is_read_from_the_store(node):
    node.stop()
    os.unlink(os.path.join(node.datadir, "network"))
    r = run_cli("--datadir", node.datadir, "checkdb")
    assert r.returncode == 0 and "checkdb: ok" in r.stdout, r.stderr


@pytest.mark.parametrize("args", [["--network", "main"], ["--network", "testnet"]])
def test_a_conflicting_network_is_one_error_line(node, args):
    node.stop()
    r = run_cli("--datadir", node.datadir, *args, "checkdb")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"holds a regtest chain, not {args[1]}" in r.stderr, r.stderr


def test_a_closed_pipe_is_silent(node):
    """`dotbit-node ... | head`: the reader going away is no error to report."""
    node.stop()
    proc = subprocess.Popen([sys.executable, "-m", "node.cli", "--datadir", node.datadir, "checkdb"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                   # long before the interpreter is up and writes
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and err == b"", err
