"""The wallet CLI driven as a real subprocess (`python -m wallet.cli`) against a node process:
a wallet handle `W`, funding and registration helpers, and a self-signed certificate for the
TLS-item commands. Used by the wallet-area tests and the wallet unit tests (make_cert)."""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support.harness import NodeProcess
from wallet.nodeclient import NodeError

PASS = "test passphrase"
DEPTH = 12          # regtest MIN_FIRSTUPDATE_DEPTH
EXPIRY = 30         # regtest expiry


class W:
    """One wallet file, driven through the CLI."""

    def __init__(self, node: NodeProcess, path: str):
        self.node = node
        self.path = path
        self.env = dict(os.environ, DOTBIT_WALLET_PASSPHRASE=PASS, DOTBIT_NODE_NETWORK="regtest",
                        DOTBIT_RPC_URL=f"http://127.0.0.1:{node.rpc_port}",
                        DOTBIT_RPC_COOKIE=os.path.join(node.datadir, ".cookie"))
        self.env.pop("DOTBIT_WALLET_DEBUG", None)

    def argv(self, *args):
        return [sys.executable, "-m", "wallet.cli", "--wallet", self.path, *args]

    def run(self, *args, ok=True, env=None, input=None) -> subprocess.CompletedProcess:
        r = subprocess.run(self.argv(*args), capture_output=True, text=True, env=env or self.env,
                           input=input, timeout=120)
        if ok and r.returncode != 0:
            raise AssertionError(f"{args} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def json(self, *args):
        return json.loads(self.run(*args, "--json").stdout)

    def fails(self, *args, match: str, env=None) -> str:
        r = self.run(*args, ok=False, env=env)
        err = r.stderr.strip()
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and "\n" not in err, err
        assert err.startswith("dotbit-wallet: error: ") and match in err, err
        return err

    def address(self) -> str:
        return self.json("address")["address"]


def mine(node, n=1, to=None):
    node.call("generatetoaddress", n, to or node.miner)


def new_wallet(node, tmp_path, name, coinbases=3) -> tuple[W, str]:
    w = W(node, str(tmp_path / f"{name}.json"))
    words = w.json("create")["words"]
    if coinbases:
        mine(node, coinbases, w.address())
    return w, words


def mature(node):
    mine(node, 100)


def register_wait(w: W, name: str, value: str) -> subprocess.CompletedProcess:
    """`name register --wait` in the background while blocks arrive one by one, until it
    returns: the name then resolves, with no block mined after its firstupdate's."""
    p = subprocess.Popen(w.argv("name", "register", name, "--value", value, "--wait", "--poll", "0.1"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=w.env)
    deadline = time.monotonic() + 90
    checked = False
    while p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.3)
        if not checked and w.node.call("getrawmempool") != []:
            w.json("balance")              # the waiting process does not hold the wallet locked
            checked = True
        if not _resolves(w.node, name):
            mine(w.node)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, (out, err)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _resolves(node, name: str) -> bool:
    try:
        return not node.call("name_show", name)["expired"]
    except NodeError:
        return False


def make_cert(tmp_path, cn="example.bit"):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path), cert
