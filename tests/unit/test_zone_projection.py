"""The incremental signed zone (node/resolver/zone/projection.py) against the whole zone built at
once (tests/support/zone_reference.py, the old dnspython builder): after any sequence of name
operations, connects, disconnects and expiries, the stored zone holds the same records, every
signature in it verifies, the NSEC chain is closed, the serial only increased by one per block,
and replaying the IXFR steps onto the first version gives the last one.

The chain is modelled (support/zone_model.py) on an in-memory store."""
from __future__ import annotations

import json

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.rrset
from hypothesis import given, seed, settings, strategies as st

from node.resolver.identity import ZONE
from node.resolver.zone.basis import next_serial
from node.resolver.zone.reader import ZoneVersion
from support.zone_model import KEY, ModelChain
from support.resolver import needs_tools
from support.zone_reference import build_zone, canonical

T = dns.rdatatype
NAMES = [b"d/a", b"d/b", b"d/c", b"d/dd", b"d/e-x", b"d/z"]
VALUES = [
    {"ip": ["192.0.2.1"]},
    {"ip": ["192.0.2.2"], "map": {"www": {"ip6": ["2001:db8::2"]}, "*": {"txt": ["wild"]}}},
    {"ns": ["ns1.{n}.bit.", "ns.elsewhere.net."], "ds": [[1, 15, 2, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]],
     "map": {"ns1": {"ip": ["192.0.2.53"]}}},
    {"ns": ["ns1.{n}.bit."]},                                          # lame: left out
    {"alias": "a.bit."},
    {"import": "d/a", "txt": ["imports a"]},
    {"mx": [[10, "mail.{n}.bit."]], "map": {"mail": {"ip": ["192.0.2.25"]}, "_tcp": {"map": {
        "_443": {"tls": [[3, 1, 1, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]]}}}}},
    {"translate": "a.bit."},
    "not json",
]


def value_text(i: int, name: bytes) -> str:
    v = VALUES[i]
    return v if isinstance(v, str) else json.dumps(v).replace("{n}", name.decode()[2:])


def stored_rrsets(version: ZoneVersion) -> list:
    return list(version.axfr())[:-1]


def without_signatures(rrsets) -> set:
    """Records but RRSIG rdata (signature times differ: unchanged names keep older ones)."""
    out = {x for x in canonical(rrsets) if x[2] != T.RRSIG}
    out |= {(r.name.canonicalize().to_text(), r.ttl, T.RRSIG, r.covers, "") for r in rrsets if r.rdtype == T.RRSIG}
    return out


def check_signed(rrsets, now: int) -> None:
    by = {}
    for r in rrsets:
        by.setdefault((r.name, r.rdtype if r.rdtype != T.RRSIG else r.covers, r.rdtype == T.RRSIG), r)
    keys = {ZONE: dns.rrset.from_rdata(ZONE, 300, KEY.dnskey)}
    for (name, rdtype, is_sig), sigs in by.items():
        if is_sig:
            dns.dnssec.validate(by[(name, rdtype, False)], sigs, keys, now=now)


def check_equals_reference(chain: ModelChain) -> None:
    version = chain.version()
    live = chain.live_values(NAMES)
    ref = build_zone(sorted(live), live.get, KEY, version.serial, chain.tip.header.time)
    got = stored_rrsets(version)
    assert without_signatures(got) == without_signatures(list(ref.rrsets()))
    check_signed(got, chain.tip.header.time)


op = st.one_of(
    st.tuples(st.just("block"), st.dictionaries(st.sampled_from(NAMES), st.integers(0, len(VALUES) - 1),
                                                max_size=3)),
    st.tuples(st.just("undo"), st.none()),
)


@seed(20261201)
@settings(max_examples=25, deadline=None)
@given(st.lists(op, min_size=1, max_size=14))
def test_incremental_zone_equals_a_whole_build(ops):
    chain = ModelChain()
    first = chain.version()
    serial = first.serial
    first_rrsets = stored_rrsets(first)
    for kind, arg in ops:
        if kind == "block":
            chain.connect({n: value_text(i, n) for n, i in arg.items()})
        elif len(chain.chain) > 1:
            chain.disconnect()
        else:
            continue
        v = chain.version()
        assert v.serial == next_serial(serial)
        serial = v.serial
        check_equals_reference(chain)
    # The IXFR steps from the first serial rebuild the last version from the first.
    replayed = canonical(first_rrsets)
    steps = chain.version().ixfr(first.serial)
    if serial != first.serial:
        assert steps is not None
        replayed = apply_ixfr(replayed, list(steps))
        assert replayed == canonical(stored_rrsets(chain.version()))


def apply_ixfr(records: set, rrsets: list) -> set:
    """RFC 1995 §4 by hand: SOA(new), then per step SOA(old) deletions SOA(next) additions."""
    records = set(records)
    soas = [i for i, r in enumerate(rrsets) if r.rdtype == T.SOA]
    assert soas[0] == 0 and soas[-1] == len(rrsets) - 1
    inner = soas[1:-1]
    for j in range(0, len(inner), 2):
        old_at, new_at = inner[j], inner[j + 1]
        end = inner[j + 2] if j + 2 < len(inner) else soas[-1]
        records -= canonical([rrsets[old_at]])
        records -= canonical(rrsets[old_at + 1:new_at])
        records |= canonical([rrsets[new_at]])
        records |= canonical(rrsets[new_at + 1:end])
    return records


def test_expiry_removes_and_disconnect_restores():
    chain = ModelChain()
    chain.connect({b"d/a": value_text(0, b"d/a"), b"d/b": value_text(5, b"d/b")})
    names = {r.name.to_text() for r in stored_rrsets(chain.version())}
    assert {"a.bit.", "b.bit."} <= names
    for _ in range(4):
        chain.connect({})
    assert {r.name.to_text() for r in stored_rrsets(chain.version())} == {"bit."}
    check_equals_reference(chain)
    chain.disconnect()
    assert {"a.bit.", "b.bit."} <= {r.name.to_text() for r in stored_rrsets(chain.version())}
    check_equals_reference(chain)


def test_import_change_rerenders_the_importer():
    chain = ModelChain()
    chain.connect({b"d/a": json.dumps({"ip": ["192.0.2.1"]}), b"d/b": json.dumps({"import": "d/a"})})
    chain.connect({b"d/a": json.dumps({"ip": ["192.0.2.77"]})})
    got = {(r.name.to_text(), rd.to_text()) for r in stored_rrsets(chain.version()) if r.rdtype == T.A for rd in r}
    assert ("b.bit.", "192.0.2.77") in got and ("b.bit.", "192.0.2.1") not in got
    check_equals_reference(chain)


def test_serial_wraps_and_still_increases():
    import dns.serial
    chain = ModelChain()
    with chain.db.write_batch() as b:
        meta = chain.zone.store.meta()
        meta.serial = 0xFFFFFFFF
        chain.zone.store.put_meta(b, meta)
    chain.connect({b"d/a": value_text(0, b"d/a")})
    assert chain.zone.serial() == 0 and dns.serial.Serial(0) > dns.serial.Serial(0xFFFFFFFF)


def test_history_is_bounded_and_old_serials_get_none():
    chain = ModelChain(history=3)
    first = chain.zone.serial()
    for i in range(6):
        chain.connect({b"d/a": json.dumps({"ip": [f"192.0.2.{i + 1}"]})})
    v = chain.version()
    assert v.ixfr(first) is None                    # outside the history: AXFR form
    assert v.ixfr(v.serial - 3) is not None and v.ixfr(v.serial - 4) is None
    assert len(list(v.store.steps(0))) == 3


def test_old_signatures_are_refreshed_before_they_expire():
    from node.resolver.zone.projection import REFRESH_AGE
    chain = ModelChain()
    chain.connect({n: value_text(0, n) for n in NAMES})
    signed_at = chain.tip.header.time
    # Blocks far apart in time: after REFRESH_AGE the old signatures are re-made.
    chain.tip.header.time += REFRESH_AGE + 3600
    chain.connect({})
    exps = {rd.expiration for r in stored_rrsets(chain.version()) if r.rdtype == T.RRSIG for rd in r}
    assert min(exps) > signed_at + REFRESH_AGE * 2
    check_signed(stored_rrsets(chain.version()), chain.tip.header.time)


def test_a_zone_failure_never_stops_a_block(monkeypatch):
    """A bug in the zone must not refuse a valid block: the zone goes stale (tip b"") and the
    next attach (a resolver's start) rebuilds it with a higher serial."""
    from node.resolver.zone.patch import Patch
    chain = ModelChain()
    serial = chain.zone.serial()

    def boom(*_):
        raise RuntimeError("injected")
    monkeypatch.setattr(Patch, "rerender", boom)
    chain.connect({b"d/a": value_text(0, b"d/a")})
    chain.connect({b"d/b": value_text(1, b"d/b")})
    assert chain.get(b"d/b") is not None and chain.zone.store.meta().tip == b""
    monkeypatch.undo()
    chain.zone.attach(chain)
    assert chain.zone.describes(chain.tip.hash) and chain.zone.serial() == serial + 1
    check_equals_reference(chain)


def test_transfer_forms_by_client_serial():
    """IXFR: current or newer (RFC 1982) -> the SOA alone; in the history -> incremental;
    outside it -> the whole zone (RFC 1995 §4)."""
    import dns.message
    from node.resolver.zone.transfer import _bodies
    chain = ModelChain(history=2)
    first = chain.zone.serial()
    for i in range(3):
        chain.connect({b"d/a": json.dumps({"ip": [f"192.0.2.{i + 1}"]})})
    v = chain.version()

    def ixfr(serial):
        q = dns.message.make_query(ZONE, "IXFR")
        q.authority.append(dns.rrset.from_text(ZONE, 0, "IN", "SOA", f". . {serial} 0 0 0 0"))
        return [r for b in _bodies(q, v) for r in dns.message.from_wire(b"\0\0" + b, xfr=True).answer]

    assert [r.rdtype for r in ixfr(v.serial)] == [T.SOA]
    assert [r.rdtype for r in ixfr((v.serial + 5) & 0xFFFFFFFF)] == [T.SOA]
    rrs = ixfr(v.serial - 1)
    assert rrs[0].rdtype == rrs[1].rdtype == T.SOA and rrs[1][0].serial == v.serial - 1
    assert [r.rdtype for r in ixfr(first)][1] != T.SOA                 # outside: AXFR form
    assert len(ixfr(first)) == len(list(v.axfr()))


# --- signatures refreshed while no block comes (zone/refresh.py's timer, a fake clock) ----------

class Clock:
    def __init__(self, now: int):
        self.now = now

    def __call__(self) -> float:
        return self.now


def timer_for(chain: ModelChain, clock: Clock, limit: int = 2000):
    from node.resolver.zone.refresh import SignatureTimer
    serials = []
    return SignatureTimer(chain.zone, lambda: chain.tip, serials.append, clock=clock, limit=limit), serials


def signatures_valid_at(chain: ModelChain, now: int) -> bool:
    try:
        check_signed(stored_rrsets(chain.version()), now)
        return True
    except dns.dnssec.ValidationFailure:
        return False


def test_a_stalled_chain_s_signatures_are_refreshed_by_the_timer():
    from node.resolver.zone.signed import ZONE_VALIDITY
    chain = ModelChain()
    chain.connect({n: value_text(i % 3, n) for i, n in enumerate(NAMES)})
    before = chain.version()
    serial, before_rrsets = before.serial, stored_rrsets(before)
    clock = Clock(chain.tip.header.time)
    timer, serials = timer_for(chain, clock)
    timer.tick()
    assert serials == [] and chain.zone.serial() == serial            # nothing due: no new serial
    clock.now += ZONE_VALIDITY + 3600                                  # no block for two weeks
    assert not signatures_valid_at(chain, clock.now)
    timer.tick()
    assert serials == [next_serial(serial)] == [chain.zone.serial()]
    assert signatures_valid_at(chain, clock.now)
    assert signatures_valid_at(chain, clock.now + ZONE_VALIDITY - 3600)
    live = chain.live_values(NAMES)
    ref = build_zone(sorted(live), live.get, KEY, chain.zone.serial(), chain.tip.header.time)
    assert without_signatures(stored_rrsets(chain.version())) == without_signatures(list(ref.rrsets()))
    # The refresh is an IXFR step like a block's: replayed on the old copy it gives the new zone.
    replayed = apply_ixfr(canonical(before_rrsets), list(chain.version().ixfr(serial)))
    assert replayed == canonical(stored_rrsets(chain.version()))
    timer.tick()
    assert len(serials) == 1                                           # fresh again: nothing due


def test_the_timer_refreshes_in_bounded_batches_then_blocks_go_on_from_its_serial():
    from node.resolver.zone.projection import REFRESH_AGE
    from node.resolver.zone.signed import ZONE_VALIDITY
    chain = ModelChain(history=50)
    chain.connect({n: value_text(6, n) for n in NAMES})                # 6 names, 3 signed owners each
    start = chain.version()
    # The node was off until the signatures are hours from expiring: urgent, a batch a second.
    clock = Clock(chain.tip.header.time + ZONE_VALIDITY - 3600 * 5)
    timer, serials = timer_for(chain, clock, limit=4)
    while timer.tick() < 60:
        assert len(serials) < 10
    assert len(serials) == 5                                           # 18 owners and the apex, 4 at a time
    assert signatures_valid_at(chain, clock.now + REFRESH_AGE)
    # A block after the refreshes: one serial more, the zone still the whole build's.
    chain.connect({b"d/a": value_text(1, b"d/a")})
    assert chain.zone.serial() == next_serial(serials[-1])
    check_equals_records(chain)
    replayed = apply_ixfr(canonical(stored_rrsets(start)), list(chain.version().ixfr(start.serial)))
    assert replayed == canonical(stored_rrsets(chain.version()))


def check_equals_records(chain: ModelChain) -> None:
    live = chain.live_values(NAMES)
    ref = build_zone(sorted(live), live.get, KEY, chain.zone.serial(), chain.tip.header.time)
    assert without_signatures(stored_rrsets(chain.version())) == without_signatures(list(ref.rrsets()))


def test_a_stale_zone_is_left_for_its_rebuild():
    from node.resolver.zone.signed import ZONE_VALIDITY
    from node.resolver.zone.store import Meta
    chain = ModelChain()
    chain.connect({b"d/a": value_text(0, b"d/a")})
    meta = chain.zone.store.meta()
    with chain.db.write_batch() as b:
        chain.zone.store.put_meta(b, Meta(meta.serial, b"", meta.key, meta.first_step, meta.next_step))
    timer, serials = timer_for(chain, Clock(chain.tip.header.time + ZONE_VALIDITY))
    timer.tick()
    assert serials == [] and chain.zone.store.meta().serial == meta.serial


@needs_tools("dnssec-verify", "ldns-verify-zone")
def test_the_refreshed_zone_validates(tmp_path):
    """Against the real clock (the tools check signature times): a tip 13 days old, signatures
    a day from expiring, refreshed by the timer."""
    import subprocess
    import time
    from node.resolver.zone.reader import zone_text
    chain = ModelChain()
    now = int(time.time())
    chain.tip.header.time = now - 13 * 86400
    chain.connect({n: value_text(i % 3, n) for i, n in enumerate(NAMES)})
    serial = chain.zone.serial()
    timer, serials = timer_for(chain, Clock(now))
    timer.tick()
    assert serials == [next_serial(serial)]
    got, text = zone_text(chain.db)
    assert got == serials[0]
    path = tmp_path / "bit.zone"
    path.write_text(text)
    v = subprocess.run(["dnssec-verify", "-z", "-o", "bit.", str(path)], capture_output=True, text=True, timeout=60)
    assert v.returncode == 0 and "Zone fully signed" in v.stdout + v.stderr, v.stderr
    ldns = subprocess.run(["ldns-verify-zone", str(path)], capture_output=True, text=True, timeout=60)
    assert ldns.returncode == 0, ldns.stdout + ldns.stderr


def test_while_blocks_come_the_timer_leaves_the_refresh_to_them():
    from node.resolver.zone.projection import REFRESH_AGE
    from node.resolver.zone.refresh import QUIET
    chain = ModelChain()
    chain.connect({n: value_text(0, n) for n in NAMES})
    clock = Clock(chain.tip.header.time + REFRESH_AGE + 3600)        # due: within the refresh window
    chain.tip.header.time = clock.now - 600                           # but a block came 10 minutes ago
    timer, serials = timer_for(chain, clock)
    timer.tick()
    assert serials == []
    clock.now += QUIET                                                # and then none for an hour
    timer.tick()
    assert serials == [chain.zone.serial()]


# --- the whole build with worker processes (zone/lanes.py) writes what the serial one writes ----

def zone_keys(db) -> dict:
    from node.chain import layout as L
    return {k: v for p in (L.ZONE_META,) + L.ZONE_PARTS for k, v in db.iterator(prefix=p)}


def test_the_build_with_worker_processes_equals_the_serial_build(monkeypatch):
    from node.resolver.zone import rebuild as R
    from node.resolver.zone.projection import forget_zone
    chain = ModelChain()
    names = [b"d/n%03d" % i for i in range(120)] + NAMES
    chain.connect({n: value_text(i % len(VALUES), n) for i, n in enumerate(names)})
    meta = chain.db.get(b"Z")
    # Chunks far smaller than the zone, so owners and NSEC successors cross chunk borders.
    monkeypatch.setattr(R, "NAMES_PER_BATCH", 7)
    monkeypatch.setattr(R, "OWNERS_PER_BATCH", 11)
    built = {}
    for workers in (0, 2):
        forget_zone(chain.db)
        with chain.db.write_batch() as b:
            b.put(b"Z", meta)
        R.rebuild(chain.zone, chain.tip, workers=workers, inline=1)
        built[workers] = zone_keys(chain.db)
    assert len(built[0]) > 300 and built[0] == built[2]
    live = chain.live_values(names)
    ref = build_zone(sorted(live), live.get, KEY, chain.zone.serial(), chain.tip.header.time)
    got = stored_rrsets(chain.version())
    assert without_signatures(got) == without_signatures(list(ref.rrsets()))
    check_signed(got, chain.tip.header.time)


def test_the_fit_rules_short_cut_changes_nothing():
    """_fit_for_zone skips its rules for names without NS, DS, DNAME or CNAME; the rules run
    on every value of this file (and its names' subtrees) must give what the short cut gives."""
    from node.resolver.zone.render import _sets_of, top_of
    from node.resolver.zone.signed import _fit_for_zone, _fit_rules, domain_records
    for i, v in enumerate(VALUES + [{"ip": ["192.0.2.1"], "map": {"*": {"ip": ["192.0.2.2"]}, "": {"txt": ["x"]}}}]):
        name = NAMES[i % len(NAMES)]
        text = v if isinstance(v, str) else json.dumps(v).replace("{n}", name.decode()[2:])
        top = top_of(name.decode())
        sets = {k: r for k, r in _sets_of(domain_records([name.decode()], lambda n: text if n == name.decode()
                                                         else None)).items() if k[0].is_subdomain(top)}
        assert _fit_for_zone(sets, top) == _fit_rules(sets, top), text


def test_a_node_syncing_an_old_chain_is_not_slowed_by_the_timer():
    """Old tip times (signatures born expired) while blocks keep coming: the blocks re-sign
    what they touch, and the timer waits until they stop."""
    from node.resolver.zone.signed import ZONE_VALIDITY
    chain = ModelChain()
    chain.connect({n: value_text(0, n) for n in NAMES})
    clock = Clock(chain.tip.header.time + ZONE_VALIDITY * 3)          # the chain is six weeks old
    timer, serials = timer_for(chain, clock)
    timer.tick()                                                      # the first look may refresh
    first = list(serials)
    for _ in range(3):
        chain.connect({})                                             # a block between looks
        timer.tick()
    assert serials == first
    timer.tick()                                                      # no block since the last look
    assert len(serials) == len(first) + 1 and signatures_valid_at(chain, clock.now)


def test_a_worker_dying_costs_the_build_its_help_not_the_build():
    import os
    from node.resolver.zone.lanes import Lanes
    from support.zone_model import dies_in_a_worker
    lanes = Lanes(KEY, 1, inline=0)
    got = []
    try:
        for i in range(8):
            got += list(lanes.submit(dies_in_a_worker, [i], os.getpid()))
        got += list(lanes.drain())
    finally:
        lanes.close()
    assert got == [[i] for i in range(8)] and lanes.workers == 0
