"""The stored zone followed by a secondary, on real node processes, with dnspython as the
transfer client (dns.query.inbound_xfr into a dns.zone.Zone): after every change (new names,
updates, a reorg, an expiry, a restart, a reindex) the secondary's copy, kept up by IXFR, equals
`zone export`; the serial only increases (a reorg adds one per block disconnected and connected;
restart keeps it; reindex rebuilds the zone with a higher one); IXFR answers are incremental
(RFC 1995: SOA(new), SOA(old) deletions, SOA(next) additions, SOA(new)) while the client's serial
is in the kept history and the whole zone from outside it; the copy validates with dnssec-verify
and ldns-verify-zone."""
from __future__ import annotations

import os
import subprocess

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.serial
import dns.xfr
import dns.zone
import pytest

from support.harness import NodeProcess, run_cli, running, stop_node
from support.resolver import ResolverNode, needs_tools, new_datadir, sample_names, zone_serial

T = dns.rdatatype
ZONE = dns.name.from_text("bit.")
HISTORY = 40


@pytest.fixture(scope="module")
def node():
    def setup(n):
        n.fund(blocks=120)                              # coins for every test's names
        n.register({b"d/first": {"ip": ["192.0.2.10"]}})
    yield from running(ResolverNode(new_datadir(), "--axfr-allow", "127.0.0.1", "--ixfr-history", str(HISTORY)),
                       setup)


def export(node, tmp_path) -> dns.zone.Zone:
    path = str(tmp_path / "export.zone")
    out = run_cli("--network", "regtest", "--datadir", node.datadir, "--rpc-port", str(node.rpc_port),
                  "zone", "export", path, timeout=120)
    assert out.returncode == 0, out.stderr
    with open(path) as f:
        return dns.zone.from_text(f.read(), origin=ZONE, relativize=False, check_origin=False)


def records(zone: dns.zone.Zone) -> set:
    return {(name.canonicalize().to_text(), rds.ttl, rds.rdtype, rds.covers, rd.to_text())
            for name, n in zone.nodes.items() for rds in n for rd in rds}


def serial_of(zone: dns.zone.Zone) -> int:
    return zone.find_rdataset(ZONE, T.SOA)[0].serial


class Secondary:
    """A copy of bit. kept by zone transfers, as a secondary keeps it."""

    def __init__(self, node):
        self.node = node
        self.zone = dns.zone.Zone(ZONE, relativize=False)
        q, _ = dns.xfr.make_query(self.zone, serial=None)            # AXFR: nothing held yet
        dns.query.inbound_xfr("127.0.0.1", self.zone, q, port=node.dns_port, timeout=30)

    def form(self) -> str:
        """What an IXFR from our serial gives: 'current', 'incremental' or 'axfr'."""
        rrs = [r for m in dns.query.xfr("127.0.0.1", ZONE, rdtype=T.IXFR, serial=serial_of(self.zone),
                                        port=self.node.dns_port, timeout=30, relativize=False)
               for r in m.answer]
        if len(rrs) == 1:
            return "current"
        return "incremental" if rrs[1].rdtype == T.SOA else "axfr"

    def follow(self) -> str:
        form = self.form()
        old = serial_of(self.zone)
        q, _ = dns.xfr.make_query(self.zone)                         # IXFR from the serial held
        dns.query.inbound_xfr("127.0.0.1", self.zone, q, port=self.node.dns_port, timeout=30)
        new = serial_of(self.zone)
        assert new == old or dns.serial.Serial(new) > dns.serial.Serial(old)
        return form


def check_follows(secondary: Secondary, node, tmp_path, form: str = "incremental") -> None:
    assert secondary.follow() == form
    assert serial_of(secondary.zone) == zone_serial(node)
    assert records(secondary.zone) == records(export(node, tmp_path))


def names_of(zone: dns.zone.Zone) -> set:
    return {n.to_text() for n in zone.nodes}


def test_secondary_follows_blocks_by_ixfr(node, tmp_path):
    sec = Secondary(node)
    assert sec.form() == "current"
    start = serial_of(sec.zone)
    node.register(sample_names())                       # 13 blocks, names in the last
    check_follows(sec, node, tmp_path)
    assert serial_of(sec.zone) == start + 13
    assert {"example.bit.", "www.example.bit.", "deleg.bit.", "ns1.deleg.bit."} <= names_of(sec.zone)
    node.update(b"d/cn", {"ip": ["198.51.100.1"]})
    node.update(b"d/first", {"ip": ["192.0.2.11"], "map": {"www": {"ip": ["192.0.2.12"]}}})
    check_follows(sec, node, tmp_path)
    a = {rd.to_text() for rd in sec.zone.find_rdataset("first.bit.", T.A)}
    assert a == {"192.0.2.11"} and "www.first.bit." in names_of(sec.zone)
    node.mine(1)                                        # a block changing no name: SOA and its RRSIG
    check_follows(sec, node, tmp_path)


@needs_tools("dnssec-verify", "ldns-verify-zone")
def test_the_ixfr_copy_validates(node, tmp_path):
    sec = Secondary(node)
    node.update(b"d/first", {"ip": ["192.0.2.13"], "map": {"mail": {"ip": ["192.0.2.25"]}}})
    check_follows(sec, node, tmp_path)
    path = tmp_path / "copy.zone"
    with open(path, "w") as f:
        sec.zone.to_file(f, sorted=True, relativize=False)
    v = subprocess.run(["dnssec-verify", "-z", "-o", "bit.", str(path)], capture_output=True, text=True, timeout=60)
    assert v.returncode == 0 and "Zone fully signed" in v.stdout + v.stderr, v.stderr
    ldns = subprocess.run(["ldns-verify-zone", str(path)], capture_output=True, text=True, timeout=60)
    assert ldns.returncode == 0, ldns.stdout + ldns.stderr


def test_a_serial_outside_the_history_gets_the_whole_zone(node, tmp_path):
    sec = Secondary(node)
    node.mine(HISTORY + 1)
    check_follows(sec, node, tmp_path, form="axfr")


def test_reorg_keeps_the_serial_increasing_and_drops_the_old_branch(node, tmp_path):
    sec = Secondary(node)
    other = NodeProcess(str(tmp_path / "other")).start()
    try:
        base = node.call("getblockcount")
        for h in range(1, base + 1):
            assert other.call("submitblock", node.call("getblock", node.call("getblockhash", h), 0)) is None
        node.register({b"d/gone": {"ip": ["192.0.2.98"]}})           # 13 blocks on the branch that loses
        check_follows(sec, node, tmp_path)
        assert "gone.bit." in names_of(sec.zone)
        before = serial_of(sec.zone)
        branch = other.call("generatetoaddress", 16, other.call("getminingaddress"))
        for h in branch:
            other_block = other.call("getblock", h, 0)
            node.call("submitblock", other_block)
        assert node.call("getbestblockhash") == branch[-1]
    finally:
        other.stop()
    # 13 blocks disconnected, 16 connected: 29 new serials, never a lower one, by IXFR.
    check_follows(sec, node, tmp_path)
    assert serial_of(sec.zone) == before + 29
    assert "gone.bit." not in names_of(sec.zone)


def test_restart_keeps_the_serial_and_the_history(node, tmp_path):
    sec = Secondary(node)
    serial = serial_of(sec.zone)
    node.stop()
    node.start()
    assert zone_serial(node) == serial and sec.form() == "current"
    node.mine(1)
    check_follows(sec, node, tmp_path)


def test_reindex_rebuilds_an_equal_zone_with_a_higher_serial(node, tmp_path):
    sec = Secondary(node)
    before = records(sec.zone)
    serial = serial_of(sec.zone)
    node.stop()
    try:
        r = run_cli("--network", "regtest", "--datadir", node.datadir, "reindex", timeout=300)
        assert r.returncode == 0 and "zone bit. rebuilt: serial" in r.stdout, r.stdout + r.stderr
    finally:
        node.start()
    assert dns.serial.Serial(zone_serial(node)) > dns.serial.Serial(serial)
    check_follows(sec, node, tmp_path, form="axfr")             # the history went with the rebuild
    unsigned = {r for r in records(sec.zone) if r[2] not in (T.SOA, T.RRSIG)}
    assert unsigned == {r for r in before if r[2] not in (T.SOA, T.RRSIG)}


def test_expiry_empties_the_zone_by_ixfr(node, tmp_path):
    sec = Secondary(node)
    node.mine(31)                                       # regtest names expire 30 blocks after update
    check_follows(sec, node, tmp_path)
    assert names_of(sec.zone) == {"bit."}


def test_kill_9_leaves_the_tip_s_zone(tmp_path):
    """The zone is written in each block's own batch: killed while blocks connect, the node
    restarts on a zone that is its tip's (no rebuild needed), equal to one rebuilt by reindex."""
    import threading
    import time
    node = ResolverNode(new_datadir(), "--axfr-allow", "127.0.0.1")
    node.start()
    try:
        node.fund(blocks=102)
        node.register({b"d/crash": {"ip": ["192.0.2.66"]}, b"d/crash2": {"ns": ["ns.crash2.bit."],
                       "map": {"ns": {"ip": ["192.0.2.67"]}}}})

        def mine():
            try:
                node.mine(20)                       # fewer than the 30 to expiry
            except Exception:
                pass                                    # killed under it
        miner = threading.Thread(target=mine)
        miner.start()
        time.sleep(0.5)
        node.kill()
        miner.join()
        mark = os.path.getsize(node.log_path)
        node.start()
        assert "zone bit. built" not in node.log(mark), node.log(mark)
        sec = Secondary(node)
        assert serial_of(sec.zone) == zone_serial(node)
        kept = records(export(node, tmp_path))
        assert records(sec.zone) == kept and "crash2.bit." in names_of(sec.zone)
        node.stop()
        r = run_cli("--network", "regtest", "--datadir", node.datadir, "reindex", timeout=300)
        assert r.returncode == 0, r.stderr
        node.start()
        rebuilt = records(export(node, tmp_path))
        assert {x for x in kept if x[2] not in (T.SOA, T.RRSIG)} == {x for x in rebuilt if x[2] not in (T.SOA, T.RRSIG)}
    finally:
        stop_node(node)
