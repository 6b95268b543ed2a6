"""`make run` (node/devrun.py) and `dotbit-node` on a data dir where `dotbit-node ca init` was
run: a CA that cannot be unlocked is one warning and a node without the CA (its endpoints say
so and how to start it), the passphrase from the environment starts it; and `make run` reads
DATADIR/dotbit.toml like dotbit-node (zone transfers and a metrics port from the file)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from support.harness import DevRun, free_port, run_cli, stop_node
from support.resolver import ResolverNode, new_datadir

PASSPHRASE = "devrun ca passphrase"
WITHOUT_CA = "the node runs without its CA"


def log(msg: str) -> None:
    print(f"-- {msg}", file=sys.stderr)


def get(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def datadir():
    """A data dir with a CA made by `ca init` and a dotbit.toml allowing AXFR, with metrics."""
    d = new_datadir()
    passfile = os.path.join(d, "ca-pass")
    with open(passfile, "w") as f:
        f.write(PASSPHRASE + "\n")
    r = run_cli("--network", "regtest", "--datadir", d, "ca", "init", "--ca-passphrase-file", passfile)
    assert r.returncode == 0, r.stderr
    log("ca init says how to start the CA")
    assert "DOTBIT_CA_PASSPHRASE" in r.stdout and "--ca-passphrase-file" in r.stdout, r.stdout
    os.unlink(passfile)
    metrics_port = free_port()
    with open(os.path.join(d, "dotbit.toml"), "w") as f:
        f.write(f'[node]\nmetrics_port = {metrics_port}\n[resolver]\naxfr_allow = ["127.0.0.1/32"]\n')
    yield d, metrics_port
    shutil.rmtree(d, ignore_errors=True)


def assert_runs_without_ca(node) -> None:
    r = run_cli("--datadir", node.datadir, "--rpc-port", str(node.rpc_port), "status")
    assert "CA           off: " in r.stdout and "DOTBIT_CA_PASSPHRASE" in r.stdout, r.stdout + r.stderr
    text = node.log()
    assert "Traceback" not in text, text
    warnings = [line for line in text.splitlines() if WITHOUT_CA in line]
    assert len(warnings) == 1 and "DOTBIT_CA_PASSPHRASE" in warnings[0], text
    for method, data in (("GET", None), ("POST", b"{}")):
        status, body = get(f"http://127.0.0.1:{node.http_port}/v1/ca/{'cert' if data is None else 'issue'}", data)
        error = json.loads(body)["view"]["error"]
        log(f"{method} CA endpoint without the CA: {status} {error}")
        assert status == 503 and error.startswith("no-ca:") and "DOTBIT_CA_PASSPHRASE" in error


def test_make_run_with_a_locked_ca_runs_without_it_and_reads_dotbit_toml(datadir):
    d, metrics_port = datadir
    node = DevRun(d).start()
    try:
        assert_runs_without_ca(node)
        log("make run honours axfr_allow from dotbit.toml: the README's dig works")
        out = subprocess.run(["dig", "@127.0.0.1", "-p", str(node.dns_port), "bit.", "AXFR"],
                             capture_output=True, text=True, timeout=60).stdout
        assert "Transfer failed" not in out and out.count("\tSOA\t") >= 2, out
        log("... and metrics_port, where the transfer is counted")
        status, text = get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200
        assert 'dotbit_dns_zone_transfers_total{result="ok"} 1' in text.decode(), text.decode()
    finally:
        stop_node(node, remove=os.devnull)


def test_dotbit_node_with_a_locked_ca_runs_without_it(datadir):
    d, _ = datadir
    node = ResolverNode(d)
    node.log_path = os.path.join(d, "dotbit-node.log")
    node.start()
    try:
        assert_runs_without_ca(node)
    finally:
        stop_node(node, remove=os.devnull)


def test_make_run_takes_the_ca_passphrase_from_the_environment(datadir):
    d, _ = datadir
    node = DevRun(d, env={"DOTBIT_CA_PASSPHRASE": PASSPHRASE})
    node.log_path = os.path.join(d, "devrun-ca.log")
    node.start()
    try:
        assert WITHOUT_CA not in node.log()
        assert "CA           on" in run_cli("--datadir", d, "--rpc-port", str(node.rpc_port), "status").stdout
        status, body = get(f"http://127.0.0.1:{node.http_port}/v1/ca/cert")
        assert status == 200 and body.startswith(b"-----BEGIN CERTIFICATE-----")
    finally:
        stop_node(node, remove=os.devnull)


def test_dotbit_node_takes_the_passphrase_file_from_dotbit_toml_and_survives_a_wrong_one(datadir):
    d, _ = datadir
    conf = os.path.join(d, "dotbit.toml")
    with open(conf) as f:
        saved = f.read()
    passfile = os.path.join(d, "ca-pass-2")
    with open(passfile, "w") as f:
        f.write(PASSPHRASE + "\n")
    try:
        with open(conf, "a") as f:
            f.write(f'ca_passphrase_file = "{passfile}"\n')          # appended to [resolver]
        node = ResolverNode(d)
        node.log_path = os.path.join(d, "conf-ca.log")
        node.start()
        try:
            assert WITHOUT_CA not in node.log()
            assert get(f"http://127.0.0.1:{node.http_port}/v1/ca/cert")[0] == 200
        finally:
            stop_node(node, remove=os.devnull)
        log("a wrong passphrase: still one warning and a node without its CA")
        with open(passfile, "w") as f:
            f.write("not the passphrase\n")
        node = ResolverNode(d)
        node.log_path = os.path.join(d, "wrong-ca.log")
        node.start()
        try:
            assert_runs_without_ca(node)
            assert "wrong passphrase" in node.log()
        finally:
            stop_node(node, remove=os.devnull)
    finally:
        with open(conf, "w") as f:
            f.write(saved)
