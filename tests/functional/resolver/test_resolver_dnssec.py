"""Real validators accept the resolver's online-signed answers: Unbound with a stub zone for
bit. and the trust anchor printed by `dotbit-node dnssec-anchor`, and delv with the same
anchor. A, TLSA, NXDOMAIN and NODATA must come back validated (AD / "fully validated"); a
validator holding a different key must refuse them (SERVFAIL)."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from support.harness import free_port, run_cli, stop_process
from support.resolver import needs_tools, unbound_conf

UNBOUND = shutil.which("unbound") or shutil.which("unbound", path="/usr/sbin:/sbin")   # sbin may be off PATH
pytestmark = needs_tools("unbound", "delv")


QUERIES = [("example.bit.", "A", dns.rcode.NOERROR), ("_443._tcp.example.bit.", "TLSA", dns.rcode.NOERROR),
           ("nosuchname.bit.", "A", dns.rcode.NXDOMAIN), ("a.b.nosuch.example.bit.", "A", dns.rcode.NXDOMAIN),
           ("anything.example.bit.", "A", dns.rcode.NOERROR), ("_tcp.example.bit.", "A", dns.rcode.NOERROR),
           ("www.example.bit.", "MX", dns.rcode.NOERROR), ("alias.example.bit.", "A", dns.rcode.NOERROR),
           ("x.old.example.bit.", "A", dns.rcode.NOERROR), ("bit.", "DNSKEY", dns.rcode.NOERROR),
           ("deleg.bit.", "DS", dns.rcode.NOERROR), ("insecure.bit.", "DS", dns.rcode.NOERROR), ("_minimalt._udp.example.bit.", "TXT", dns.rcode.NOERROR)]


@pytest.fixture(scope="module")
def anchor(node):
    out = run_cli("--network", "regtest", "--datadir", node.datadir, "dnssec-anchor", timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("bit. 3600 IN DNSKEY 257 3 15 ") and lines[1].startswith("bit. 3600 IN DS ")
    return lines


class Unbound:
    def __init__(self, workdir: str, dns_port: int, ds_line: str):
        self.port = free_port()
        os.makedirs(workdir, exist_ok=True)
        self.conf = os.path.join(workdir, "unbound.conf")
        self.log = os.path.join(workdir, "unbound.log")
        ds = ds_line.split(None, 3)
        with open(self.conf, "w") as f:
            f.write(unbound_conf(workdir, self.port, self.log,
                                 f'stub-zone:\n    name: "bit."\n    stub-addr: 127.0.0.1@{dns_port}',
                                 "val-log-level: 2", 'module-config: "validator iterator"',
                                 f'trust-anchor: "bit. {ds[3].removeprefix("IN ")}"'))
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                dns.query.udp(dns.message.make_query("bit.", "SOA"), "127.0.0.1", port=self.port, timeout=1)
                return
            except Exception:
                assert self.proc.poll() is None, self.logtext()
        raise RuntimeError("unbound did not start:\n" + self.logtext())

    def ask(self, qname: str, qtype: str):
        q = dns.message.make_query(qname, qtype, want_dnssec=True)
        return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=10)

    def logtext(self) -> str:
        try:
            with open(self.log) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.proc)


def test_unbound_validates_answers(node, anchor, tmp_path):
    ub = Unbound(str(tmp_path / "unbound"), node.dns_port, anchor[1])
    try:
        for qname, qtype, rcode in QUERIES:
            r = ub.ask(qname, qtype)
            assert r.rcode() == rcode, (qname, qtype, r.to_text(), ub.logtext())
            assert r.flags & dns.flags.AD, (qname, qtype, r.to_text(), ub.logtext())
        assert any(rd.address == "192.0.2.1" for rd in ub.ask("example.bit.", "A").answer[0])
    finally:
        ub.stop()


def test_unbound_with_another_key_refuses(node, anchor, tmp_path):
    parts = anchor[1].split()
    parts[-1] = ("0" if parts[-1][0] != "0" else "1") + parts[-1][1:]     # a different digest
    ub = Unbound(str(tmp_path / "unbound-bad"), node.dns_port, " ".join(parts))
    try:
        r = ub.ask("example.bit.", "A")
        assert r.rcode() == dns.rcode.SERVFAIL and not r.answer
    finally:
        ub.stop()


def test_delv_fully_validates(node, anchor, tmp_path):
    _, _, _, _, flags, proto, alg, key = anchor[0].split(None, 7)
    anchors = tmp_path / "anchors.conf"
    anchors.write_text(f'trust-anchors {{ bit. static-key {flags} {proto} {alg} "{key}"; }};\n')
    for qname, qtype, _ in QUERIES[:3]:
        out = subprocess.run(["delv", "@127.0.0.1", "-p", str(node.dns_port), "-a", str(anchors), "+root=bit.",
                              qname, qtype], capture_output=True, text=True, timeout=30)
        text = out.stdout + out.stderr
        assert "fully validated" in text, (qname, qtype, text)
