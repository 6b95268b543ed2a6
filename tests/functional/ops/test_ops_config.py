"""Config file, environment and flag precedence (node/config.py), as a library and through the
real `dotbit-node` and `dotbit-wallet` processes; JSON logs."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from node.config import ConfigError, env_name, load, read_file
from support.harness import NodeProcess, free_port, run_cli


def write(path, text: str) -> str:
    with open(path, "w") as f:
        f.write(text)
    return str(path)


# --- the library -------------------------------------------------------------------------------

def test_precedence_flag_env_file_default(tmp_path):
    conf = write(tmp_path / "c.toml", '[node]\nnetwork = "regtest"\ndatadir = "%s"\n[rpc]\nport = 1111\n'
                 '[p2p]\nmaxpeers = 7\nlisten = false\nconnect = ["127.0.0.1:1"]\n' % (tmp_path / "d"))
    env = {"DOTBIT_RPC_PORT": "2222", "DOTBIT_P2P_LISTEN": "yes"}
    cfg, network, datadir = load(conf, None, None, env)
    assert (network, datadir) == ("regtest", str(tmp_path / "d"))
    assert cfg.get("rpc", "port", 3333, 4444) == 3333               # flag
    assert cfg.get("rpc", "port", None, 4444) == 2222               # env beats file
    assert cfg.get("p2p", "listen", None, False) is True            # env text parsed as bool
    assert cfg.get("p2p", "maxpeers", None, 32) == 7                # file beats default
    assert cfg.get("p2p", "connect", None, []) == ["127.0.0.1:1"]
    assert cfg.get("mining", "interval", None, 5.0) == 5.0          # default
    assert [cfg.source("rpc", "port", 1), cfg.source("rpc", "port"), cfg.source("p2p", "maxpeers"),
            cfg.source("mining", "interval")] == ["flag", "env", "file", "default"]
    # the network flag wins over the file, and env over the file too
    assert load(conf, "main", None, env)[1] == "main"
    assert load(conf, None, None, {"DOTBIT_NODE_NETWORK": "testnet"})[1] == "testnet"
    assert load(conf, None, None, {"DOTBIT_NETWORK": "testnet"})[1] == "testnet"   # older name


def test_default_path_is_in_the_datadir(tmp_path):
    d = tmp_path / "regdata"
    d.mkdir()
    write(d / "dotbit.toml", '[rpc]\nport = 5555\n[mining]\ninterval = 2\n')
    cfg, network, datadir = load(None, "regtest", str(d), {})
    assert cfg.path == str(d / "dotbit.toml")
    assert cfg.get("rpc", "port") == 5555 and cfg.get("mining", "interval") == 2.0
    # the data dir may come from the environment too
    cfg2, _, datadir2 = load(None, "regtest", None, {"DOTBIT_NODE_DATADIR": str(d)})
    assert datadir2 == str(d) and cfg2.get("rpc", "port") == 5555
    # no file: only defaults
    assert load(None, "regtest", str(tmp_path / "none"), {})[0].values == {}


@pytest.mark.parametrize("text, match", [
    ("[rpc]\nprot = 1\n", "unknown key 'prot' in \\[rpc\\]"),
    ("[rcp]\nport = 1\n", "unknown section \\[rcp\\]"),
    ("[rpc]\nport = \"8601\"\n", "\\[rpc\\] port: expected int"),
    ("[p2p]\nconnect = [1, 2]\n", "expected a list of strings"),
    ("[p2p]\nlisten = 1\n", "expected bool"),
    ("rpc = 3\n", "rpc must be a \\[section\\] table"),
    ("[rpc\nport = 1\n", "not valid TOML"),
])
def test_bad_files_name_the_problem(tmp_path, text, match):
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError, match=match):
        read_file(path)


def test_env_and_default_file_conflicts(tmp_path):
    with pytest.raises(ConfigError, match="DOTBIT_RPC_PORT"):
        load(None, "regtest", str(tmp_path), {"DOTBIT_RPC_PORT": "eighty"})[0].get("rpc", "port")
    write(tmp_path / "dotbit.toml", '[node]\nnetwork = "main"\n')
    with pytest.raises(ConfigError, match="regtest data dir"):
        load(None, "regtest", str(tmp_path), {})
    write(tmp_path / "dotbit.toml", '[node]\ndatadir = "/elsewhere"\n')
    with pytest.raises(ConfigError, match="use --conf"):
        load(None, "regtest", str(tmp_path), {})
    with pytest.raises(ConfigError, match="does not exist"):
        load(str(tmp_path / "missing.toml"), None, None, {})
    assert env_name("resolver", "dns_port") == "DOTBIT_RESOLVER_DNS_PORT"


# --- through the real commands -----------------------------------------------------------------

def test_node_cli_bad_config_is_one_line(tmp_path):
    write(tmp_path / "dotbit.toml", "[rpc]\nprot = 1\n")
    r = run_cli("--regtest", "--datadir", str(tmp_path), "checkdb", timeout=60)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown key 'prot' in [rpc]" in lines[0] and "Traceback" not in r.stderr


def test_node_takes_ports_from_file_and_env_and_logs_json(tmp_path):
    """A node configured only by its file and environment: the RPC port from the file, the p2p
    port from the environment (over the file's), the resolver and metrics from the file; its
    stderr is JSON lines with the required fields."""
    rpc, p2p_file, p2p_env, http = free_port(), free_port(), free_port(), free_port()
    datadir = tmp_path / "node"
    datadir.mkdir()
    write(datadir / "dotbit.toml", f'[node]\nnetwork = "regtest"\nlog_format = "json"\nlog_level = "debug"\n'
                                   f'[rpc]\nport = {rpc}\n[p2p]\nport = {p2p_file}\nlisten = true\n'
                                   f'[resolver]\nhttp_port = {http}\n')
    env = dict(os.environ, DOTBIT_P2P_PORT=str(p2p_env))
    log_path = tmp_path / "node.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "node.cli", "--datadir", str(datadir), "--regtest"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        from wallet.nodeclient import NodeError, OperatorClient
        client = OperatorClient(f"http://127.0.0.1:{rpc}", str(datadir / ".cookie"))
        for _ in range(300):
            assert proc.poll() is None, log_path.read_text()
            try:
                status = client.call("getnodestatus")
                break
            except NodeError:
                import time
                time.sleep(0.1)
        else:
            pytest.fail("node did not start: " + log_path.read_text())
        assert status["rpc_port"] == rpc and status["p2p_port"] == p2p_env
        assert status["resolver"]["http_port"] == http and status["resolver"]["dns_port"] is None
        # `status` and `call` find the node through the same file
        r = run_cli("--regtest", "--datadir", str(datadir), "status", timeout=60)
        assert r.returncode == 0, r.stderr
        assert f"port {rpc}" in r.stdout and f"HTTP port {http}" in r.stdout
        r = run_cli("--regtest", "--datadir", str(datadir), "call", "generate", "2", timeout=60)
        assert r.returncode == 0 and len(json.loads(r.stdout)) == 2
        client.close()
    finally:
        proc.terminate()
        proc.wait(30)
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert records and all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert all(r["ts"].endswith("Z") and r["level"] in ("debug", "info", "warning", "error") for r in records)
    running = [r for r in records if r["msg"] == "running"]
    assert running and running[0]["network"] == "regtest" and running[0]["mining_address"]
    mined = [r for r in records if r["logger"] == "dotbit.node" and r["msg"].startswith("mined block")]
    assert [r["height"] for r in mined] == [1, 2] and all(len(r["hash"]) == 64 and r["txs"] == 1 for r in mined)


def test_wallet_uses_the_same_file(tmp_path):
    """The wallet finds the node's RPC port and cookie, its own file and passphrase through
    the one config file (no DOTBIT_* variables at all)."""
    datadir = tmp_path / "node"
    with NodeProcess(str(datadir)) as node:
        write(tmp_path / "pass", "correct horse\n")
        conf = write(tmp_path / "dotbit.toml", f'[node]\nnetwork = "regtest"\ndatadir = "{datadir}"\n'
                                               f'[rpc]\nport = {node.rpc_port}\n'
                                               f'[wallet]\nfile = "{tmp_path / "w.json"}"\n'
                                               f'passphrase_file = "{tmp_path / "pass"}"\nfee_rate = 20\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOTBIT_")}

        def wallet(*args):
            return subprocess.run([sys.executable, "-m", "wallet.cli", "--conf", conf, *args],
                                  capture_output=True, text=True, env=env, timeout=120)
        r = wallet("create")
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "w.json").exists()
        addr = wallet("address").stdout.strip()
        node.call("generatetoaddress", 3, addr)
        r = wallet("balance", "--json")
        assert r.returncode == 0, r.stderr
        balance = json.loads(r.stdout)
        assert sum(v for k, v in balance.items() if k.endswith("_sat")) == 3 * 50 * 10**8   # saw the node
        # an unknown key stops the wallet with one line, before any work
        bad = write(tmp_path / "bad.toml", "[wallet]\npassphrase = \"x\"\n")
        r = subprocess.run([sys.executable, "-m", "wallet.cli", "--conf", bad, "balance"],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and "unknown key 'passphrase'" in r.stderr
