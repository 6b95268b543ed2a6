"""The signed bit. zone, exported to a file and transferred by AXFR, on a real node process:
BIND's named-checkzone and dnssec-verify and ldns-verify-zone accept the file; dig and kdig
AXFR from an allowed address give exactly the file's records (the same stored zone), SOA first
and last; other sources and UDP get REFUSED; IXFR is answered with the SOA when current, with
the whole zone from a serial outside the kept history (test_zone_ixfr.py follows blocks by
IXFR); the zone holds what the online resolver answers, follows new blocks, drops
expired names, and is the same whether exported through the running node or from the stopped
node's database. Unbound, as a real secondary, transfers it and answers validated from its copy
with the node stopped. Hostile values never make the zone unloadable, and large zones split
into messages of at most 64 KiB."""
from __future__ import annotations

import json
import shutil
import subprocess

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from support.harness import free_port, run_cli, running, stop_process
from support.resolver import ResolverNode, needs_tools, new_datadir, raw_transfer, sample_names, unbound_conf

from node.resolver.identity import ResolverKey
from node.resolver.zone.transfer import MAX_MESSAGE, _bodies
from support.zone_model import ModelChain
from support.zone_reference import build_zone

T = dns.rdatatype
ZONE = dns.name.from_text("bit.")

# Values a zone file cannot hold as given; the export must still load everywhere.
HOSTILE = {
    b"d/lame": {"ns": ["ns1.lame.bit."]},                                        # in-zone NS, no address
    b"d/sib": {"ns": ["ns1.deleg.bit."]},                                        # sibling glue: kept
    b"d/dsonly": {"ip": ["192.0.2.7"], "ds": [[1, 8, 2, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]]},
    b"d/cnds": {"alias": "example.bit.", "ds": [[1, 8, 2, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]],
                "map": {"x": {"ip": ["192.0.2.8"]}}},
    b"d/wild": {"ip": ["192.0.2.9"], "map": {"*": {"ns": ["ns.elsewhere.net."]}}},
}


def _setup(node):
    node.fund(blocks=110)
    node.register({**sample_names(), **HOSTILE})


@pytest.fixture(scope="module")
def node():
    yield from running(ResolverNode(new_datadir(), "--axfr-allow", "127.0.0.1/32", "--axfr-allow", "::1"), _setup)


def export(node, path: str) -> str:
    out = run_cli("--network", "regtest", "--datadir", node.datadir, "--rpc-port", str(node.rpc_port),
                  "zone", "export", path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "records written to" in out.stdout
    with open(path) as f:
        return f.read()


def as_zone(text: str) -> dns.zone.Zone:
    return dns.zone.from_text(text, origin=ZONE, relativize=False, check_origin=False)


def axfr_messages(port: int, qtype: str = "AXFR", source: str = "127.0.0.1", serial: int | None = None):
    """The raw transfer: every response message until the closing SOA (or the first error)."""
    q = dns.message.make_query(ZONE, qtype)
    if serial is not None:
        q.authority.append(dns.rrset.from_text(ZONE, 0, "IN", "SOA", f". . {serial} 0 0 0 0"))
    return [dns.message.from_wire(d, xfr=True, one_rr_per_rrset=True) for d in raw_transfer(port, q, source)]


def records_of(msgs) -> list:
    return [rrset for m in msgs for rrset in m.answer]


# --- export and standard tools -------------------------------------------------------------------

@needs_tools("named-checkzone", "dnssec-verify", "ldns-verify-zone")
def test_export_loads_and_validates(node, tmp_path):
    path = str(tmp_path / "bit.zone")
    text = export(node, path)
    serial = as_zone(text).find_rdataset(ZONE, T.SOA)[0].serial
    # The online SOA carries the zone's serial (one more per block and per rebuild, not the height).
    r = dns.query.udp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=node.dns_port, timeout=5)
    assert r.answer[0][0].serial == serial
    check = subprocess.run(["named-checkzone", "bit.", path], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and f"loaded serial {serial} (DNSSEC signed)" in check.stdout, check.stdout
    # -z: the resolver's single key carries the SEP flag and signs everything (a CSK).
    verify = subprocess.run(["dnssec-verify", "-z", "-o", "bit.", path], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and "Zone fully signed" in verify.stdout + verify.stderr, verify.stderr
    ldns = subprocess.run(["ldns-verify-zone", path], capture_output=True, text=True, timeout=60)
    assert ldns.returncode == 0 and "Zone is verified and complete" in ldns.stdout, ldns.stdout + ldns.stderr


def test_zone_holds_what_the_resolver_answers(node, tmp_path):
    zone = as_zone(export(node, str(tmp_path / "bit.zone")))
    cuts = {name for name, n in zone.nodes.items() if n.get_rdataset(dns.rdataclass.IN, T.NS) and name != ZONE}
    checked = 0
    for name, n in zone.nodes.items():
        below_cut = any(name != c and name.is_subdomain(c) for c in cuts)
        for rds in n:
            if rds.rdtype in (T.RRSIG, T.NSEC) or below_cut or name.is_wild():
                continue
            q = dns.message.make_query(name, rds.rdtype)
            q.flags &= ~dns.flags.RD
            r = dns.query.tcp(q, "127.0.0.1", port=node.dns_port, timeout=5)
            section = r.authority if name in cuts and rds.rdtype == T.NS else r.answer
            got = {rd.to_text() for rrset in section if rrset.name == name and rrset.rdtype == rds.rdtype
                   for rd in rrset}
            assert got == {rd.to_text() for rd in rds}, (name, T.to_text(rds.rdtype))
            checked += 1
    assert checked >= 20 and zone.get_rdataset(ZONE, T.DNSKEY) and zone.get_rdataset(ZONE, T.SOA)
    names = {n.to_text() for n in zone.nodes}
    # Every sample name is there; what a zone cannot hold is not.
    assert {"example.bit.", "www.example.bit.", "_443._tcp.example.bit.", "_minimalt._udp.example.bit.",
            "*.example.bit.", "deleg.bit.", "ns1.deleg.bit.", "insecure.bit.", "moved.bit.", "cn.bit.",
            "big.bit.", "sib.bit.", "x.cnds.bit."} <= names
    assert "lame.bit." not in names and "*.wild.bit." not in names
    assert zone.get_rdataset("dsonly.bit.", T.DS) is None and zone.get_rdataset("cnds.bit.", T.DS) is None
    assert zone.get_rdataset("dsonly.bit.", T.A) is not None
    # No RRSIG over delegation NS or glue; DS at a cut is signed.
    assert zone.get_rdataset("deleg.bit.", T.RRSIG, T.NS) is None
    assert zone.get_rdataset("ns1.deleg.bit.", T.RRSIG, T.A) is None
    assert zone.get_rdataset("deleg.bit.", T.RRSIG, T.DS) is not None


def test_nsec_chain_is_closed_and_canonical(node, tmp_path):
    zone = as_zone(export(node, str(tmp_path / "bit.zone")))
    secure = [n for n in sorted(zone.nodes) if zone.nodes[n].get_rdataset(dns.rdataclass.IN, T.NSEC)]
    links = {n: zone.nodes[n].get_rdataset(dns.rdataclass.IN, T.NSEC)[0].next for n in secure}
    assert secure[0] == ZONE
    for a, b in zip(secure, secure[1:] + [ZONE]):
        assert links[a] == b
    assert dns.name.from_text("ns1.deleg.bit.") not in links       # glue is not in the chain


# --- AXFR --------------------------------------------------------------------------------------

def test_axfr_equals_export_soa_first_and_last(node, tmp_path):
    text = export(node, str(tmp_path / "bit.zone"))
    msgs = axfr_messages(node.dns_port)
    assert all(m.rcode() == dns.rcode.NOERROR and m.flags & dns.flags.AA for m in msgs)
    rrs = records_of(msgs)
    assert rrs[0].rdtype == T.SOA and rrs[-1].rdtype == T.SOA and rrs[0] == rrs[-1]
    assert sum(1 for r in rrs if r.rdtype == T.SOA) == 2
    got = dns.zone.Zone(ZONE, relativize=False)
    with got.writer() as txn:
        for rrset in rrs[:-1]:
            txn.add(rrset)
    # Byte-identical signatures too: signing is a function of the tip, not of the clock.
    assert got == as_zone(text)


@needs_tools("dig", "kdig")
@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_axfr_with_dig_and_kdig(node, tmp_path, tool):
    text = export(node, str(tmp_path / "bit.zone"))
    out = subprocess.run([tool, "@127.0.0.1", "-p", str(node.dns_port), "bit.", "AXFR", "+nocomments"],
                         capture_output=True, text=True, timeout=60).stdout
    lines = [ln for ln in out.splitlines() if ln and not ln.startswith(";")]
    assert lines[0].split()[3] == "SOA" and lines[-1].split()[3] == "SOA", out[-500:]
    body = "\n".join(lines[:-1]).replace("\t", " ")
    assert as_zone(body) == as_zone(text)


def test_axfr_refused_to_other_sources_and_over_udp(node):
    msgs = axfr_messages(node.dns_port, source="127.0.0.2")
    assert len(msgs) == 1 and msgs[0].rcode() == dns.rcode.REFUSED and not msgs[0].answer
    for qtype in ("AXFR", "IXFR"):
        r = dns.query.udp(dns.message.make_query(ZONE, qtype), "127.0.0.1", port=node.dns_port, timeout=5)
        assert r.rcode() == dns.rcode.REFUSED and not r.answer and not r.flags & dns.flags.TC
    # Below the apex there is no zone to transfer, even to an allowed source.
    q = dns.message.make_query("example.bit.", "AXFR")
    r = dns.query.tcp(q, "127.0.0.1", port=node.dns_port, timeout=5)
    assert r.rcode() == dns.rcode.REFUSED


@needs_tools("dig")
def test_dig_axfr_from_disallowed_source_fails(node):
    out = subprocess.run(["dig", "-b", "127.0.0.2", "@127.0.0.1", "-p", str(node.dns_port), "bit.", "AXFR"],
                         capture_output=True, text=True, timeout=60).stdout
    assert "Transfer failed" in out
    assert not [ln for ln in out.splitlines() if not ln.startswith(";") and "SOA" in ln.split()]


def test_ixfr_gets_soa_when_current_else_whole_zone(node):
    serial = records_of(axfr_messages(node.dns_port))[0][0].serial
    current = records_of(axfr_messages(node.dns_port, "IXFR", serial=serial))
    assert len(current) == 1 and current[0].rdtype == T.SOA and current[0][0].serial == serial
    # A serial this zone never had: no kept steps from it, so the whole zone (RFC 1995 §4).
    old = records_of(axfr_messages(node.dns_port, "IXFR", serial=(serial - 100_000) % 2**32))
    assert old[0].rdtype == T.SOA and old[-1].rdtype == T.SOA and len(old) > 50
    assert {(r.name, r.rdtype, r.covers) for r in old} == {(r.name, r.rdtype, r.covers)
                                                           for r in records_of(axfr_messages(node.dns_port))}


# --- the zone follows the chain -----------------------------------------------------------------

def test_update_makes_a_new_version(node, tmp_path):
    before = axfr_messages(node.dns_port)
    node.update(b"d/cn", {"ip": ["198.51.100.1"]})
    after = records_of(axfr_messages(node.dns_port))
    assert after[0][0].serial > records_of(before)[0][0].serial
    a = {rd.to_text() for r in after if r.name == dns.name.from_text("cn.bit.") and r.rdtype == T.A for rd in r}
    assert a == {"198.51.100.1"}
    assert not any(r.name == dns.name.from_text("cn.bit.") and r.rdtype == T.CNAME for r in after)


UNBOUND = shutil.which("unbound") or shutil.which("unbound", path="/usr/sbin:/sbin")


@needs_tools("unbound")
def test_unbound_secondary_transfers_and_validates_with_the_node_stopped(node, tmp_path):
    """Unbound as a real secondary (auth-zone with a primary, validating its copy): it fetches
    the zone by zone transfer, and keeps answering validated (AD) from that copy, NXDOMAIN
    included, after the node is gone."""
    import time
    anchor = run_cli("--network", "regtest", "--datadir", node.datadir, "dnssec-anchor", timeout=60)
    ds = anchor.stdout.splitlines()[1].split(None, 3)[3].removeprefix("IN ")
    exported = export(node, str(tmp_path / "export.zone"))
    work = tmp_path / "unbound"
    work.mkdir()
    port = free_port()
    (work / "unbound.conf").write_text(unbound_conf(work, port, f"{work}/unbound.log", f"""
auth-zone:
    name: "bit."
    primary: 127.0.0.1@{node.dns_port}
    zonefile: "{work}/bit.zone"
    for-downstream: no
    for-upstream: yes
    fallback-enabled: no
""", 'module-config: "validator iterator"', f'trust-anchor: "bit. {ds}"'))
    proc = subprocess.Popen([UNBOUND, "-d", "-c", str(work / "unbound.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def ask(qname, qtype):
        q = dns.message.make_query(qname, qtype, want_dnssec=True)
        return dns.query.udp(q, "127.0.0.1", port=port, timeout=10)

    def log():
        return (work / "unbound.log").read_text()[-3000:] if (work / "unbound.log").exists() else ""

    try:
        deadline = time.monotonic() + 30
        while not (work / "bit.zone").exists():
            assert proc.poll() is None and time.monotonic() < deadline, log()
            time.sleep(0.2)
        time.sleep(0.5)                                     # the file is written, then loaded
        copy = as_zone((work / "bit.zone").read_text())
        assert copy == as_zone(exported)
        node.stop()
        try:
            for qname, qtype, rcode in [("example.bit.", "A", dns.rcode.NOERROR),
                                        ("_443._tcp.example.bit.", "TLSA", dns.rcode.NOERROR),
                                        ("nosuchname.bit.", "A", dns.rcode.NXDOMAIN),
                                        ("www.example.bit.", "MX", dns.rcode.NOERROR)]:
                r = ask(qname, qtype)
                assert r.rcode() == rcode and r.flags & dns.flags.AD, (qname, qtype, r.to_text(), log())
            assert {rd.address for rd in ask("example.bit.", "A").answer[0]} == {"192.0.2.1", "192.0.2.2"}
        finally:
            node.start()
    finally:
        stop_process(proc)


def test_export_from_stopped_node_equals_running_export(node, tmp_path):
    running = export(node, str(tmp_path / "running.zone"))
    node.stop()
    try:
        offline = export(node, str(tmp_path / "offline.zone"))
    finally:
        node.start()
    assert offline == running


@needs_tools("ldns-verify-zone")
def test_axfr_while_blocks_connect_is_one_consistent_version(node, tmp_path):
    import threading
    miner = threading.Thread(target=lambda: [node.mine(1) for _ in range(10)])
    miner.start()
    try:
        serials = []
        for i in range(3):
            rrs = records_of(axfr_messages(node.dns_port))
            assert rrs[0] == rrs[-1] and rrs[0].rdtype == T.SOA
            serials.append(rrs[0][0].serial)
            z = dns.zone.Zone(ZONE, relativize=False)
            with z.writer() as txn:
                for rrset in rrs[:-1]:
                    txn.add(rrset)
            path = tmp_path / f"axfr{i}.zone"
            with open(path, "w") as f:
                z.to_file(f, sorted=True, relativize=False)
            v = subprocess.run(["ldns-verify-zone", str(path)], capture_output=True, text=True, timeout=60)
            assert v.returncode == 0, v.stdout + v.stderr
    finally:
        miner.join()
    assert serials == sorted(serials)


def test_expired_names_leave_the_zone(node, tmp_path):
    # Regtest names expire 30 blocks after their last update.
    node.mine(31)
    zone = as_zone(export(node, str(tmp_path / "bit.zone")))
    assert sorted(n.to_text() for n in zone.nodes) == ["bit."]
    assert {T.to_text(r.rdtype) for r in zone.nodes[ZONE]} == {"SOA", "NS", "DNSKEY", "RRSIG", "NSEC"}


# --- CLI errors --------------------------------------------------------------------------------

def test_cli_errors_are_one_line(tmp_path):
    r = run_cli("--network", "regtest", "--datadir", str(tmp_path), "zone", timeout=60)
    assert r.returncode == 2 and r.stderr.strip().startswith("dotbit-node: usage:")
    r = run_cli("--network", "regtest", "--datadir", str(tmp_path / "none"), "zone", "export", "x.zone", timeout=60)
    assert r.returncode == 1 and "no chain in" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("--network", "regtest", "--datadir", str(tmp_path), "--dns-port", "0", "--axfr-allow", "nonsense",
                timeout=60)
    assert r.returncode == 1 and "--axfr-allow: not an address or network" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli("--network", "regtest", "--datadir", str(tmp_path), "--axfr-allow", "127.0.0.1", timeout=60)
    assert r.returncode == 1 and "--axfr-allow needs DNS" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("backend", ["memory", "leveldb"])
def test_store_snapshot_ignores_later_writes(tmp_path, backend):
    from node.chain.storage import LevelDB, MemoryDB
    db = MemoryDB() if backend == "memory" else LevelDB(str(tmp_path / "db"))
    try:
        with db.write_batch() as b:
            b.put(b"n1", b"a")
        snap = db.snapshot()
        with db.write_batch() as b:
            b.put(b"n1", b"b")
            b.put(b"n2", b"c")
        assert snap.get(b"n1") == b"a" and snap.get(b"n2") is None
        assert list(snap.iterator(prefix=b"n")) == [(b"n1", b"a")]
        assert db.get(b"n1") == b"b"
        snap.close()
    finally:
        db.close()


# --- in-process: message size bound and hostile values --------------------------------------------

def test_large_transfer_splits_into_bounded_messages():
    chain = ModelChain()
    chain.connect({f"d/n{i:05d}".encode(): json.dumps({"ip": [f"10.0.{i >> 8 & 255}.{i & 255}"],
                                                       "txt": ["x" * 100]}) for i in range(1500)})
    version = chain.version()
    q = dns.message.make_query(ZONE, "AXFR")
    bodies = list(_bodies(q, version))
    assert len(bodies) >= 5
    rrs = []
    for body in bodies:
        wire = b"\x00\x00" + body
        assert len(wire) <= MAX_MESSAGE
        rrs += dns.message.from_wire(wire, xfr=True).answer
    assert rrs[0].rdtype == T.SOA and rrs[-1].rdtype == T.SOA
    assert sum(len(r) for r in rrs) == sum(len(r) for r in version.axfr()) > 1500 * 4


@needs_tools("named-checkzone")
def test_hostile_values_still_load(tmp_path):
    vals = {k.decode(): json.dumps(v) for k, v in {**sample_names(), **HOSTILE}.items()}
    vals["d/mxloop"] = json.dumps({"alias": "mxloop.bit.", "map": {"a": {"translate": "bit."}}})
    vals["d/badds"] = json.dumps({"ns": ["ns.elsewhere.net."], "ds": [[1, 8, 2, "AAAA"]]})   # short digest
    vals["d/deep"] = json.dumps({"map": {"a": {"map": {"b": {"ns": ["ns.b.a.deep.bit."],
                                                              "map": {"ns": {"ip": ["192.0.2.10"]}}}}}}})
    zone = build_zone(sorted(vals), vals.get, ResolverKey(bytes(32)), 99, 1_800_000_000)
    path = tmp_path / "bit.zone"
    path.write_text(zone.text())
    check = subprocess.run(["named-checkzone", "bit.", str(path)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout
    z = as_zone(zone.text())
    assert z.get_rdataset("ns.b.a.deep.bit.", T.A) is not None and z.get_rdataset("b.a.deep.bit.", T.NS)
    assert z.get_rdataset("badds.bit.", T.DS) is None and z.get_rdataset("badds.bit.", T.NS) is not None


@needs_tools("dig")
def test_multi_message_axfr_from_a_real_chain_with_dig(tmp_path):
    """Some hundreds of names registered on a LevelDB chain (the benchmark's builder), served
    by the DNS server in-process: dig reassembles a transfer of several 64 KiB messages."""
    import asyncio
    from support.name_chain import build_chain

    from core.params import REGTEST
    from node.resolver.dns_answer import Responder
    from node.resolver.dns_server import DNSServer
    from node.resolver.dnssec import OnlineSigner
    from core.records import NameSource
    from node.resolver.zone.projection import ZoneProjection
    from node.resolver.zone.transfer import ZoneTransfer, parse_networks
    from node.service import open_chain

    build_chain(str(tmp_path / "chain"), 400)
    chain = open_chain(REGTEST, str(tmp_path / "chain"))
    key = ResolverKey(bytes(range(32)))
    try:
        ZoneProjection(chain.db, REGTEST, key).attach(chain)

        async def run():
            responder = Responder(NameSource(chain.names.get, lambda: chain.height, REGTEST), OnlineSigner(key),
                                  lambda: chain.height)
            server = DNSServer(responder, "127.0.0.1", 0,
                               ZoneTransfer(chain.db, parse_networks(["127.0.0.0/8"])))
            await server.start()
            try:
                proc = await asyncio.create_subprocess_exec(
                    "dig", "@127.0.0.1", "-p", str(server.port), "bit.", "AXFR", "+onesoa",
                    stdout=asyncio.subprocess.PIPE)
                out, _ = await asyncio.wait_for(proc.communicate(), 120)
                return out.decode()
            finally:
                await server.stop()
        out = asyncio.run(run())
    finally:
        chain.db.close()
    lines = [ln for ln in out.splitlines() if ln and not ln.startswith(";")]
    names = {ln.split()[0] for ln in lines}
    assert {f"name{i:05d}.bit." for i in range(400)} <= names and "www.name00399.bit." in names
    import re
    size = re.search(r"XFR size: (\d+) records \(messages (\d+), bytes (\d+)\)", out)
    assert size and int(size.group(2)) >= 3 and int(size.group(3)) > 2 * 65535, out[-400:]
    assert int(size.group(1)) == len(lines) + 1          # +onesoa hides the closing SOA
