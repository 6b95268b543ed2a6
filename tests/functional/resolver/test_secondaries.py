"""BIND 9 and Knot DNS as real secondaries of a node's signed `bit.` zone (TSIG, NOTIFY from the
node, IXFR requested) follow the chain block by block: names registered and updated, a reorg
to a longer branch from a second node that takes a name away, and names expiring. After each
step each secondary's copy, read back from it by AXFR, equals `dotbit-node zone export`
(canonically: the sets of (owner, ttl, type, rdata)) and passes dnssec-verify and
ldns-verify-zone. The secondaries ask for IXFR; that the node answers it incrementally waits
for the incremental zone (issue 20), and is marked so.

The chain is changed once per step by module fixtures; each step waits for every secondary and
records what it holds, and the tests, one per kind of secondary, judge the records."""
from __future__ import annotations

import base64
import logging
import os
import re
import subprocess
from dataclasses import dataclass, field

import dns.rdatatype
import pytest

from support.harness import ROOT, NodeProcess, stop_node
from support.resolver import OWNER, ResolverNode, needs_tools, new_datadir, sample_names
from support.secondaries import (BIND_OPTIONS, DOC_VALUES, KINDS, KNOT_SERVER_OPTIONS, bind_stanza, canonical,
                                 export_zone, knot_stanza, node_serial, notify_args, program, started, stop_all,
                                 verify_zone_file)

log = logging.getLogger(__name__)

SECRET = base64.b64encode(bytes(range(40, 72))).decode()
KIND = [pytest.param("bind", marks=needs_tools("named", "named-checkconf")),
        pytest.param("knot", marks=needs_tools("knotd", "knotc"))]
VERIFY = needs_tools("dnssec-verify", "ldns-verify-zone")
WAIT = 30                 # seconds a secondary may take to serve a new serial (NOTIFY makes it ~1 s)


@dataclass
class Step:
    """What the node served after one change, and what each secondary held then (its zone, or
    why it did not get there)."""
    what: str
    serial: int
    exported: set
    copies: dict = field(default_factory=dict)      # kind -> dns.zone.Zone
    errors: dict = field(default_factory=dict)      # kind -> message


class World:
    def __init__(self, tmp):
        self.tmp = tmp
        self.secondaries = {k: cls(SECRET) for k, cls in KINDS.items() if program(cls.binary)}
        self.node = ResolverNode(new_datadir(), "--axfr-allow", "127.0.0.1", "--axfr-tsig", f"xfr-key:{SECRET}",
                                 *notify_args(self.secondaries))
        self.other: NodeProcess | None = None

    def observe(self, what: str) -> Step:
        serial = node_serial(self.node)
        step = Step(what, serial, canonical(export_zone(self.node, str(self.tmp / f"export-{serial}.zone"))))
        for kind, sec in self.secondaries.items():
            try:
                took = sec.wait_serial(serial, WAIT)
                step.copies[kind] = sec.zone()
                log.info("%s: %s serves serial %d after %.2f s", what, kind, serial, took)
            except Exception as e:           # judged by that kind's test, not the others'
                step.errors[kind] = f"{type(e).__name__}: {e}"
        return step


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("secondaries"))
    try:
        w.node.start()
        w.node.fund(blocks=110)
        started(w.secondaries, w.node)
        w.first = w.observe("funded")
        yield w
    finally:
        stop_all(w.secondaries)
        if w.other is not None:
            stop_node(w.other)
        stop_node(w.node)


@pytest.fixture(scope="module")
def blocks(world):
    """Several blocks: names registered (with subdomains, TLSA, a delegation with DS...), one
    updated, one more registered."""
    node, steps = world.node, []
    node.register({**sample_names(), b"d/alpha": {"ip": ["192.0.2.10"]}})
    steps.append(world.observe("registered"))
    node.update(b"d/alpha", {"ip": ["192.0.2.11"], "map": {"www": {"ip": ["192.0.2.12"]}}})
    steps.append(world.observe("updated"))
    node.register({b"d/delta": {"ip": ["192.0.2.40"]}})
    steps.append(world.observe("registered again"))
    return steps


@pytest.fixture(scope="module")
def reorg(world, blocks):
    """A second node holding the same chain mines a longer branch without d/doomed, which the
    first node registered meanwhile; given those blocks, the first node reorganises. On regtest
    (fixed difficulty) more work means more blocks, so even today's serial, the height, rises
    across this reorg; a serial going down needs a heavier but shorter branch, which only
    retargeting networks make."""
    node = world.node
    world.other = other = NodeProcess(str(world.tmp / "other")).start()
    base = node.call("getblockcount")
    for h in range(1, base + 1):
        assert other.call("submitblock", node.call("getblock", node.call("getblockhash", h), 0)) is None
    node.register({b"d/doomed": {"ip": ["192.0.2.66"]}})
    before = world.observe("registered on the branch to lose")
    branch = other.call("generatetoaddress", node.call("getblockcount") - base + 1, OWNER.addr_text())
    for h in branch:
        other_block = other.call("getblock", h, 0)
        assert node.call("submitblock", other_block) in (None, "inconclusive")
    assert node.call("getbestblockhash") == branch[-1]
    return before, world.observe("reorganised")


@pytest.fixture(scope="module")
def expiry(world, reorg):
    """Mine until every name last changed in the first step has expired (30 blocks on regtest);
    d/delta, registered later, stays."""
    node = world.node
    target = max(node.call("name_show", n)["height"] for n in ("d/cn", "d/alpha")) + 30
    assert target < node.call("name_show", "d/delta")["height"] + 30
    node.mine(target - node.call("getblockcount"))
    return world.observe("expired")


# --- judging a step ------------------------------------------------------------------------------

def names_in(zone) -> set[str]:
    return {n.to_text() for n in zone.nodes}


def held(step: Step, kind: str, tmp_path):
    """The secondary's copy at this step, checked against the export and the validators."""
    assert kind not in step.errors, f"{step.what}: {step.errors[kind]}"
    copy = step.copies[kind]
    soa = copy.get_rdataset(copy.origin, dns.rdatatype.SOA)
    assert soa[0].serial == step.serial
    got = canonical(copy)
    assert got == step.exported, (step.what, sorted(got - step.exported)[:5], sorted(step.exported - got)[:5])
    verify_zone_file(copy, str(tmp_path / f"{kind}-{step.serial}.zone"))
    return names_in(copy)


@VERIFY
@pytest.mark.parametrize("kind", KIND)
def test_secondary_follows_blocks(world, blocks, kind, tmp_path):
    held(world.first, kind, tmp_path)
    registered, updated, again = (held(step, kind, tmp_path) for step in blocks)
    assert {"example.bit.", "www.example.bit.", "_443._tcp.example.bit.", "deleg.bit.", "alpha.bit."} <= registered
    assert "www.alpha.bit." not in registered and "www.alpha.bit." in updated
    assert "delta.bit." in again and "delta.bit." not in updated
    assert [s.serial for s in blocks] == sorted({s.serial for s in blocks})       # one new serial each


@VERIFY
@pytest.mark.parametrize("kind", KIND)
def test_secondary_follows_a_reorg_that_removes_a_name(world, reorg, kind, tmp_path):
    before, after = reorg
    assert "doomed.bit." in held(before, kind, tmp_path)
    assert "doomed.bit." not in held(after, kind, tmp_path)
    assert after.serial > before.serial          # the longer branch: a serial secondaries take


@VERIFY
@pytest.mark.parametrize("kind", KIND)
def test_secondary_drops_expired_names(world, expiry, kind, tmp_path):
    names = held(expiry, kind, tmp_path)
    assert "delta.bit." in names
    assert not {"example.bit.", "alpha.bit.", "deleg.bit.", "cn.bit."} & names


@pytest.mark.parametrize("kind", KIND)
def test_secondary_asks_for_ixfr(world, expiry, kind):
    """Once it holds a version, each refresh asks for the differences (BIND's request-ixfr,
    Knot's default), whatever the node answers."""
    text = world.secondaries[kind].log(0)
    if kind == "bind":
        asked = re.findall(r"requesting IXFR for serial (\d+)", text)
    else:
        asked = re.findall(r"\[bit\.\] IXFR, incoming, remote [^\n]*?, (?:started|receiving)", text)
    assert len(asked) >= 5, text[-3000:]


@needs_tools("knotd")
def test_knot_validated_every_version_it_took(world, expiry):
    """Knot's own DNSSEC validation (dnssec-validation: on) passed each version it loaded: the
    first, the three blocks, both sides of the reorg and the expiry."""
    text = world.secondaries["knot"].log(0)
    passed = re.findall(r"DNSSEC, (?:incremental )?validation successful", text)     # whole zone or IXFR
    assert len(passed) >= 7 and "validation failed" not in text, text[-3000:]


@pytest.mark.parametrize("kind", KIND)
def test_secondary_follows_by_ixfr_after_the_first_transfer(world, expiry, kind):
    """Only the first transfer is the whole zone; every later one is incremental."""
    text = world.secondaries[kind].log(0)
    if kind == "bind":
        whole = text.count("got nonincremental response")
        incremental = text.count("got incremental response")
    else:
        whole = len(re.findall(r"\[bit\.\] AXFR, incoming, remote [^\n]*?, started", text))
        incremental = len(re.findall(r"\[bit\.\] IXFR, incoming, remote [^\n]*?, started", text))
    assert whole == 1 and incremental >= 5, (whole, incremental, text[-3000:])


# --- the how-to -------------------------------------------------------------------------------------

def test_operator_doc_carries_the_tested_stanzas():
    """docs/operator.md shows exactly what the harness runs, rendered with DOC_VALUES."""
    with open(os.path.join(ROOT, "docs", "operator.md")) as f:
        doc = f.read()
    assert bind_stanza(**DOC_VALUES) in doc
    assert knot_stanza(**DOC_VALUES) in doc
    assert KNOT_SERVER_OPTIONS in doc and BIND_OPTIONS in doc


@pytest.mark.parametrize("kind", KIND)
def test_secondary_configs_pass_the_servers_own_checks(kind, tmp_path):
    """The whole config the harness writes (the doc's stanza inside) passes named-checkconf /
    knotc conf-check, so a typo in the stanza fails here and not only at a secondary's start."""
    sec = KINDS[kind](SECRET)
    try:
        path = tmp_path / f"{kind}.conf"
        path.write_text(sec.config(18653))
        cmd = [program("named-checkconf"), str(path)] if kind == "bind" else \
            [program("knotc"), "-c", str(path), "conf-check"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        sec.remove()

