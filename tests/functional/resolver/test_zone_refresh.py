"""The zone's signatures refreshed without a block, on a real node process: a chain whose tip is
8 days old (its zone signed from the tip's time, inside the 7-day refresh window of expiring) is
served by a node with DNS; its signature timer re-signs the zone at once as a new serial, which the online SOA
carries, an IXFR from the built serial gives incrementally, and the transferred copy is valid
now and for about two weeks (dnssec-verify, ldns-verify-zone)."""
from __future__ import annotations

import re
import subprocess
import time

import dns.name
import dns.query
import dns.rdatatype
import dns.zone

from core.primitives import Block
from core.params import REGTEST
from node.mining.miner import solve_quick
from node.mining.template import assemble
from node.service import open_chain
from support.chain import Key
from support.crash import wait_until
from support.harness import stop_node
from support.resolver import ResolverNode, needs_tools, new_datadir, zone_serial

T = dns.rdatatype
ZONE = dns.name.from_text("bit.")
AGE = 8 * 86400          # after regtest's genesis time, and enough to be due


def stale_chain(datadir: str, blocks: int = 3) -> None:
    """Blocks dated AGE ago, mined in-process (the node would date its own blocks now)."""
    chain = open_chain(REGTEST, datadir)
    try:
        start = int(time.time()) - AGE
        for i in range(blocks):
            tmpl = assemble(chain, [], 0, Key.from_seed(5).address, start + 60 * i)
            chain.process_block(Block(solve_quick(tmpl.block.header, tmpl.target), tmpl.block.txs))
    finally:
        chain.db.close()


@needs_tools("dnssec-verify", "ldns-verify-zone")
def test_a_stale_tip_s_zone_is_re_signed_without_a_block(tmp_path):
    datadir = new_datadir()
    stale_chain(datadir)
    node = ResolverNode(datadir, "--axfr-allow", "127.0.0.1")
    node.start()
    try:
        assert wait_until(lambda: "signatures refreshed without a block" in node.log(), 30), node.log()[-2000:]
        built = int(re.search(r"zone bit\. built: serial (\d+)", node.log()).group(1))
        serial = zone_serial(node)
        assert serial == built + 1
        assert node.call("getblockcount") == 3                  # no block did it
        # IXFR from the built serial: SOA(new), SOA(built) ... SOA(new) ... SOA(new).
        rrs = [r for m in dns.query.xfr("127.0.0.1", ZONE, rdtype=T.IXFR, serial=built, port=node.dns_port,
                                        timeout=30, relativize=False) for r in m.answer]
        assert [r[0].serial for r in rrs if r.rdtype == T.SOA] == [serial, built, serial, serial]
        zone = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=node.dns_port, timeout=30,
                                               relativize=False), relativize=False)
        now = int(time.time())
        expirations = [rd.expiration for n in zone.nodes.values() for rds in n if rds.rdtype == T.RRSIG
                       for rd in rds]
        assert expirations and min(expirations) > now + 13 * 86400
        path = tmp_path / "copy.zone"
        with open(path, "w") as f:
            zone.to_file(f, sorted=True, relativize=False)
        v = subprocess.run(["dnssec-verify", "-z", "-o", "bit.", str(path)], capture_output=True, text=True,
                           timeout=60)
        assert v.returncode == 0 and "Zone fully signed" in v.stdout + v.stderr, v.stderr
        ldns = subprocess.run(["ldns-verify-zone", str(path)], capture_output=True, text=True, timeout=60)
        assert ldns.returncode == 0, ldns.stdout + ldns.stderr
    finally:
        stop_node(node)
