"""DNS on every core (--dns-workers): dnsperf against the node with 1 and 2 DNS workers and
against Unbound with 1 and 2 threads serving the same A records, without and with DO, cached
and uncached; the signed HTTP API's uncached req/s beside each node run (bench/http_load.py's pass: wrk when
installed, its responses checked and a sample verified with the light client).

  cached    dnsperf loops over the N names and www.N (after three warm-up passes): rendered answers
  uncached  one pass over queries no one asked before, two kinds: random names that do not
            exist ("NXDOMAIN": the random-name flood; with DO an NSEC white lie signed now), and
            existing names ("names"): each query a distinct registered name that no query of
            the server's run has asked before (the chain holds N + 2 x uncached names for it,
            and every run starts its server afresh), so neither a response cache nor a signature cache can serve it: the name
            is read through the node, its records rendered and, with DO, signed per answer

Each figure is repeated --repeat times (the servers taking turns, each run with a server started
for it), min/median/max printed; dnsperf's lost queries and
response codes are checked (NXDOMAIN passes must answer NXDOMAIN only, names passes NOERROR
only; a loss above 1 % is noted), and after each DO pass a sample of its answers is fetched
again and its RRSIGs validated against the server's DNSKEY. Each uncached pass also reports the
CPU per query of the server (the node and its workers, from /proc) and of dnsperf, and the rate
two quiet cores would bound (2 s of CPU a second over that sum): a shared machine inflates the
CPU figures too, but far less than it swings the wall-clock rates. The machine is shared and
noisy: read medians and the spread, not single figures.

    python bench/resolver_workers.py [--names 2000] [--seconds 5] [--repeat 3] [--uncached 15000]
"""
from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from core.params import REGTEST  # noqa: E402
from support.name_chain import PER_BLOCK, build_chain  # noqa: E402
from node.resolver.identity import load_or_create  # noqa: E402
from node.resolver.service import default_key_path  # noqa: E402
from figures import figure  # noqa: E402
from resolver import free_port, stop, unbound_conf, wait_dns  # noqa: E402
import http_load  # noqa: E402

MAX_LOSS = 0.01
# Regtest names expire 30 blocks after registration and the builder registers PER_BLOCK a block:
# more names than this and the first ones would be gone at the tip.
MAX_NAMES = PER_BLOCK * (REGTEST.expiry_depth - 4)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children (a node's DNS workers), from /proc:
    robust to a shared machine, where wall-clock rates swing with the neighbours' load."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        kids = []
    for p in [pid, *kids]:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def dnsperf(port: int, qfile: str, do: bool, *limit: str, check: bool = True, expect=("NOERROR", "NXDOMAIN")) -> dict:
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-c", "8", "-q", "300", "-t", "3",
           *limit] + (["-D"] if do else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
    codes = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+) \([\d.]+%\)", out.split("Response codes:")[1]
                                                                                 .split("\n")[0]))
    bad = {k: v for k, v in codes.items() if k not in expect}
    if check and bad:
        raise RuntimeError(f"dnsperf on port {port}: lost {lost} of {sent}, codes {codes}, expected only {expect}")
    if check and lost > MAX_LOSS * max(1, sent):
        print(f"  note: port {port} lost {lost} of {sent} queries ({lost / sent:.1%})", file=sys.stderr)
    return {"qps": float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1)), "lost": lost, "sent": sent,
            "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime}      # dnsperf's own


def nx_queries(path: str, n: int, seed: int) -> str:
    """n random names that do not exist, never asked before."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            f.write(f"u{seed}x{rng.randrange(10**12)}.bit A\n")
    return path


def name_queries(path: str, fresh: list[str], n: int) -> tuple[str, list[str]]:
    """n existing names taken off `fresh` (so no query of this server's run repeats one)."""
    if len(fresh) < n:
        raise RuntimeError(f"only {len(fresh)} unasked names left for an uncached pass of {n}")
    picked = [fresh.pop() for _ in range(n)]
    with open(path, "w") as f:
        f.writelines(f"{label}.bit A\n" for label in picked)
    return path, picked


def check_signed(port: int, labels: list[str], sample: int = 20) -> None:
    """A sample of a DO pass's answers asked again, their RRSIGs validated with the DNSKEY (Unbound
    serves unsigned local data: there the answer is only checked to hold the A record)."""
    import dns.dnssec
    import dns.message
    import dns.query
    import dns.rdatatype
    key = dns.query.udp(dns.message.make_query("bit.", "DNSKEY", want_dnssec=True), "127.0.0.1", port=port,
                        timeout=2).answer
    keys = {k.name: k for k in key if k.rdtype == dns.rdatatype.DNSKEY}
    for label in random.Random(len(labels)).sample(labels, min(sample, len(labels))):
        got = dns.query.udp(dns.message.make_query(f"{label}.bit.", "A", want_dnssec=True), "127.0.0.1",
                            port=port, timeout=2).answer
        data = [r for r in got if r.rdtype == dns.rdatatype.A]
        sigs = [r for r in got if r.rdtype == dns.rdatatype.RRSIG]
        if len(data) != 1 or keys and len(sigs) != 1:
            raise RuntimeError(f"port {port}: {label}.bit. answered {[r.to_text() for r in got]}")
        if keys:
            dns.dnssec.validate(data[0], sigs[0], keys)


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):9.0f}  ({min(xs):.0f} .. {max(xs):.0f})"


def start(cmd: list[str], log: str, port: int):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    try:
        wait_dns(port, proc)
    except RuntimeError:
        stop(proc)
        with open(log) as f:
            sys.stderr.write(f.read()[-2000:])
        raise
    return proc


def measure(res: dict, r: int, port: int, qfile: str, names: list[str], fresh: list[str], work: str, args,
            tag: str, http_port=None, pid=None) -> None:
    """Run r of one server, its figures appended to res ({figure: [per-run values]}): a server
    started for this run alone (its caches empty); `fresh`: registered names no one asked yet.
    With `pid` (the server's process), each uncached pass also records the CPU per query of
    the server (its workers included) and of dnsperf."""
    fresh = list(fresh)
    for do in (False, True):
        # Warm: every answer rendered. Workers keep their own caches and get datagrams at random, so
        # one pass leaves each worker about half of them; after three, about 7/8 (Unbound serves its
        # local data without a cache: the same passes change nothing there).
        dnsperf(port, qfile, do, "-n", "3", check=False)
        suffix = "do" if do else "nodo"
        got = dnsperf(port, qfile, do, "-l", str(args.seconds))
        res.setdefault(f"cached_{suffix}", []).append(got["qps"])
        res.setdefault(f"lost_cached_{suffix}", []).append(got["lost"] / max(1, got["sent"]))
        for kind in ("nx", "names"):
            path = os.path.join(work, f"uq-{tag}-{r}-{do}-{kind}.txt")
            server_cpu = cpu_seconds(pid) if pid else 0.0
            if kind == "nx":
                uq = nx_queries(path, args.uncached, zlib.crc32(f"{tag}/{r}/{do}".encode()) & 0xFFFF)
                got = dnsperf(port, uq, do, "-n", "1", expect=("NXDOMAIN",))
            else:
                uq, picked = name_queries(path, fresh, args.uncached)
                got = dnsperf(port, uq, do, "-n", "1", expect=("NOERROR",))
            server_cpu = cpu_seconds(pid) - server_cpu if pid else 0.0
            if kind == "names" and do:
                check_signed(port, picked)
            res.setdefault(f"uncached_{kind}_{suffix}", []).append(got["qps"])
            if pid:
                per = 1e6 / max(1, got["sent"])
                res.setdefault(f"cpu_uncached_{kind}_{suffix}", []).append((server_cpu * per, got["cpu"] * per))
            res.setdefault(f"lost_uncached_{kind}_{suffix}", []).append(got["lost"] / max(1, got["sent"]))
    if http_port is not None:
        key = load_or_create(default_key_path(args.datadir)).public_key
        names_file = os.path.join(work, "http-names.txt")
        with open(names_file, "w") as f:
            f.write("\n".join(names) + "\n")
        client = "wrk" if shutil.which("wrk") else "python"
        got = http_load.measured_pass(http_port, pid, names, names_file, key, f"{tag}r{r}", client, 5)
        res.setdefault("http_uncached", []).append(got["rps"])
        res.setdefault("http_client", []).append(client)


def chain(where: str, n: int) -> list[str]:
    """The names of a chain of at least n names in `where`, built there unless one is already."""
    listing = os.path.join(where, "names.txt")
    if os.path.exists(listing):
        with open(listing) as f:
            names = f.read().split()
        if len(names) >= n:
            return names
        shutil.rmtree(where)
    os.makedirs(where, exist_ok=True)
    names = build_chain(os.path.join(where, "node"), n)
    with open(listing, "w") as f:
        f.write("\n".join(names))
    return names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--uncached", type=int, default=15000, help="queries in each uncached pass")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--chain", help="keep the built chain in this directory and reuse it next time (it is "
                                    "only read: a server run leaves its names as they were)")
    args = ap.parse_args()
    total = args.names + 2 * args.uncached
    if total > MAX_NAMES:
        print(f"{total} names needed (--names + 2 x --uncached); regtest's expiry keeps at most "
              f"{MAX_NAMES} alive", file=sys.stderr)
        return 2
    unbound = shutil.which("unbound") or shutil.which("unbound", path="/usr/sbin:/sbin")
    if not (shutil.which("dnsperf") and unbound):
        print("dnsperf and unbound are needed (apt-get install dnsperf unbound)", file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="dotbit-bench-workers-")
    results: dict[str, dict] = {}
    try:
        every = chain(args.chain or os.path.join(work, "chain"), total)
        names, fresh = every[:args.names], every[args.names:total]
        datadir = args.datadir = os.path.join(args.chain or os.path.join(work, "chain"), "node")
        qfile = os.path.join(work, "queries.txt")
        with open(qfile, "w") as f:
            for label in names:
                f.write(f"{label}.bit A\nwww.{label}.bit A\n")
        # Each run starts its server afresh, so every run's uncached passes find empty caches and
        # can use all the fresh names; the servers alternate run by run (load drifts over minutes).
        for r in range(args.repeat):
            for workers in (int(w) for w in args.workers.split(",")):
                dport, hport, rport = free_port(), free_port(), free_port()
                node = start([sys.executable, "-m", "node.cli", "--network", "regtest", "--datadir",
                              datadir, "--rpc-port", str(rport), "--dns-port", str(dport), "--http-port",
                              str(hport), "--log-level", "warning", "--dns-workers", str(workers), "--no-listen"],
                             os.path.join(work, f"node-{workers}-{r}.log"), dport)
                try:
                    measure(results.setdefault(f"dotbit, {workers} worker{'s' if workers > 1 else ''}", {}), r,
                            dport, qfile, names, fresh, work, args, f"w{workers}", hport, pid=node.pid)
                finally:
                    stop(node)
            for threads in (1, 2):
                uport = free_port()
                path = os.path.join(work, f"unbound-{threads}.conf")
                with open(unbound_conf(work, uport, every)) as src, open(path, "w") as dst:
                    # The node's DNS socket has 4 MiB buffers: Unbound gets the same, so neither loses
                    # queries to a small default buffer under dnsperf's bursts.
                    dst.write(src.read().replace("num-threads: 1", f"num-threads: {threads}\n"
                                                 "    so-rcvbuf: 4m\n    so-sndbuf: 4m"))
                ub = start([unbound, "-d", "-c", path], os.path.join(work, f"unbound-{threads}-{r}.log"), uport)
                try:
                    measure(results.setdefault(f"Unbound, {threads} thread{'s' if threads > 1 else ''}", {}), r,
                            uport, qfile, names, fresh, work, args, f"u{threads}", pid=ub.pid)
                finally:
                    stop(ub)
        report(results, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def cpu_line(runs: list) -> str:
    """The CPU per query of a pass (medians over the runs): what bounds its rate on quiet cores."""
    server = statistics.median(s for s, _ in runs)
    client = statistics.median(c for _, c in runs)
    total = server + client
    return (f"CPU per query: server {server:.0f} us + dnsperf {client:.0f} us = {total:.0f} us "
            f"(2 quiet cores: at most ~{2e6 / max(total, 1):.0f} qps)")


def report(results: dict, args) -> None:
    print(f"\nDNS workers: {args.names} names cached, {os.cpu_count()} cores (shared, noisy), load "
          f"{os.getloadavg()[0]:.1f}; median (min .. max) of {args.repeat} runs; dnsperf -c 8 -q 300; uncached = "
          f"one pass of {args.uncached} never-asked queries, the names passes each over {args.uncached} distinct "
          f"registered names no query of that server's run asked before; each run starts its server afresh "
          f"({args.names + 2 * args.uncached} names on the chain)")
    cols = [("cached_nodo", "cached, no DO"), ("cached_do", "cached, DO"),
            ("uncached_nx_nodo", "uncached NXDOMAIN, no DO"), ("uncached_nx_do", "uncached NXDOMAIN, DO"),
            ("uncached_names_nodo", "uncached distinct names, no DO"),
            ("uncached_names_do", "uncached distinct names, DO"),
            ("http_uncached", "HTTP uncached req/s")]
    clients = {c for res in results.values() for c in res.get("http_client", ())}
    for server, res in results.items():
        print(f"  {server}")
        for key, label in cols:
            if key in res:
                lost = res.get("lost_" + key)
                print(f"    {label:32s} {spread(res[key])}" + (f"   lost max {max(lost):.2%}" if lost else "")
                      + (f"   client {'/'.join(sorted(clients))}" if key == "http_uncached" else ""))
                if "cpu_" + key in res:
                    print("      " + cpu_line(res["cpu_" + key]))
    for server, res in results.items():
        slug = re.sub(r"[^a-z0-9]+", "_", server.lower()).strip("_")
        for key, label in cols:
            if key in res:
                figure(f"{slug}_{key}", statistics.median(res[key]), "req/s" if key.startswith("http") else "qps",
                       f"{server}, {label}")


if __name__ == "__main__":
    sys.exit(main())
