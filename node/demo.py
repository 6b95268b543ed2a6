"""`make demo`: the whole life of a .bit name in about a minute, on loopback, in a temp dir.

Starts a regtest node with DNS and the signed HTTP API on free ports (so it never clashes with
`make run`), configured by a dotbit.toml it writes; creates a wallet; registers `d/example`
with an address, a TLS association from a freshly made self-signed certificate and MinimaLT
keys (Curve25519, from PyNaCl); mines the blocks that takes; resolves it with `dig +dnssec`
(when installed) and the verifying light client `dotbit-resolve`; then stops everything.
Every step prints the exact command it runs, so it doubles as a walkthrough to copy from.

    python -m node.demo [--keep] [--quiet]
"""
from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PASSPHRASE = "demo passphrase"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool(name: str, module: str) -> list[str]:
    """The console script next to this Python (what `make install` puts in .venv/bin), else
    the module it runs; either way this very checkout's code."""
    script = os.path.join(os.path.dirname(sys.executable), name)
    return [script] if os.path.exists(script) else [sys.executable, "-m", module]


def shown(cmd: list[str]) -> str:
    """The command as the user would type it (console scripts by their bare names)."""
    words = list(cmd)
    if os.path.isabs(words[0]) and os.path.basename(words[0]).startswith("dotbit-"):
        words[0] = os.path.basename(words[0])
    return shlex.join(words)


class DemoError(Exception):
    pass


class Demo:
    def __init__(self, workdir: str, quiet: bool = False):
        self.dir = workdir
        self.datadir = os.path.join(workdir, "node")
        self.conf = os.path.join(self.datadir, "dotbit.toml")
        self.quiet = quiet
        self.node_proc: subprocess.Popen | None = None
        self.ports = {k: free_port() for k in ("rpc", "p2p", "dns", "http")}
        # Only this demo's settings: a DOTBIT_* variable in the caller's shell would win over
        # the config file (that is the precedence) and point the demo elsewhere.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOTBIT_")}
        self.node = tool("dotbit-node", "node.cli") + ["--regtest", "--datadir", self.datadir]
        self.wallet = tool("dotbit-wallet", "wallet.cli") + ["--conf", self.conf]
        self.resolve = tool("dotbit-resolve", "light.cli")

    # --- output ---------------------------------------------------------------------------------

    def step(self, text: str) -> None:
        print(f"\n==> {text}", flush=True)

    def run(self, cmd: list[str], check: bool = True, show_output: bool = True) -> str:
        print(f"$ {shown(cmd)}", flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=180)
        if show_output and not self.quiet:
            for line in (r.stdout + r.stderr).rstrip().splitlines():
                print(f"    {line}")
        if check and r.returncode != 0:
            raise DemoError(f"`{shown(cmd)}` failed (exit {r.returncode}): {r.stderr.strip()[-500:]}")
        return r.stdout

    def mine(self, n: int, address: str | None = None) -> None:
        if address:
            self.run(self.node + ["call", "generatetoaddress", str(n), address], show_output=False)
        else:
            self.run(self.node + ["call", "generate", str(n)], show_output=False)
        print(f"    ({n} block{'s' if n > 1 else ''} mined)")

    # --- the steps ------------------------------------------------------------------------------

    def write_config(self) -> None:
        self.step(f"Configuration: {self.conf} (node, resolver and wallet read the same file)")
        os.makedirs(self.datadir, mode=0o700)
        pass_file = os.path.join(self.dir, "passphrase")
        with open(pass_file, "w") as f:
            f.write(PASSPHRASE + "\n")
        os.chmod(pass_file, 0o600)
        p = self.ports
        text = (f'[node]\nnetwork = "regtest"\n\n'
                f'[rpc]\nport = {p["rpc"]}\ncookie = "{os.path.join(self.datadir, ".cookie")}"\n\n'
                f'[p2p]\nport = {p["p2p"]}\nlisten = false\n\n'
                f'[resolver]\ndns_port = {p["dns"]}\nhttp_port = {p["http"]}\n\n'
                f'[wallet]\nfile = "{os.path.join(self.dir, "wallet.json")}"\npassphrase_file = "{pass_file}"\n')
        with open(self.conf, "w") as f:
            f.write(text)
        for line in text.splitlines():
            print(f"    {line}")

    def start_node(self) -> None:
        self.step("Start a regtest node with DNS (UDP+TCP) and the signed HTTP API on loopback")
        cmd = self.node
        print(f"$ {shown(cmd)} &", flush=True)
        self.log_path = os.path.join(self.dir, "node.log")
        with open(self.log_path, "w") as log:
            self.node_proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        cookie = os.path.join(self.datadir, ".cookie")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.node_proc.poll() is not None:
                raise DemoError(f"the node exited ({self.node_proc.returncode}):\n{self._log_tail()}")
            if os.path.exists(cookie):
                r = subprocess.run(self.node + ["call", "getblockcount"], capture_output=True, env=self.env)
                if r.returncode == 0:
                    break
            time.sleep(0.2)
        else:
            raise DemoError(f"the node did not start:\n{self._log_tail()}")
        self.run(self.node + ["status"])
        status = json.loads(self.run(self.node + ["call", "getnodestatus"], show_output=False))
        self.fingerprint = status["resolver"]["fingerprint"]
        print(f"    resolver key fingerprint: {self.fingerprint}")

    def _log_tail(self) -> str:
        try:
            with open(self.log_path) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def make_wallet(self) -> str:
        self.step("Create a wallet (passphrase from the config's passphrase_file) and fund it")
        self.run(self.wallet + ["create"])
        address = self.run(self.wallet + ["address"]).strip()
        self.mine(101, address)          # 100 blocks until the first coinbase may be spent
        self.run(self.wallet + ["balance"])
        return address

    def make_keys(self) -> tuple[str, str, str]:
        self.step("Make a self-signed TLS certificate (cryptography) and MinimaLT keys (PyNaCl Curve25519)")
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        from nacl.public import PrivateKey
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.bit")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=90))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("example.bit")]), critical=False)
                .sign(key, hashes.SHA256()))
        cert_path = os.path.join(self.dir, "example.bit.pem")
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        print(f"    certificate {cert_path} (CN=example.bit, EC P-256, SHA-256 fingerprint "
              f"{cert.fingerprint(hashes.SHA256()).hex()[:16]}...)")
        ident, eph = PrivateKey.generate(), PrivateKey.generate()
        id_key = base64.b64encode(bytes(ident.public_key)).decode()
        eph_key = base64.b64encode(bytes(eph.public_key)).decode()
        print(f"    MinimaLT id_key {id_key}\n    MinimaLT eph_key {eph_key}")
        return cert_path, id_key, eph_key

    def register(self, cert_path: str, id_key: str, eph_key: str) -> None:
        self.step("Register d/example: NAME_NEW now, NAME_FIRSTUPDATE 12 blocks later")
        self.run(self.wallet + ["name", "register", "d/example", "--value", '{"ip":"192.0.2.1"}'])
        self.mine(12)
        self.run(self.wallet + ["name", "sync"])      # sends the firstupdate now it is due
        self.mine(1)
        self.step("Add the certificate's TLSA association and the MinimaLT service (one update each)")
        self.run(self.wallet + ["tls", "d/example", "--cert", cert_path])
        self.mine(1)
        self.run(self.wallet + ["minimalt", "d/example", "--port", "7000", "--id-key", id_key, "--eph-key", eph_key])
        self.mine(1)
        self.run(self.wallet + ["name", "show", "d/example"])

    def resolve_dns(self) -> None:
        port = str(self.ports["dns"])
        dig = shutil.which("dig")
        if dig is None:
            self.step("DNS: dig is not installed (apt-get install dnsutils); skipping the dig queries")
            return
        self.step("Ask the resolver over DNS, DNSSEC-signed (Ed25519, algorithm 15)")
        for qname, qtype in (("example.bit", "A"), ("_443._tcp.example.bit", "TLSA"),
                             ("_minimalt._udp.example.bit", "TXT")):
            self.run(["dig", "@127.0.0.1", "-p", port, "+dnssec", "+norecurse", "+noall", "+answer",
                      "+time=3", "+tries=1", qname, qtype])

    def resolve_light(self) -> None:
        self.step("Resolve with the light client: it syncs and checks the headers itself, then the "
                  "signature and the name-tree proofs")
        base = self.resolve + ["--config", os.devnull, "--network", "regtest",
                               "--resolver", f"http://127.0.0.1:{self.ports['http']}", "--pin", self.fingerprint,
                               "--light-dir", os.path.join(self.dir, "light")]
        self.run(base + ["example.bit", "A"])
        self.run(base + ["example.bit", "tls"])
        self.run(base + ["example.bit", "minimalt"])

    def stop(self) -> None:
        if self.node_proc is None or self.node_proc.poll() is not None:
            return
        self.step("Stop the node")
        print(f"$ kill -TERM {self.node_proc.pid}")
        self.node_proc.send_signal(signal.SIGTERM)
        try:
            self.node_proc.wait(30)
        except subprocess.TimeoutExpired:
            self.node_proc.kill()
            self.node_proc.wait(10)
        print(f"    node exited with status {self.node_proc.returncode}")

    def main(self) -> None:
        self.write_config()
        self.start_node()
        self.make_wallet()
        cert, id_key, eph_key = self.make_keys()
        self.register(cert, id_key, eph_key)
        self.resolve_dns()
        self.resolve_light()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m node.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory afterwards")
    ap.add_argument("--quiet", action="store_true", help="print the commands, not their output")
    args = ap.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="dotbit-demo-")
    demo = Demo(workdir, args.quiet)
    t0 = time.monotonic()
    print(f"dotbit demo in {workdir}")
    status = 0
    try:
        demo.main()
        print(f"\ndemo finished in {time.monotonic() - t0:.0f} s")
    except DemoError as e:
        print(f"\ndotbit demo: {e}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("\ndotbit demo: interrupted", file=sys.stderr)
        status = 130
    finally:
        demo.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
