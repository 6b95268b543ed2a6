"""DNS on every core (--dns-workers): dnsperf against the node with 1 and 2 DNS workers and
against Unbound with 1 and 2 threads serving the same A records, without and with DO, cached
and uncached; the signed HTTP API's uncached req/s beside each node run.

  cached    dnsperf loops over the N names and www.N (after a warm-up pass): rendered answers
  uncached  one pass over queries no one asked before, two kinds: random names that do not
            exist ("NXDOMAIN": the random-name flood; with DO an NSEC white lie signed now), and
            existing names in random letter case ("names": a response-cache miss, parsed,
            looked up, rendered; their signatures are cached by content)

Each figure is repeated --repeat times, min/median/max printed; dnsperf's lost queries and
response codes are checked (a SERVFAIL or a loss above 1 % fails the run). The machine is
shared and noisy: read medians and the spread, not single figures.

    python bench/resolver_workers.py [--names 2000] [--seconds 5] [--repeat 3] [--uncached 6000]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from support.name_chain import build_chain  # noqa: E402
from core.envelope import open_envelope  # noqa: E402
from node.resolver.identity import load_or_create  # noqa: E402
from node.resolver.service import default_key_path  # noqa: E402
from figures import figure  # noqa: E402
from resolver import free_port, stop, unbound_conf, wait_dns  # noqa: E402

MAX_LOSS = 0.01


def dnsperf(port: int, qfile: str, do: bool, *limit: str, check: bool = True) -> dict:
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-c", "8", "-q", "300", "-t", "3",
           *limit] + (["-D"] if do else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900).stdout
    sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
    codes = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+) \([\d.]+%\)", out.split("Response codes:")[1]
                                                                                 .split("\n")[0]))
    bad = {k: v for k, v in codes.items() if k not in ("NOERROR", "NXDOMAIN")}
    if check and bad:
        raise RuntimeError(f"dnsperf on port {port}: lost {lost} of {sent}, codes {codes}")
    if check and lost > MAX_LOSS * max(1, sent):
        print(f"  note: port {port} lost {lost} of {sent} queries ({lost / sent:.1%})", file=sys.stderr)
    return {"qps": float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1)), "lost": lost, "sent": sent}


def uncached_queries(path: str, names: list[str], n: int, seed: int, existing: bool) -> str:
    """n never-asked queries: random names that do not exist, or existing names in random case."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for i in range(n):
            if existing:
                label = "".join(c.upper() if rng.random() < 0.5 else c for c in rng.choice(names))
                f.write(f"{label}.bit A\n")
            else:
                f.write(f"u{seed}x{rng.randrange(10**12)}.bit A\n")
    return path


async def http_pass(port: int, paths: list[str], public_key: bytes, conns: int = 16, verify_every: int = 16) -> float:
    """Each path once over `conns` keep-alive connections: req/s. A 200 and a signed 404 both
    count; every response's status line and envelope shape are checked, and one in
    `verify_every` is opened with the resolver's key (signature, body and view), so a server
    answering junk fails the run instead of scoring. Opening every one would make this Python
    client, on the same cores, the thing measured."""
    todo = list(paths)
    done = [0]

    async def one():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while todo:
                writer.write(f"GET {todo.pop()} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                status = head[9:12]
                if not head.startswith(b"HTTP/1.1 ") or status not in (b"200", b"404"):
                    raise RuntimeError(f"HTTP on port {port}: {head[:40]!r}")
                body = await reader.readexactly(int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1)))
                if not (body.startswith(b'{"body":"') and b'"sig":"' in body):
                    raise RuntimeError(f"HTTP on port {port}: not a signed envelope: {body[:60]!r}")
                done[0] += 1
                if done[0] % verify_every == 1:
                    kind = open_envelope(body, public_key)["kind"]
                    if (kind == "error") != (status == b"404"):
                        raise RuntimeError(f"HTTP on port {port}: {status!r} with a {kind!r} envelope")
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(conns)))
    elapsed = time.perf_counter() - t0
    if done[0] != len(paths):
        raise RuntimeError(f"HTTP on port {port}: {done[0]} answers to {len(paths)} requests")
    return len(paths) / elapsed


def uncached_paths(names: list[str], n: int, tag: str) -> list[str]:
    """n paths no one asked before in this node run (the tag is unique per pass; the answer
    cache is per URL): existing names in random case, and random names that do not exist,
    half each (the random-subdomain flood, over HTTP)."""
    rng = random.Random(tag)
    return [f"/v1/domain/h{tag}x{rng.randrange(10**12)}.bit?type=A" if i % 2 else
            f"/v1/domain/{''.join(c.upper() if rng.random() < 0.5 else c for c in rng.choice(names))}.bit"
            f"?type=A&u={tag}-{i}" for i in range(n)]


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):9.0f}  ({min(xs):.0f} .. {max(xs):.0f})"


def start(cmd: list[str], log: str, port: int):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    wait_dns(port, proc)
    return proc


def measure(port: int, qfile: str, names: list[str], work: str, args, tag: str, http_port=None) -> dict:
    """{figure: [per-run values]} for one server."""
    res: dict[str, list[float]] = {}
    for r in range(args.repeat):
        for do in (False, True):
            dnsperf(port, qfile, do, "-n", "1", check=False)         # warm: every answer rendered once
            suffix = "do" if do else "nodo"
            got = dnsperf(port, qfile, do, "-l", str(args.seconds))
            res.setdefault(f"cached_{suffix}", []).append(got["qps"])
            res.setdefault(f"lost_cached_{suffix}", []).append(got["lost"] / max(1, got["sent"]))
            for kind in ("nx", "names"):
                uq = uncached_queries(os.path.join(work, f"uq-{tag}-{r}-{do}-{kind}.txt"), names, args.uncached,
                                      zlib.crc32(f"{tag}/{r}/{do}/{kind}".encode()) & 0xFFFF, kind == "names")
                got = dnsperf(port, uq, do, "-n", "1")
                res.setdefault(f"uncached_{kind}_{suffix}", []).append(got["qps"])
                res.setdefault(f"lost_uncached_{kind}_{suffix}", []).append(got["lost"] / max(1, got["sent"]))
        if http_port is not None:
            key = load_or_create(default_key_path(os.path.join(work, "node"))).public_key
            res.setdefault("http_uncached", []).append(asyncio.run(http_pass(
                http_port, uncached_paths(names, args.uncached // 2, f"{tag}r{r}"), key)))
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--uncached", type=int, default=5000, help="queries in each uncached pass")
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    unbound = shutil.which("unbound") or shutil.which("unbound", path="/usr/sbin:/sbin")
    if not (shutil.which("dnsperf") and unbound):
        print("dnsperf and unbound are needed (apt-get install dnsperf unbound)", file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="dotbit-bench-workers-")
    results: dict[str, dict] = {}
    try:
        names = build_chain(os.path.join(work, "node"), args.names)
        qfile = os.path.join(work, "queries.txt")
        with open(qfile, "w") as f:
            for label in names:
                f.write(f"{label}.bit A\nwww.{label}.bit A\n")
        for workers in (int(w) for w in args.workers.split(",")):
            dport, hport, rport = free_port(), free_port(), free_port()
            node = start([sys.executable, "-m", "node.cli", "--network", "regtest", "--datadir",
                          os.path.join(work, "node"), "--rpc-port", str(rport), "--dns-port", str(dport),
                          "--http-port", str(hport), "--log-level", "warning", "--dns-workers", str(workers)],
                         os.path.join(work, f"node-{workers}.log"), dport)
            try:
                results[f"dotbit, {workers} worker{'s' if workers > 1 else ''}"] = measure(
                    dport, qfile, names, work, args, f"w{workers}", hport)
            finally:
                stop(node)
        for threads in (1, 2):
            uport = free_port()
            path = os.path.join(work, f"unbound-{threads}.conf")
            with open(unbound_conf(work, uport, names)) as src, open(path, "w") as dst:
                # The node's DNS socket has 4 MiB buffers: Unbound gets the same, so neither loses
                # queries to a small default buffer under dnsperf's bursts.
                dst.write(src.read().replace("num-threads: 1", f"num-threads: {threads}\n"
                                             "    so-rcvbuf: 4m\n    so-sndbuf: 4m"))
            ub = start([unbound, "-d", "-c", path], os.path.join(work, f"unbound-{threads}.log"), uport)
            try:
                results[f"Unbound, {threads} thread{'s' if threads > 1 else ''}"] = measure(
                    uport, qfile, names, work, args, f"u{threads}")
            finally:
                stop(ub)
        report(results, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(results: dict, args) -> None:
    print(f"\nDNS workers: {args.names} names, {os.cpu_count()} cores (shared, noisy), load {os.getloadavg()[0]:.1f}; "
          f"median (min .. max) of {args.repeat} runs; dnsperf -c 8 -q 300; uncached = one pass of "
          f"{args.uncached} never-asked queries")
    cols = [("cached_nodo", "cached, no DO"), ("cached_do", "cached, DO"),
            ("uncached_nx_nodo", "uncached NXDOMAIN, no DO"), ("uncached_nx_do", "uncached NXDOMAIN, DO"),
            ("uncached_names_nodo", "uncached names, no DO"), ("uncached_names_do", "uncached names, DO"),
            ("http_uncached", "HTTP uncached req/s")]
    for server, res in results.items():
        print(f"  {server}")
        for key, label in cols:
            if key in res:
                lost = res.get("lost_" + key)
                print(f"    {label:26s} {spread(res[key])}" + (f"   lost max {max(lost):.2%}" if lost else ""))
    for server, res in results.items():
        slug = re.sub(r"[^a-z0-9]+", "_", server.lower()).strip("_")
        for key, label in cols:
            if key in res:
                figure(f"{slug}_{key}", statistics.median(res[key]), "req/s" if key.startswith("http") else "qps",
                       f"{server}, {label}")


if __name__ == "__main__":
    sys.exit(main())
