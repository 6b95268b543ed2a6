"""`make bench`: every benchmark in one run, each printing its own figures (medians).

Builds the shared synthetic chain once (bench/make_chain.py) and hands it to the benchmarks
that replay it. Sizes are the issue targets unless --quick is given. Each bench prints
`FIGURE {json}` lines beside its text (bench/figures.py); they are collected here and, with
--write FILE, fill bench/BENCHMARKS.template.md (prose kept by hand, tables and figures
generated) together with the machine, the Python and the date.

    python bench/run_all.py [--quick] [--only NAME ...] [--write BENCHMARKS.md]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "BENCHMARKS.template.md")
NEEDS_CHAIN = {"validate", "node_memory", "sync"}


def benches(chain_dir: str, quick: bool) -> list[tuple[str, list[str]]]:
    q = (lambda small, full: small if quick else full)
    return [
        ("make_chain", ["--datadir", chain_dir] + q(["--blocks", "400", "--txs", "10000"], [])),
        ("validate", ["--datadir", chain_dir, "--repeat", q("1", "3"), "--par-repeat", q("1", "5")]),
        ("node_memory", ["--datadir", chain_dir]),
        ("mine", ["--seconds", q("1", "3"), "--repeat", q("1", "3")]),
        ("names", ["--names", q("5000", "1000000"), "--samples", q("2000", "20000")]),
        ("sync", ["--datadir", chain_dir, "--repeat", q("1", "5")]),
        ("resolver", q(["--names", "1000", "--seconds", "2", "--repeat", "1"], [])),
        ("resolver_workers", q(["--names", "500", "--seconds", "2", "--repeat", "1", "--uncached", "2000"], [])),
        ("light", q(["--headers", "20000", "--names", "2000", "--repeat", "1", "--seconds", "1"], [])),
        ("zone", q(["--names", "1000", "--repeat", "1"], [])),
        ("secondary", q(["--names", "1000", "--blocks", "2"], [])),
        ("zone_incr", q(["--names", "5000", "--repeat", "1"], ["--names", "100000", "1000000"])),
        ("ca_revoke", q(["--n", "200", "--repeat", "1"], ["--n", "1000", "--repeat", "3"])),
        ("wallet", q(["--repeat", "3"], [])),
        ("mempool", q(["--txs", "2000", "--samples", "500"], [])),
        ("tunnel", q(["--bytes", "5000000", "--repeat", "3", "--opens", "300"], [])),
        ("load", q(["--nodes", "3", "--minutes", "0.5", "--mine-interval", "1"], [])),
        ("crash", q(["--trials", "10", "--small"], [])),
        ("fuzz", ["--target", "all"] + q(["--runs", "20000"], [])),
    ]


# --- the machine ------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine() -> dict:
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
            mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": f"{platform.python_implementation()} "
            f"{platform.python_version()}", "os": platform.platform(terse=True), "mem": mem}


# --- running ------------------------------------------------------------------------------------

def run_bench(script: str, extra: list[str]) -> tuple[int, list[dict]]:
    """Run one bench, passing its text through and keeping its FIGURE lines."""
    figures = []
    proc = subprocess.Popen([sys.executable, script, *extra], stdout=subprocess.PIPE, text=True, bufsize=1)
    for line in proc.stdout:
        if line.startswith("FIGURE "):
            try:
                figures.append(json.loads(line[7:]))
            except ValueError:
                print(f"(unreadable figure line: {line.strip()[:100]})", flush=True)
            continue
        print(line, end="", flush=True)
    return proc.wait(), figures


# --- the report ---------------------------------------------------------------------------------

def fmt(value: float) -> str:
    if isinstance(value, int):           # counts (trials, failures, runs) stay whole
        return f"{value:,}"
    a = abs(value)
    if a >= 100:
        return f"{value:,.0f}"
    if a >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if a >= 0.1 else f"{value:.3g}"


def table(figs: list[dict]) -> str:
    rows = ["| what | figure | target |", "|---|---|---|"]
    for f in figs:
        rows.append(f"| {f['label']} | **{fmt(f['value'])} {f['unit']}** | {f.get('target', '')} |")
    return "\n".join(rows)


def render(template: str, results: dict, info: dict) -> str:
    """{{date}} {{machine}} {{mode}}; {{table BENCH...}}: their figures as a table; {{fig BENCH.NAME}}:
    one value with its unit. What this run did not measure says so instead of keeping an old
    number."""
    def sub(m):
        word, _, arg = m.group(1).partition(" ")
        if word in info:
            return str(info[word])
        if word == "table":              # {{table a b}}: one table for several benches
            figs = [f for bench in arg.split() for f in results.get(bench, ())]
            missing = [bench for bench in arg.split() if not results.get(bench)]
            note = f"_Not run in this pass: {', '.join(f'`{b}`' for b in missing)}._" if missing else ""
            return "\n\n".join(part for part in (table(figs) if figs else "", note) if part)
        if word == "fig":
            bench, _, name = arg.partition(".")
            for f in results.get(bench, ()):
                if f["name"] == name:
                    return f"{fmt(f['value'])} {f['unit']}"
            return "(not measured)"
        return m.group(0)
    return re.sub(r"\{\{([^{}]+)\}\}", sub, template)


def keep_results(path: str, results: dict, seconds: dict, dates: dict):
    """Merge this pass into the kept results (this pass wins) and save them atomically."""
    try:
        with open(path) as f:
            kept = json.load(f)
    except (OSError, ValueError):
        kept = {}
    for name, figs in results.items():
        kept[name] = {"figures": figs, "seconds": seconds.get(name, 0), "date": dates[name]}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(kept, f, indent=1)
    os.replace(tmp, path)
    return ({k: v["figures"] for k, v in kept.items()}, {k: v["seconds"] for k, v in kept.items()},
            {k: v["date"] for k, v in kept.items()})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run (minutes, not hours)")
    ap.add_argument("--only", nargs="*", help="run only these benchmarks")
    ap.add_argument("--write", metavar="FILE", help="fill bench/BENCHMARKS.template.md into FILE")
    ap.add_argument("--template", default=TEMPLATE, help=argparse.SUPPRESS)
    ap.add_argument("--results", metavar="FILE",
                    help="keep every bench's figures here (JSON): a later --only run replaces just its "
                         "benches, and --write still shows the others, each with the date it was measured")
    args = ap.parse_args()
    if args.quick and args.results:
        ap.error("--results keeps full-size figures; a --quick pass would mix smoke figures into them")
    m = machine()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = load_average()
    print(f"# {started}, {m['python']}, {m['cores']} cores, {m['cpu']}, load {load_before}")
    tmp = tempfile.mkdtemp(prefix="dotbit-bench-")
    chain_dir = os.path.join(tmp, "chain")
    failed, results, seconds, dates = [], {}, {}, {}
    try:
        for name, extra in benches(chain_dir, args.quick):
            if args.only and name not in args.only and not (name == "make_chain" and NEEDS_CHAIN & set(args.only)):
                continue
            script = os.path.join(HERE, f"{name}.py")
            if not os.path.exists(script):
                print(f"\n## {name}: no bench/{name}.py yet")
                continue
            print(f"\n## {name}", flush=True)
            t0 = time.monotonic()
            rc, figs = run_bench(script, extra)
            seconds[name] = time.monotonic() - t0
            results[name] = figs
            dates[name] = started
            print(f"({name}: {seconds[name]:.0f}s, exit {rc})", flush=True)
            if rc:
                failed.append(name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n## figures")
    for name, figs in results.items():
        for f in figs:
            print(f"{name + '.' + f['name']:<32} {fmt(f['value']):>10} {f['unit']:<10} {f['label']}")
    if args.results:
        results, seconds, dates = keep_results(args.results, results, seconds, dates)
    if args.write:
        passes = sorted(set(dates.values()) or {started})
        info = {"date": passes[0] if len(passes) == 1 else
                f"{len(passes)} passes from {passes[0]} to {passes[-1]} (each bench's pass below)",
                "mode": "quick (small sizes: a smoke run, not the targets' sizes)"
                if args.quick else "full (the issues' sizes)",
                "machine": f"{m['cpu']}, {m['cores']} cores{m['mem']}, {m['python']}, {m['os']}; "
                           f"load average {load_before} before the run, {load_average()} after",
                "durations": "; ".join((f"pass of {p}: " if len(passes) > 1 else "") +
                                       ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items() if dates.get(k, started) == p)
                                       for p in passes)}
        with open(args.template) as f:
            text = render(f.read(), results, info)
        tmp_out = args.write + ".tmp"
        with open(tmp_out, "w") as f:
            f.write(text)
        os.replace(tmp_out, args.write)
        print(f"\nwrote {args.write}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
