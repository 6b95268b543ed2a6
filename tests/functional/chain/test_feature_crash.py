"""Crash consistency, the short run of bench/crash.py: real node and wallet processes are
SIGKILLed at seeded random moments inside their work while they mine (on their own or merged), sync from a peer, take a longer competing
branch, process name operations, connect a block that changes thousands of names of the signed
zone, and (the wallet) register a name; after each kill `checkdb` passes, nothing acknowledged
is lost, the tip's name_root is the root of the node's own name records, the zone is the tip's
(serial one up, followed by IXFR, equal to a rebuild), and the wallet file opens, keeps its keys
and completes its pending registration."""
from __future__ import annotations

import time

from support.crash import run, summary
from support.crash_scenarios import SCENARIOS


def test_kill_and_restart_every_scenario(tmp_path):
    t0 = time.perf_counter()
    results = run(len(SCENARIOS), 20261129, list(SCENARIOS), str(tmp_path), log=lambda s: None, small=True)
    assert [t.scenario for t in results] == list(SCENARIOS)
    failures = [(t.scenario, t.problems) for t in results if not t.ok]
    assert not failures, failures
    assert all(t.restart_s is not None for t in results)
    # Every kill landed inside its scenario's work (mid-call, mid-sync, mid-command), and the
    # node scenarios' kills came after blocks were acknowledged.
    outside = [(t.scenario, f"{t.killed_at:.2f} s in", t.note) for t in results if not t.in_work]
    assert not outside, outside
    assert all(t.acked > 0 for t in results if t.scenario in ("mining", "mergemine", "names", "reorg", "sync"))
    print("\n".join(summary(results)), f"\n{time.perf_counter() - t0:.1f} s")
