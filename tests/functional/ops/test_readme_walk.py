"""README.md walked against `make run`'s node: the sh blocks of "Your first .bit name", run line
by line as written (extracted from README.md, so the test fails when the README drifts), then
the banner's "Register a name with the wallet" lines (`--wait`, then at once `dig` and
`dotbit-resolve`) and the README's `dotbit-resolve` usage line.

What must differ on a test machine is kept small and explicit:
- the data dir: bash runs in a temp dir whose data/regtest is the DevRun data dir, so the
  README's `D=$PWD/data/regtest` is used as written;
- ports: DOTBIT_RPC_PORT / DOTBIT_RESOLVER_HTTP_PORT in the environment (the wallet and
  `dotbit-node call` read them), a resolve.conf naming the resolver URL for dotbit-resolve
  (XDG_CONFIG_HOME / XDG_DATA_HOME in the temp dir), and the DNS port in `dig` lines;
- `. .venv/bin/activate` is PATH with the venv's bin; the passphrase is DOTBIT_WALLET_PASSPHRASE;
- PLACEHOLDERS below fill server.pem, B64, ADDRESS and words.txt with real values.
A substitution whose text is no longer in the README fails the test (the README drifted)."""
from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from support.harness import ROOT, DevRun, free_port, stop_node, stop_process
from support.resolver import needs_tools

PASSPHRASE = "readme walk passphrase"
ACTIVATE = ". .venv/bin/activate"
README_DNS_PORT = "-p 18653"
README_RPC_URL = "http://127.0.0.1:18601/"
ONE_PER_BLOCK = "a name takes one operation per block"   # why the walk waits for a block
README_RESOLVE = "dotbit-resolve --network regtest --pin FINGERPRINT example.bit"
# The README's placeholders and what fills them (computed in the test).
# The inline commands of "Resolving names" the walk runs, as the README writes them, and as run.
RESOLVING = {
    "dotbit-node --datadir D dnssec-anchor": "dotbit-node --datadir $D dnssec-anchor",
    "dotbit-wallet tlsa --cert server.pem [--name www.example.bit]":
        "dotbit-wallet tlsa --cert server.pem --name www.example.bit",
    "dotbit-node --datadir D zone export bit.zone": "dotbit-node --datadir $D zone export bit.zone",
    "named-checkzone bit. bit.zone": "named-checkzone bit. bit.zone",
    "dnssec-verify -z -o bit. bit.zone": "dnssec-verify -z -o bit. bit.zone",
}
README_SERVE = "dotbit-resolve --network regtest --pin FINGERPRINT serve --port 5353"
PLACEHOLDERS = ("server.pem", "B64", "ADDRESS", "words.txt")


def log(msg: str) -> None:
    print(f"-- {msg}", file=sys.stderr)


def section(text: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, f"README.md has no section '## {title}'"
    return m.group(1)


def sh_blocks(body: str) -> list[list[str]]:
    return [[ln for ln in b.splitlines() if ln.strip()] for b in re.findall(r"^```sh\n(.*?)^```", body, re.S | re.M)]


def uncomment(line: str) -> str:
    """The command without its trailing `# comment` (README comments follow two spaces)."""
    return re.sub(r"\s{2,}#.*$", "", line).rstrip()


class Shell:
    """Runs lines one by one in bash; assignments and exports carry over to later lines."""

    def __init__(self, cwd: str, env: dict):
        self.cwd, self.env, self.prelude = cwd, env, ["set -e"]

    def run(self, line: str, expect: int = 0, env: dict | None = None, timeout: float = 120,
            stdout_only: bool = False) -> str:
        if re.match(r"^(export |[A-Z_]+=\S+$)", line):
            self.prelude.append(line)
            return ""
        t = time.monotonic()
        exports = [f"export {k}={shlex.quote(v)}" for k, v in (env or {}).items()]   # after the README's
        r = subprocess.run(["bash", "-c", "\n".join(self.prelude + exports + [line])], cwd=self.cwd,
                           env=self.env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        log(f"$ {line}   [exit {r.returncode}, {time.monotonic() - t:.1f}s]")
        if os.environ.get("WALK_DEBUG"):
            log(r.stdout + r.stderr)
        assert r.returncode == expect, f"`{line}` exited {r.returncode}, not {expect}:\n{r.stdout}\n{r.stderr}"
        return r.stdout if stdout_only else r.stdout + r.stderr


def wait_mined(node, timeout: float = 30) -> None:
    """Until the mempool is empty: the next block holds what the last command sent."""
    deadline = time.monotonic() + timeout
    while node.call("getrawmempool"):
        assert time.monotonic() < deadline, "the mempool did not empty"
        time.sleep(0.1)


def make_cert(path: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.bit")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("example.bit")]), False)
            .sign(key, hashes.SHA256()))
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


@needs_tools("dig")
def test_readme_first_name_and_resolving_walk():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    first = sh_blocks(section(readme, "Your first .bit name"))
    resolving = section(readme, "Resolving names")
    assert len(first) == 2, f"'Your first .bit name' has {len(first)} sh blocks, the walk knows 2"
    assert ONE_PER_BLOCK in " ".join(section(readme, "Your first .bit name").split()), \
        f"'Your first .bit name' no longer says `{ONE_PER_BLOCK}` (the walk waits for a block)"
    assert README_RESOLVE in resolving, f"'Resolving names' no longer has `{README_RESOLVE}`"

    work = tempfile.mkdtemp(prefix="dotbit-walk-")
    datadir = os.path.join(work, "data", "regtest")
    node = DevRun(datadir, interval=1.0)
    try:
        node.start()
        banner = node.log()
        fp = re.search(r"key fingerprint ([0-9a-f]{64})", banner).group(1)
        bin_dir = os.path.dirname(sys.executable)
        home = os.path.join(work, "home")
        os.makedirs(os.path.join(home, "config", "dotbit"))
        with open(os.path.join(home, "config", "dotbit", "resolve.conf"), "w") as f:
            f.write(f"resolver = http://127.0.0.1:{node.http_port}\n")
        env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"],
               "DOTBIT_WALLET_PASSPHRASE": PASSPHRASE, "DOTBIT_RPC_PORT": str(node.rpc_port),
               "DOTBIT_RESOLVER_HTTP_PORT": str(node.http_port), "XDG_CONFIG_HOME": os.path.join(home, "config"),
               "XDG_DATA_HOME": os.path.join(home, "share"), "HOME": home}
        for k in ("DOTBIT_NODE_NETWORK", "DOTBIT_RPC_COOKIE", "DOTBIT_WALLET_FILE", "DOTBIT_RPC_URL"):
            env.pop(k, None)
        sh = Shell(work, env)

        log("README 'Your first .bit name', first block")
        walk = first[0]
        assert walk[0] == ACTIVATE, f"the block no longer starts with `{ACTIVATE}`: {walk[0]}"
        words = None
        for raw in walk[1:]:
            line = uncomment(raw)
            if line.startswith("dig "):
                assert README_DNS_PORT in line, f"`{line}`: no `{README_DNS_PORT}` to substitute"
                line = line.replace(README_DNS_PORT, f"-p {node.dns_port}")
            out = sh.run(line)
            if line == "dotbit-wallet create":
                m = re.search(r"shown only now\):\n\n  (.+)\n", out)
                assert m, out
                words = m.group(1)
            if line == "dotbit-wallet name list":
                assert "d/example" in out, out
            if line.startswith("dig "):
                assert re.search(r"example\.bit\.\s+\d+\s+IN\s+A\s+192\.0\.2\.1\b", out), out
        assert words is not None, "the walk has no `dotbit-wallet create`"

        log("README 'Talking to the node' (d/example exists now)")
        talking = sh_blocks(section(readme, "Talking to the node"))
        assert len(talking) == 2 and talking[0][0] == ACTIVATE, talking
        curl = [ln for ln in talking[0] if ln.startswith("curl ")]
        assert curl and README_RPC_URL in curl[0], f"no `curl ... {README_RPC_URL}` to substitute"
        for raw in talking[0][1:] + talking[1]:
            line = uncomment(raw).replace(README_RPC_URL, f"http://127.0.0.1:{node.rpc_port}/")
            out = sh.run(line)
            if line.startswith("curl "):
                assert '"error": null' in out or '"error":null' in out, out

        # On regtest with blocks every second d/example lives 30 s after its last update (the
        # second block's transfer): what reads it comes right after that block, d/walk's
        # registration (13 blocks) last.
        log("README 'Your first .bit name', second block (placeholders filled)")
        make_cert(os.path.join(work, "server.pem"))
        with open(os.path.join(work, "words.txt"), "w") as f:
            f.write(words + "\n")
        b64 = [base64.b64encode(os.urandom(32)).decode() for _ in range(2)]
        address = sh.run("dotbit-wallet address", stdout_only=True).strip().splitlines()[-1]
        seen = set()
        for raw in first[1]:
            line = uncomment(raw)
            extra = None
            if "B64" in line:
                seen.add("B64")
                line = line.replace("B64", b64[0], 1).replace("B64", b64[1], 1)
            if "ADDRESS" in line:
                seen.add("ADDRESS")
                line = line.replace("ADDRESS", address)
            if "server.pem" in line:
                seen.add("server.pem")
            if "words.txt" in line:
                seen.add("words.txt")          # restore makes a new wallet: not over the one in use
                extra = {"DOTBIT_WALLET_FILE": os.path.join(work, "restored.json")}
            out = sh.run(line, env=extra)
            if "restore" in line:
                assert "restored" in out, out
            wait_mined(node)
        assert seen == set(PLACEHOLDERS), f"placeholders no longer in the README: {set(PLACEHOLDERS) - seen}"

        log("README's usage line: dotbit-resolve ... example.bit A, and a proven-absent name")
        out = sh.run(f"dotbit-resolve --network regtest --pin {fp} example.bit A")
        assert "192.0.2.2" in out, out
        out = sh.run(f"dotbit-resolve --network regtest --pin {fp} nosuchname.bit A", expect=1)
        assert "NXDOMAIN" in out and "proofs of d/nosuchname" in out, out

        log("README 'Resolving names': its inline commands")
        inline = re.findall(r"`([^`]+)`", " ".join(resolving.split()))
        for written, line in RESOLVING.items():
            assert written in inline, f"'Resolving names' no longer has `{written}`"
            if line.split()[0] not in ("dotbit-node", "dotbit-wallet") and not shutil.which(line.split()[0]):
                log(f"{line.split()[0]} is not installed: `{line}` not run")
                continue
            out = sh.run(line)
            if "dnssec-anchor" in line:
                assert fp in out, out
            if "tlsa" in line:
                assert "_443._tcp.www.example.bit" in out and "TLSA 3 1 1" in out, out
        for qtype in ("AAAA", "tls", "minimalt", "all"):
            out = sh.run(f"dotbit-resolve --network regtest --pin {fp} example.bit {qtype}")
            assert "proofs of d/example" in out, out

        log("README 'Resolving names': the verifying DNS stub (`serve`), asked with dig")
        assert README_SERVE in " ".join(resolving.split()), f"'Resolving names' no longer has `{README_SERVE}`"
        stub_port = free_port()
        serve(README_SERVE.replace("FINGERPRINT", fp).replace("5353", str(stub_port)), work, env, stub_port)

        log("make run's banner: register --wait, then at once dig and dotbit-resolve")
        block = banner.split("Register a name with the wallet", 1)[1].split("\n\n", 1)[0]
        lines = [uncomment(ln.strip()) for ln in block.splitlines()[1:] if ln.strip()]
        start = next(i for i, ln in enumerate(lines) if ln.startswith("dotbit-wallet name register"))
        # Its export line names the paths the banner printed (the wallet exists already, and
        # another 101 blocks would expire d/example: create and generatetoaddress are the README's).
        exports = [ln for ln in lines[:start] if ln.startswith("export ")]
        assert exports and f"DOTBIT_RPC_COOKIE={datadir}/.cookie" in exports[0], lines
        sh.run(exports[0])
        subs = (("d/example", "d/walk"), ("192.0.2.1", "192.0.2.9"), ("example.bit", "walk.bit"))
        for raw in lines[start:]:
            line = raw
            for old, new in subs:
                line = line.replace(old, new)
            out = sh.run(line)
            if line.startswith("dotbit-wallet name register"):
                assert "--wait" in line, line
            if line.startswith("dig "):
                assert re.search(r"walk\.bit\.\s+\d+\s+IN\s+A\s+192\.0\.2\.9\b", out), out
                assert "flags: qr aa" in out and re.search(r"walk\.bit\.\s+\d+\s+IN\s+RRSIG\s+A 15 ", out), out
            if line.startswith("dotbit-resolve"):
                assert re.search(r"walk\.bit\.\s+IN\s+A\s+192\.0\.2\.9\b", out), out
                assert "verified: signature, header in our chain" in out and "proofs of d/walk" in out, out
            if "dnssec-anchor" in line:
                assert f"fingerprint (dotbit-resolve --pin): {fp}" in out and "IN DS " in out, out
        assert any(ln.startswith("dotbit-resolve") for ln in lines[start:]), lines
    finally:
        stop_node(node, work)


def serve(line: str, cwd: str, env: dict, port: int) -> None:
    """Run the stub, ask it for example.bit A (the README's second block made it 192.0.2.2)."""
    log(f"$ {line} &")
    proc = subprocess.Popen(shlex.split(line), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"`{line}` exited {proc.returncode}:\n{proc.stdout.read()}"
            out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+norecurse", "+time=1", "+tries=1",
                                  "example.bit", "A"], capture_output=True, text=True, timeout=30).stdout
            if re.search(r"example\.bit\.\s+\d+\s+IN\s+A\s+192\.0\.2\.2\b", out):
                log(f"$ dig @127.0.0.1 -p {port} +norecurse example.bit A: 192.0.2.2")
                return
            assert time.monotonic() < deadline, f"the stub did not answer example.bit A:\n{out}"
            time.sleep(0.2)
    finally:
        stop_process(proc)
