"""Fuzz one parser: the targets and their contracts are in tests/support/fuzz_targets.py.

    python bench/fuzz.py --target T [--runs 1000000] [--seed S] [--engine atheris|mutate]
    python bench/fuzz.py --target all ...                # every target in turn
    python bench/fuzz.py --list
    python bench/fuzz.py --target T --repro FILE...      # run saved inputs once, show the error

Engines: `atheris` (coverage-guided libFuzzer, `pip install -e '.[fuzz]'`) when it imports,
else `mutate`, a seeded mutation fuzzer of our own: byte flips, interesting values (msgpack
and DNS markers, boundaries), inserts, deletes, duplications, deep nesting (msgpack and
JSON arrays hundreds deep, which libFuzzer rarely builds) and splices of the target's
valid corpus, keeping every input that ends in a new outcome (exception type and reason) as a
new parent. Either way each input goes through `fuzz_targets.check`, a contract violation is
a finding: it is saved (first input per exception type and raising line) under --findings
and the run goes on. Prints execs/s, the number of runs and the findings, and exits 1 if any.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import random
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
# The repository first (bench/wallet.py must not shadow the wallet package), then tests/ (the
# targets and the mutator are in tests/support/, shared with the tests), bench/ last.
sys.path[:] = [ROOT] + [p for p in sys.path if os.path.abspath(p or ".") not in (HERE, ROOT)] + \
    [os.path.join(ROOT, "tests"), HERE]

from support.fuzz_mutate import mutate  # noqa: E402

class Findings:
    def __init__(self, target: str, directory: str):
        self.target = target
        self.dir = directory
        self.seen: dict[tuple, int] = {}

    @staticmethod
    def key(exc: BaseException) -> tuple:
        tb = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in tb if "/node/" in f.filename or "/p2p/" in f.filename or "/wallet/" in f.filename]
        frame = (ours or tb or [None])[-1]
        where = f"{os.path.basename(frame.filename)}:{frame.lineno}" if frame else "?"
        return type(exc).__name__, where

    def add(self, data: bytes, exc: BaseException) -> None:
        k = self.key(exc)
        self.seen[k] = self.seen.get(k, 0) + 1
        if self.seen[k] > 1:
            return
        os.makedirs(self.dir, exist_ok=True)
        path = os.path.join(self.dir, f"{k[0]}-{k[1].replace(':', '_')}-{hashlib.sha256(data).hexdigest()[:12]}.bin")
        with open(path, "wb") as f:
            f.write(data)
        print(f"FINDING {self.target}: {k[0]} at {k[1]}: {str(exc)[:200]!r}\n  input ({len(data)} bytes) "
              f"saved to {path}\n  {data[:120].hex()}", flush=True)
        traceback.print_exception(exc, limit=-4, file=sys.stdout)

    def summary(self) -> str:
        if not self.seen:
            return "0 findings"
        return f"{len(self.seen)} distinct findings: " + ", ".join(f"{t} at {w} (x{n})" for (t, w), n in self.seen.items())


class Stats:
    def __init__(self, target: str, runs: int, engine: str, seed: int):
        self.target, self.runs, self.engine, self.seed = target, runs, engine, seed
        self.count = 0
        self.start = time.perf_counter()
        self.next_report = 1 << 14

    def tick(self) -> None:
        self.count += 1
        if self.count >= self.next_report:
            self.next_report <<= 1
            print(f"  {self.target}: {self.count} runs, {self.rate():,.0f} execs/s", flush=True)

    def rate(self) -> float:
        return self.count / max(time.perf_counter() - self.start, 1e-9)

    def figures(self, findings: Findings) -> None:
        from figures import figure
        t = self.target
        figure(f"{t}_execs", round(self.rate()), "execs/s", f"fuzz {t} ({self.engine})")
        figure(f"{t}_runs", self.count, "runs", f"fuzz {t} runs")
        figure(f"{t}_findings", len(findings.seen), "findings", f"fuzz {t} distinct findings", "0")

    def line(self, findings: Findings) -> str:
        return (f"fuzz {self.target}: engine {self.engine}, seed {self.seed}, {self.count} runs in "
                f"{time.perf_counter() - self.start:.1f} s, {self.rate():,.0f} execs/s, {findings.summary()}")


def run_mutate(target, runs: int, seed: int, findings: Findings, stats: Stats) -> None:
    from support.fuzz_targets import check
    rng = random.Random(seed)
    parents = list(target.seeds())
    outcomes: set = set()
    for s in parents:
        e = check(target, s)
        stats.tick()
        if e is not None:
            findings.add(s, e)
    while stats.count < runs:
        data = mutate(rng, parents)
        try:
            target.run(data)
            outcome = None
        except target.allowed as e:
            outcome = (type(e).__name__, str(e)[:24])
        except Exception as e:          # noqa: BLE001 - a contract violation
            findings.add(data, e)
            outcome = ("finding",) + Findings.key(e)
        stats.tick()
        if outcome not in outcomes and len(parents) < 5000 and len(data) <= 1 << 16:
            outcomes.add(outcome)
            parents.append(data)


def run_atheris(target_name: str, runs: int, seed: int, findings: Findings, stats: Stats, max_len: int) -> None:
    import atheris
    # core/ holds the parsers that moved out of node/ (issue 13), so it is instrumented too.
    with atheris.instrument_imports(include=["core", "node", "p2p", "support.fuzz_targets"]):
        from support import fuzz_targets
    target = fuzz_targets.TARGETS.get(target_name)
    if target is None:
        print(f"fuzz.py: unknown target {target_name!r}; one of {', '.join(fuzz_targets.TARGETS)}", file=sys.stderr)
        os._exit(2)
    corpus = tempfile.mkdtemp(prefix=f"dotbit-fuzz-{target_name}-")
    for i, s in enumerate(target.seeds()):
        with open(os.path.join(corpus, f"seed-{i}"), "wb") as f:
            f.write(s)

    def one(data: bytes) -> None:
        e = fuzz_targets.check(target, data)
        if e is not None:
            findings.add(data, e)
        stats.tick()
        if stats.count >= runs:
            print(stats.line(findings), flush=True)
            stats.figures(findings)
            import shutil
            shutil.rmtree(corpus, ignore_errors=True)
            os._exit(1 if findings.seen else 0)

    atheris.Setup([sys.argv[0], f"-seed={seed}", f"-max_len={max_len}", "-rss_limit_mb=3072",
                   "-print_final_stats=0", f"-runs={runs * 2}", corpus], one)
    atheris.Fuzz()


def run_all_targets(args, seed: int) -> int:
    """Every target in turn, each in its own process (libFuzzer ends the process it runs in)."""
    import subprocess
    from support.fuzz_targets import TARGETS
    worst = 0
    for name in TARGETS:
        cmd = [sys.executable, os.path.abspath(__file__), "--target", name, "--runs", str(args.runs),
               "--seed", str(seed), "--engine", args.engine, "--max-len", str(args.max_len)]
        if args.findings:
            cmd += ["--findings", os.path.join(args.findings, name)]
        worst = max(worst, subprocess.call(cmd))
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", help="what to fuzz (see --list), or all")
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, help="RNG seed (default: random, printed)")
    ap.add_argument("--engine", choices=["auto", "atheris", "mutate"], default="auto")
    ap.add_argument("--max-len", type=int, default=8192, help="atheris: longest input")
    ap.add_argument("--findings", help="where findings go (default bench/fuzz-findings/TARGET)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--repro", nargs="*", help="run these saved inputs once each")
    args = ap.parse_args()
    import logging
    # The code under test logs what it catches (tracebacks included); a finding is reported
    # here instead, so the node's own log lines stay out of the fuzzer's output.
    logging.getLogger("dotbit").addHandler(logging.NullHandler())
    logging.getLogger("dotbit").propagate = False
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if importlib.util.find_spec("atheris") is not None else "mutate"
    if args.target == "all":
        return run_all_targets(args, seed)
    if engine == "atheris" and args.target and not args.list and args.repro is None:
        target = None          # imported under instrumentation in run_atheris, not before
    else:
        from support.fuzz_targets import TARGETS, check
        if args.list or not args.target:
            print("targets:", " ".join(TARGETS))
            return 0 if args.list else 2
        if args.target not in TARGETS:
            print(f"fuzz.py: unknown target {args.target!r}; one of {', '.join(TARGETS)}", file=sys.stderr)
            return 2
        target = TARGETS[args.target]
    if args.repro is not None:
        bad = 0
        for path in args.repro:
            with open(path, "rb") as f:
                e = check(target, f.read())
            print(f"{path}: {'ok' if e is None else ''.join(traceback.format_exception(e, limit=-6))}")
            bad += e is not None
        return 1 if bad else 0
    findings = Findings(args.target, args.findings or os.path.join(HERE, "fuzz-findings", args.target))
    stats = Stats(args.target, args.runs, engine, seed)
    print(f"fuzz {args.target}: engine {engine}, seed {seed}, {args.runs} runs", flush=True)
    if engine == "atheris":
        run_atheris(args.target, args.runs, seed, findings, stats, args.max_len)
    else:
        run_mutate(target, args.runs, seed, findings, stats)
    print(stats.line(findings), flush=True)
    stats.figures(findings)
    return 1 if findings.seen else 0


if __name__ == "__main__":
    sys.exit(main())
