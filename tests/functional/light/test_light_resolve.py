"""dotbit-resolve against a real node: verified answers for registered names (imports and
MinimaLT ephemeral-key updates included), proven absence, expiry, trust modes, header-store
resumption and refusal of bad input."""
from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request

import pytest

from support.light import RESOLVE, b64, light_dir, resolve, resolver_key
from support.resolver import EPH_KEY, OWNER, TLS_DIGEST
from node.resolver.ekeys import make_update


@pytest.fixture(scope="module")
def cli(node):
    url, pin, ldir = f"http://127.0.0.1:{node.http_port}", resolver_key(node).fingerprint, light_dir()

    def run(*args, **kw):
        return resolve(*args, url=url, pin=pin, light_dir=kw.pop("light_dir", ldir), **kw)
    return run


def test_a_aaaa_txt_tlsa(cli, node):
    r = cli("light.bit")
    assert r.returncode == 0, r.stderr
    assert "light.bit.\tIN\tA\t198.51.100.7" in r.stdout and "proofs of d/lib, d/light" in r.stdout
    assert "2001:db8::7" in cli("light.bit", "AAAA").stdout
    assert '"light client"' in cli("light.bit", "TXT").stdout
    r = cli("_443._tcp.light.bit", "TLSA", "--json")
    assert r.returncode == 0, r.stderr
    ans = json.loads(r.stdout)
    assert ans["records"] == [["_443._tcp.light.bit.", "TLSA", f"3 1 1 {TLS_DIGEST.hex().upper()}"]]
    assert ans["height"] == node.call("getblockcount") and ans["trust"] == "proofs"
    r = cli("light.bit", "tls")
    assert r.returncode == 0 and f"_443._tcp.light.bit.\tIN\tTLSA\t3 1 1 {TLS_DIGEST.hex().upper()}" in r.stdout


def test_import_is_proven(cli):
    r = cli("www.light.bit", "--json")
    assert r.returncode == 0, r.stderr
    ans = json.loads(r.stdout)
    assert ans["records"] == [["www.light.bit.", "A", "198.51.100.99"]]
    assert ans["proven"] == ["d/lib", "d/light"]


def test_minimalt_and_ephemeral_update(cli, node):
    r = cli("light.bit", "minimalt", "--json")
    assert r.returncode == 0, r.stderr
    (m,) = json.loads(r.stdout)["minimalt"]
    assert m["port"] == 7100 and m["eph_key"] == EPH_KEY and m["eph_source"] == "on-chain value"
    eph = bytes([9] * 32)
    update = make_update(b"d/light", eph, 1, int(time.time()) + 3600, OWNER.secret, OWNER.pubkey)
    req = urllib.request.Request(f"http://127.0.0.1:{node.http_port}/v1/ekey", data=update.to_bytes(),
                                 headers={"Content-Type": "application/msgpack"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    r = cli("light.bit", "minimalt")
    assert r.returncode == 0, r.stderr
    assert f"eph_key={b64(eph)} (owner-signed update)" in r.stdout
    assert f"eph_key={b64(eph)}" in cli("_minimalt._udp.light.bit", "TXT").stdout
    assert "v=minimalt1" not in cli("light.bit", "TXT").stdout          # the apex TXT is the value's own


def test_absence_is_proven(cli):
    r = cli("nobody-registered-this.bit", "--json")
    assert r.returncode == 1, r.stderr
    ans = json.loads(r.stdout)
    assert ans["status"] == "NXDOMAIN" and ans["proven"] == ["d/nobody-registered-this"]
    for qtype in ("MX", "CNAME", "TLSA"):          # the name exists, the type does not (TLSA: at the apex)
        r = cli("light.bit", qtype)
        assert r.returncode == 1 and "status: NOERROR" in r.stdout, r.stderr
        assert f"; light.bit. {qtype}: proven absent (checked: proofs)" in r.stdout.splitlines()


def test_expired_name(cli):
    r = cli("old.bit")
    assert r.returncode == 1, r.stderr
    assert "EXPIRED: d/old" in r.stdout and "does not exist (its name has expired)" in r.stdout


def test_pinned_trust_says_so(cli):
    r = cli("light.bit", "--trust", "pinned")
    assert r.returncode == 0, r.stderr
    assert "198.51.100.7" in r.stdout and "proofs NOT checked" in r.stdout


def test_header_store_resumes_and_checkpoints(cli, node):
    d = light_dir()
    assert cli("sync", light_dir=d).returncode == 0
    path = os.path.join(d, "headers.dat")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:                 # a torn append and a lost tail
        f.truncate(size - 112 * 5 - 50)
    r = cli("sync", light_dir=d)
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(path) == size
    height = node.call("getblockcount")
    good = node.call("getblockhash", 10)
    assert cli("sync", "--checkpoint", f"10:{good}", light_dir=d).returncode == 0
    r = cli("sync", "--checkpoint", f"10:{'00' * 32}", light_dir=d)
    assert r.returncode == 2 and "checkpoint" in r.stderr and len(r.stderr.splitlines()) == 1
    assert f"height {height}" in cli("sync", light_dir=d).stdout


@pytest.mark.parametrize("args,words", [
    (("example.com",), "serves no names outside bit."),      # a DANE question, to a node without zones
    (("a..bit",), "not a name under .bit"),
    (("light.bit", "BOGUS"), "unknown type"),
    (("light.bit", "--pin", "zz"), "pin must be 64 hex"),
    (("light.bit", "--max-behind", "x"), "usage"),
    (("light.bit", "--network", "nonet"), "unknown network"),
])
def test_bad_input_one_line(cli, args, words):
    r = cli(*args)
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_unreachable_resolver(node):
    from support.harness import free_port
    r = resolve("light.bit", url=f"http://127.0.0.1:{free_port()}", pin="00" * 32, light_dir=light_dir(),
                timeout=30)
    assert r.returncode == 2 and "connect" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_config_file_and_progress(node, tmp_path):
    conf = tmp_path / "resolve.conf"
    conf.write_text(f"# light client settings\nresolver = http://127.0.0.1:{node.http_port}\n"
                    f"pin = {resolver_key(node).fingerprint}\nnetwork = regtest\n"
                    f"light-dir = {tmp_path / 'light'}\n")
    r = subprocess.run([RESOLVE, "--config", str(conf), "--progress", "light.bit"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "198.51.100.7" in r.stdout, r.stderr
    assert "syncing headers: height" in r.stderr
    assert os.path.getsize(tmp_path / "light" / "headers.dat") == 112 * (node.call("getblockcount") + 1)
    conf.write_text("resolver http://nowhere\n")
    r = subprocess.run([RESOLVE, "--config", str(conf), "light.bit"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "expected `key = value`" in r.stderr and len(r.stderr.splitlines()) == 1


def test_a_closed_pipe_is_silent(node):
    """`dotbit-resolve ... | head` when head has gone: no traceback, no complaint, and the
    shell's exit for a killed writer (141), as dotbit-node does."""
    url, pin = f"http://127.0.0.1:{node.http_port}", resolver_key(node).fingerprint
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}     # buffered, as in a shell
    r_fd, w_fd = os.pipe()
    os.close(r_fd)                          # the reader is gone before the answer is printed
    try:
        p = subprocess.run([RESOLVE, "--network", "regtest", "--resolver", url, "--pin", pin, "--light-dir",
                            light_dir(), "--config", os.devnull, "light.bit", "all"],
                           stdout=w_fd, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    finally:
        os.close(w_fd)
    assert (p.returncode, p.stderr) == (141, "")
