"""The crash scenario of the stored signed zone: a node with DNS whose zone holds thousands of
names (support/name_chain.py), killed inside the connect of a block that expires 1,500 of them,
the block whose batch carries the zone's biggest update (each name removed, the NSEC chain
patched around it, the apex re-signed).

A block is stored in one batch and connected (chain state, names and zone) in the next. Killed
between the two, the node connects the stored block when it opens its chain, before the
resolver attaches the zone, so the zone no longer describes the tip and is rebuilt whole (log
line `zone bit. built`) with the next serial; killed after the second, the zone is the block's.
That rebuild is how a trial knows its kill landed inside the block's connect; each kill is aimed
at the middle of the connect's time as measured on a twin of the node in setup.

After the kill, besides the chain checks every scenario makes (support/crash.py after_kill):
the zone is the tip's, its serial is one above the one served before the kill (never lower), a
secondary holding that serial follows by IXFR (incremental after the block's own update, the
whole zone after a rebuild) to exactly what `zone export` gives, and the zone equals one
rebuilt from scratch on a copy of the data dir (signatures aside: unchanged names keep older
ones), with every signature valid (dnssec-verify, where installed).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import dns.name
import dns.query
import dns.rdatatype
import dns.serial
import dns.xfr
import dns.zone

from core.params import REGTEST
from node.chain.chainstate import ChainState
from node.chain.storage import LevelDB
from node.resolver.identity import load_or_create
from node.resolver.zone.projection import ZoneProjection, forget_zone
from node.resolver.zone.reader import zone_text
from node.resolver.zone.rebuild import rebuild
from support.crash import Scenario, Trial, after_kill, kill_during
from support.harness import run_cli
from support.name_chain import build_chain
from support.resolver import ResolverNode, zone_serial

T = dns.rdatatype
ZONE = dns.name.from_text("bit.")
EXPIRY = REGTEST.expiry_depth


def records(text: str) -> set:
    zone = dns.zone.from_text(text, origin=ZONE, relativize=False, check_origin=False)
    return {(name.canonicalize().to_text(), rds.ttl, rds.rdtype, rds.covers, rd.to_text())
            for name, n in zone.nodes.items() for rds in n for rd in rds}


def unsigned(recs: set) -> set:
    return {r for r in recs if r[2] not in (T.SOA, T.RRSIG)}


class Secondary:
    """A copy of bit. kept by zone transfers (dnspython as the secondary)."""

    def __init__(self, port: int):
        self.zone = dns.zone.Zone(ZONE, relativize=False)
        q, _ = dns.xfr.make_query(self.zone, serial=None)
        dns.query.inbound_xfr("127.0.0.1", self.zone, q, port=port, timeout=60)

    @property
    def serial(self) -> int:
        return self.zone.find_rdataset(ZONE, T.SOA)[0].serial

    def follow(self, port: int) -> str:
        """IXFR from the serial held; 'incremental' or 'axfr' (the form the node answered in)."""
        rrs = [r for m in dns.query.xfr("127.0.0.1", ZONE, rdtype=T.IXFR, serial=self.serial, port=port,
                                        timeout=60, relativize=False) for r in m.answer]
        form = "incremental" if len(rrs) > 1 and rrs[1].rdtype == T.SOA else "axfr"
        q, _ = dns.xfr.make_query(self.zone)
        dns.query.inbound_xfr("127.0.0.1", self.zone, q, port=port, timeout=60)
        return form

    def records(self) -> set:
        return {(name.canonicalize().to_text(), rds.ttl, rds.rdtype, rds.covers, rd.to_text())
                for name, n in self.zone.nodes.items() for rds in n for rd in rds}


def export(node) -> str:
    path = os.path.join(node.datadir, "export.zone")
    r = run_cli("--network", "regtest", "--datadir", node.datadir, "--rpc-port", str(node.rpc_port),
                "zone", "export", path, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"zone export: {r.stderr.strip()}")
    with open(path) as f:
        return f.read()


def rebuilt_copy(datadir: str, copy: str) -> tuple[str, str]:
    """The zone the stopped node's data dir holds, and the zone rebuilt from scratch there (on a
    copy): both as master-file text."""
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(os.path.join(datadir, "chain"), os.path.join(copy, "chain"))
    db = LevelDB(os.path.join(copy, "chain"))
    try:
        held = zone_text(db)[1]
        chain = ChainState(db, REGTEST)
        forget_zone(db)
        rebuild(ZoneProjection(db, REGTEST, load_or_create(os.path.join(datadir, "resolver_key"))), chain.tip,
                workers=0)
        return held, zone_text(db)[1]
    finally:
        db.close()
        shutil.rmtree(copy, ignore_errors=True)


def verify(text: str, path: str) -> list[str]:
    tool = shutil.which("dnssec-verify") or shutil.which("dnssec-verify", path="/usr/sbin:/sbin")
    if tool is None:
        return []
    with open(path, "w") as f:
        f.write(text)
    v = subprocess.run([tool, "-z", "-o", "bit.", path], capture_output=True, text=True, timeout=120)
    ok = v.returncode == 0 and "Zone fully signed" in v.stdout + v.stderr
    return [] if ok else [f"dnssec-verify: {(v.stderr or v.stdout).strip()[-300:]}"]


class ZoneUpdate(Scenario):
    """See the module doc. Each trial starts from the same prepared data dir (`base`): a zone
    of `count` names, the tip one block before 1,500 of them expire."""

    def setup(self) -> None:
        self.count = 2000 if self.small else 4000
        cache = os.path.join(self.workdir, "cache")
        build_chain(cache, self.count)
        self.base = os.path.join(self.workdir, "base")
        shutil.copytree(cache, self.base)
        shutil.rmtree(cache, ignore_errors=True)
        node = ResolverNode(self.base, "--axfr-allow", "127.0.0.1").start(timeout=300)    # builds the zone
        try:
            first = node.call("name_show", "d/name00000")["height"]
            self.expiry = first + EXPIRY                  # the block that expires the first 1,500
            behind = self.expiry - 1 - node.call("getblockcount")
            if behind < 2:
                raise AssertionError(f"the chain is {behind} blocks from the expiry: too close to aim at it")
            node.call("generate", behind - 1)
            t0 = time.perf_counter()
            node.call("generate", 1)
            self.ordinary = time.perf_counter() - t0      # a block expiring nothing
        finally:
            node.stop()
        self.connect = self._measure()
        if self.connect < 5 * self.ordinary:
            raise AssertionError(f"the expiring block's connect ({self.connect:.2f} s) is not long beside an "
                                 f"ordinary block's ({self.ordinary:.2f} s): nothing to aim a kill at")
        self.node = None

    def _measure(self) -> float:
        """How long `generate 1` of the expiring block takes, on a twin of `base`."""
        twin = os.path.join(self.workdir, "twin")
        shutil.rmtree(twin, ignore_errors=True)
        shutil.copytree(self.base, twin)
        node = ResolverNode(twin, "--axfr-allow", "127.0.0.1").start(timeout=120)
        try:
            t0 = time.perf_counter()
            node.call("generate", 1)
            return time.perf_counter() - t0
        finally:
            node.stop()
            shutil.rmtree(twin, ignore_errors=True)

    def _fresh(self) -> ResolverNode:
        d = os.path.join(self.workdir, "node")
        if self.node is not None:
            self.node.stop()
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(self.base, d)
        return ResolverNode(d, "--axfr-allow", "127.0.0.1").start(timeout=120)

    def trial(self, t: Trial) -> None:
        self.node = self._fresh()
        before = zone_serial(self.node)
        secondary = Secondary(self.node.dns_port)
        mined = []

        def step(client):
            if not mined:
                mined.append(True)
                return client.call("generate", 1)
            time.sleep(0.01)
            return []
        # Aimed at the middle of the block's connect: past what a block without expiries takes
        # (storing it comes first), well before its measured end.
        delay = self.rng.uniform(0.3, 0.6) * self.connect
        killed = kill_during(self.node, step, delay, started=lambda rec: rec.calls >= 1)
        t.killed_at = killed.after
        if killed.error:
            t.problems.append(f"driver: {killed.error!r}")
        mark = os.path.getsize(self.node.log_path)
        self.node = after_kill(self.node, t, killed.acked, main_chain=True,
                               names=[b"d/name%05d" % i for i in range(self.count)])
        rebuilt = "zone bit. built" in self.node.log(mark)
        height = self.node.call("getblockcount")
        t.in_work = killed.began and killed.interrupted and rebuilt and height == self.expiry
        t.note = (f"block {'stored, its connect cut: zone rebuilt' if rebuilt else 'connected'} at height {height}, "
                  f"killed {delay:.2f} s into a {self.connect:.2f} s connect")
        t.problems += self.check_zone(secondary, before, rebuilt)

    def check_zone(self, secondary: Secondary, before: int, rebuilt: bool) -> list[str]:
        node, problems = self.node, []
        serial = zone_serial(node)
        if serial != (before + 1) & 0xFFFFFFFF:
            problems.append(f"serial {serial} after the kill, {before} served before it: expected {before + 1}")
        form = secondary.follow(node.dns_port)
        if form != ("axfr" if rebuilt else "incremental"):
            problems.append(f"IXFR from the served serial {before} came in {form} form (zone rebuilt: {rebuilt})")
        exported = export(node)
        if secondary.serial != serial or secondary.records() != records(exported):
            problems.append("the secondary's copy after IXFR differs from zone export")
        problems += verify(exported, os.path.join(self.workdir, "export.zone"))
        node.stop()
        held, fresh = rebuilt_copy(node.datadir, os.path.join(self.workdir, "rebuilt"))
        if unsigned(records(held)) != unsigned(records(fresh)):
            problems.append("the zone after the kill differs from one rebuilt from the chain")
        if records(held) != records(exported):
            problems.append("the stored zone differs from what zone export gave")
        node.start(timeout=120)
        return problems
