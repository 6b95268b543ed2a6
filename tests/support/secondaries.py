"""BIND 9 (`named`) and Knot DNS (`knotd`) as real secondaries of a node's `bit.` zone, on
loopback: free ports, a temporary directory each, a config written here, the TSIG key, NOTIFY
from the node (its --notify flag points at `Secondary.port`), IXFR requested. A test waits for
a serial (SOA asked of the secondary with dnspython, bounded), reads the secondary's copy back
by AXFR and compares it canonically with `dotbit-node zone export`.

The zone stanzas an operator needs (`bind_stanza`, `knot_stanza`) are rendered from the same
templates the harness runs, and docs/operator.md carries them rendered with DOC_VALUES; a test
checks the two agree, so the how-to cannot drift from what is tested.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.tsig
import dns.zone

from support.harness import free_port, run_cli, stop_process

ZONE = dns.name.from_text("bit.")
KEY_NAME = "xfr-key"

# What an operator copies: the key, and the zone pointing at the node as its one primary.
# request-ixfr is BIND's default; it is spelled out because following block by block by IXFR
# is the point. allow-transfer lets this machine read the copy back (the tests do).
BIND_TEMPLATE = """key "{key}" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "bit" {{
    type secondary;
    primaries {{ {primary} port {port} key {key}; }};
    file "bit.zone";
    request-ixfr yes;
    allow-transfer {{ 127.0.0.1; }};
}};"""

# Knot asks for IXFR by default once it holds the zone. The acl admits the node's NOTIFY
# (signed with the key) and transfers out to this machine. dnssec-validation: Knot checks each
# version it receives (signatures, NSEC chain) before serving it, a third validator.
KNOT_TEMPLATE = """key:
  - id: {key}
    algorithm: hmac-sha256
    secret: {secret}
remote:
  - id: dotbit
    address: {primary}@{port}
    key: {key}
acl:
  - id: dotbit-notify
    address: {primary}
    key: {key}
    action: notify
  - id: local-transfer
    address: 127.0.0.1
    action: transfer
zone:
  - domain: bit.
    file: bit.zone
    master: dotbit
    acl: [dotbit-notify, local-transfer]
    dnssec-validation: on"""

# BIND gives a TCP connection 30 s of silence (tcp-idle-timeout, in tenths of a second), its
# inbound transfers too; a node that signs the whole zone before its first message can take
# longer at tens of thousands of names. 1200 is BIND's maximum. A server-wide option.
BIND_OPTIONS = "tcp-idle-timeout 1200;"

# Knot gives a primary 5 s (tcp-remote-io-timeout) to send each transfer message; a node that
# signs the whole zone before its first message needs longer at tens of thousands of names (a
# refresh that times out is retried only after the SOA retry, 10 minutes). A server option.
KNOT_SERVER_OPTIONS = """server:
    tcp-remote-io-timeout: 60000"""

# The values docs/operator.md shows the stanzas with: the regtest DNS port, a placeholder secret.
DOC_VALUES = {"key": KEY_NAME, "secret": "BASE64SECRET", "primary": "127.0.0.1", "port": 18653}


def bind_stanza(**values) -> str:
    return BIND_TEMPLATE.format(**values)


def knot_stanza(**values) -> str:
    return KNOT_TEMPLATE.format(**values)


def program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


class Secondary:
    """One secondary server process. `port` is fixed at construction (the node's --notify needs
    it before the node starts); the config is written at start(), when the node's DNS port is
    known."""

    kind = ""
    binary = ""

    def __init__(self, secret: str, key: str = KEY_NAME):
        self.secret = secret
        self.key = key
        self.port = free_port()
        self.work = tempfile.mkdtemp(prefix=f"dotbit-{self.kind}-")
        self.log_path = os.path.join(self.work, f"{self.kind}.log")
        self.proc: subprocess.Popen | None = None

    def config(self, primary_port: int) -> str:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, primary_port: int) -> "Secondary":
        path = os.path.join(self.work, f"{self.kind}.conf")
        with open(path, "w") as f:
            f.write(self.config(primary_port))
        self.conf_path = path
        # cwd: what a server writes before it reads its config (BIND's named.run) stays in work.
        with open(os.path.join(self.work, "stderr"), "w") as err:
            self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=err, cwd=self.work)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc)

    def remove(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def log_files(self) -> list[str]:
        return [self.log_path, os.path.join(self.work, "stderr")]

    def log(self, tail: int = 4000) -> str:
        """What it logged (the last `tail` characters; 0: all of it)."""
        text = ""
        for name in self.log_files():
            try:
                with open(name, errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return text[-tail:] if tail else text

    # --- asking it ------------------------------------------------------------------------

    def serial(self) -> int | None:
        """The serial it serves with authority, None while it has no zone (or no answer)."""
        q = dns.message.make_query(ZONE, "SOA")
        try:
            r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=1)
        except Exception:
            return None
        if r.rcode() != 0 or not r.flags & dns.flags.AA or not r.answer:
            return None
        return r.answer[0][0].serial

    def wait_serial(self, serial: int, timeout: float = 30) -> float:
        """Wait until it serves `serial`; the seconds it took. Fails with its log's tail."""
        start = time.monotonic()
        while (got := self.serial()) != serial:
            assert self.proc.poll() is None, f"{self.kind} exited:\n{self.log()}"
            assert time.monotonic() - start < timeout, \
                f"{self.kind} serves serial {got}, not {serial}, after {timeout} s:\n{self.log()}"
            time.sleep(0.05)
        return time.monotonic() - start

    def zone(self) -> dns.zone.Zone:
        """Its copy of the zone, by AXFR from it."""
        return dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=self.port, timeout=60, lifetime=120,
                                               relativize=False), relativize=False)


class BindSecondary(Secondary):
    kind, binary = "bind", "named"

    def config(self, primary_port: int) -> str:
        stanza = bind_stanza(key=self.key, secret=self.secret, primary="127.0.0.1", port=primary_port)
        # controls {}: no rndc channel, so several named processes never fight over port 953.
        return f"""options {{
    directory "{self.work}";
    listen-on port {self.port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    pid-file none;
    recursion no;
    dnssec-validation no;
    notify no;
    {BIND_OPTIONS}
}};
controls {{ }};
{stanza}
logging {{
    channel file {{ file "{self.log_path}"; severity info; print-time yes; }};
    category default {{ file; }};
    category notify {{ file; }};
    category xfer-in {{ xfer; }};
    channel xfer {{ file "{self.xfer_log}"; severity debug 3; print-time yes; }};
}};
"""

    @property
    def xfer_log(self) -> str:
        """Inbound transfers at debug level 3: only there does BIND say whether the answer to
        its IXFR request was incremental ("got incremental response") or the whole zone."""
        return os.path.join(self.work, "xfer-in.log")

    def log_files(self) -> list[str]:
        return super().log_files() + [self.xfer_log]

    def command(self) -> list[str]:
        # -d 3: the debug level the xfer channel logs at (the other channels stay at info).
        return [program("named"), "-f", "-d", "3", "-c", self.conf_path, "-n", "1"]


class KnotSecondary(Secondary):
    kind, binary = "knot", "knotd"

    def config(self, primary_port: int) -> str:
        stanza = knot_stanza(key=self.key, secret=self.secret, primary="127.0.0.1", port=primary_port)
        # storage: the zone file and the journal/timers databases stay in the temporary dir.
        return f"""{KNOT_SERVER_OPTIONS}
    listen: 127.0.0.1@{self.port}
    rundir: {self.work}
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
log:
  - target: {self.log_path}
    any: info
database:
    storage: {self.work}
template:
  - id: default
    storage: {self.work}
{stanza}
"""

    def command(self) -> list[str]:
        return [program("knotd"), "-c", self.conf_path]


KINDS = {"bind": BindSecondary, "knot": KnotSecondary}


def started(kinds, node) -> dict[str, Secondary]:
    """Start one secondary of each kind against `node` (already running, its --notify already
    naming their ports: see `notify_args`)."""
    return {k: s.start(node.dns_port) for k, s in kinds.items()}


def stop_all(secondaries) -> None:
    """Stop every one (one that fails to stop does not keep the others running), remove their
    directories, then raise the first failure."""
    failed = []
    for s in secondaries.values():
        try:
            s.stop()
        except Exception as e:
            failed.append(e)
        finally:
            s.remove()
    if failed:
        raise failed[0]


def notify_args(secondaries) -> list[str]:
    return [a for s in secondaries.values() for a in ("--notify", f"127.0.0.1:{s.port}")]


# --- the node's side -------------------------------------------------------------------------

def node_serial(node) -> int:
    """The serial the node's DNS server answers with now (the online SOA = the zone's)."""
    r = dns.query.udp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=node.dns_port, timeout=5)
    return r.answer[0][0].serial


def export_zone(node, path: str) -> dns.zone.Zone:
    out = run_cli("--network", "regtest", "--datadir", node.datadir, "--rpc-port", str(node.rpc_port),
                  "zone", "export", path, timeout=120)
    assert out.returncode == 0, out.stderr
    with open(path) as f:
        return dns.zone.from_text(f.read(), origin=ZONE, relativize=False, check_origin=False)


def canonical(zone: dns.zone.Zone) -> set[tuple[str, int, str, str]]:
    """(owner, ttl, type, rdata) of every record: what two copies of a zone must agree on,
    whatever their order, compression or grouping."""
    return {(name.to_text(), rds.ttl, dns.rdatatype.to_text(rds.rdtype), rd.to_text())
            for name, rds in zone.iterate_rdatasets() for rd in rds}


def verify_zone_file(zone: dns.zone.Zone, path: str) -> None:
    """Write `zone` as a master file and check it with BIND's dnssec-verify and ldns-verify-zone."""
    with open(path, "w") as f:
        zone.to_file(f, sorted=True, relativize=False)
    # -z: the resolver's single key carries the SEP flag and signs everything (a CSK).
    v = subprocess.run([program("dnssec-verify"), "-z", "-o", "bit.", path], capture_output=True, text=True,
                       timeout=120)
    assert v.returncode == 0 and "Zone fully signed" in v.stdout + v.stderr, v.stdout + v.stderr
    ldns = subprocess.run([program("ldns-verify-zone"), path], capture_output=True, text=True, timeout=120)
    assert ldns.returncode == 0 and "Zone is verified and complete" in ldns.stdout, ldns.stdout + ldns.stderr
