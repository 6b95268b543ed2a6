"""Crash consistency: SIGKILL real node and wallet processes at random moments, restart them,
and check nothing acknowledged was lost and every projection is still the chain's.

    python bench/crash.py [--trials 50] [--seed S] [--scenarios mining mergemine sync reorg names wallet zone]

Scenarios (tests/support/crash_scenarios.py), taken in turn until --trials are done:
  mining  `generatetoaddress` calls in flight on the node
  sync    a fresh node syncing over p2p from a peer serving a prebuilt 2,000-block chain with a name
  reorg   a longer competing branch fed block by block with `submitblock`, over blocks of its own
  names   a stream of name_new / name_firstupdate / name_update transactions, a block after each
  wallet  `dotbit-wallet name register` killed (the node keeps running)
  zone    a node with DNS and a zone of 4,000 names (2,000 with --small) killed inside the connect
          of a block expiring 1,500 of them, the zone's biggest update (tests/support/crash_zone.py):
          then the zone is the tip's, its serial one above the served one, a secondary follows by
          IXFR to what `zone export` gives, and it equals a zone rebuilt from the chain
After each node kill: the node restarts on what the kill left (timed); `dotbit-node checkdb`
on a copy of it exits 0 (every projection equals a replay of the stored blocks); every block
an RPC call had acknowledged before the kill is in the block store and (unless a longer branch
was fed) on the main chain; and the tip's name_root equals the root of the tree built from the
node's own name records (each also checked against that root with its proof). After each wallet kill: the
file opens with the passphrase, holds the same seed and no fewer keys, every name_new the node
has seen is a pending registration in the file, and that registration then completes.
Every kill must land inside its scenario's work (tests/support/crash.py says how each knows).
Prints per-scenario trials, failures, kills outside work and the median restart time; exits 1
on any failure or kill outside work.
The seed is printed; the same seed gives the same kill delays and operation choices.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
# The repository first: bench/wallet.py must not shadow the wallet package. tests/ (the crash
# engine and scenarios are in tests/support/, shared with the tests) and bench/ after it.
sys.path[:] = [ROOT] + [p for p in sys.path if os.path.abspath(p or ".") not in (HERE, ROOT)] + \
    [os.path.join(ROOT, "tests"), HERE]

from support.crash import run, summary  # noqa: E402
from support.crash_scenarios import SCENARIOS  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--seed", type=int, help="RNG seed (default: random, printed)")
    ap.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    ap.add_argument("--keep", action="store_true", help="keep the data dirs (printed)")
    ap.add_argument("--small", action="store_true", help="a 300-block chain to sync instead of 2,000")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    workdir = tempfile.mkdtemp(prefix="dotbit-crash-")
    print(f"crash: seed {seed}, {args.trials} trials over {', '.join(args.scenarios)}, data in {workdir}", flush=True)
    t0 = time.perf_counter()
    try:
        results = run(args.trials, seed, args.scenarios, workdir, log=lambda s: print(s, flush=True),
                      small=args.small)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    for line in summary(results):
        print(line)
    from figures import figure
    for name in dict.fromkeys(t.scenario for t in results):
        ts = [t for t in results if t.scenario == name]
        restarts = [t.restart_s for t in ts if t.restart_s is not None]
        figure(f"{name}_trials", len(ts), "trials", f"crash trials: {name}")
        figure(f"{name}_failures", sum(not t.ok for t in ts), "failures", f"crash failures: {name}", "0")
        if restarts:
            figure(f"{name}_restart_s", round(statistics.median(restarts), 2), "s",
                   f"median restart after SIGKILL: {name}")
    failures = sum(not t.ok for t in results)
    outside = sum(not t.in_work for t in results)
    print(f"crash: {len(results)} trials, {failures} failures, {outside} kills outside work, "
          f"{time.perf_counter() - t0:.0f} s (seed {seed})")
    return 1 if failures or outside else 0


if __name__ == "__main__":
    sys.exit(main())
