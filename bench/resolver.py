"""Resolver benchmark: 10,000 registered names served by a real node process.

Builds a regtest chain registering N names (NAME_NEW, 12 blocks, FIRSTUPDATE, all validated
the normal way), starts `dotbit-node` with DNS and HTTP on loopback, and measures in the same
run, each REPEAT times (medians reported):
  - dnsperf against the resolver without DO and with DO (online DNSSEC), qps and p99 latency
  - dnsperf against Unbound serving the same A records as local-data (the reference)
  - signed HTTP answers (/v1/domain, random names) at 50 concurrent keep-alive connections:
    req/s and p99, with wrk if installed (else a lean asyncio client)

    python bench/resolver.py [--names 10000] [--seconds 8] [--repeat 3]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# tests/ after the repository: the chain builder is in tests/support/, shared with the zone tests.
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from support.name_chain import build_chain, ip_of  # noqa: E402
from figures import figure  # noqa: E402  (bench/ is on sys.path when run as a script)


def stop(proc) -> None:
    """SIGTERM a bench's server and wait; SIGKILL if it has not gone within 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_dns(port: int, proc) -> None:
    import dns.message
    import dns.query
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            dns.query.udp(dns.message.make_query("bit.", "SOA"), "127.0.0.1", port=port, timeout=0.5)
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("server did not answer")


def _dnsperf(port: int, qfile: str, do: bool, *extra: str) -> str:
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-c", "4", "-q", "200", "-t", "2",
           *extra] + (["-D"] if do else [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout


def dnsperf(port: int, qfile: str, seconds: float, do: bool) -> dict:
    """Throughput at saturation, then p99 latency in a second run at half that rate (-v
    prints every query's latency but costs dnsperf CPU, so it stays out of the qps run)."""
    out = _dnsperf(port, qfile, do, "-l", str(seconds))
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
    out = _dnsperf(port, qfile, do, "-l", str(max(2.0, seconds / 3)), "-Q", str(int(qps / 2)), "-v")
    lat = sorted(float(m) for m in re.findall(r"^> \S+ .* ([\d.]+)$", out, re.M))
    p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else float("nan")
    return {"qps": qps, "p99_ms": p99, "lost": lost}


def unbound_conf(workdir: str, port: int, names: list[str]) -> str:
    path = os.path.join(workdir, "unbound.conf")
    with open(path, "w") as f:
        f.write(f"""server:
    interface: 127.0.0.1
    port: {port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{workdir}"
    pidfile: ""
    use-syslog: no
    logfile: "{workdir}/unbound.log"
    num-threads: 1
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    local-zone: "bit." static
""")
        for i, label in enumerate(names):
            f.write(f'    local-data: "{label}.bit. 300 IN A {ip_of(i)}"\n')
            f.write(f'    local-data: "www.{label}.bit. 300 IN A {ip_of(i)}"\n')
        f.write("remote-control:\n    control-enable: no\n")
    return path


async def http_load(port: int, paths: list[str], seconds: float, conns: int = 50, each_once: bool = False) -> dict:
    """A lean keep-alive HTTP/1.1 client (the aiohttp client would cost more CPU than the
    server it measures on a small machine)."""
    lat: list[float] = []
    done = 0
    stop_at = time.perf_counter() + seconds
    rng = random.Random(3)

    async def worker():
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        todo = list(paths) if each_once else None
        try:
            while (todo if each_once else time.perf_counter() < stop_at):
                path = todo.pop() if each_once else rng.choice(paths)
                t0 = time.perf_counter()
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                await reader.readexactly(int(m.group(1)))
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(head[:40])
                lat.append(time.perf_counter() - t0)
                done += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    elapsed = time.perf_counter() - t0
    lat.sort()
    return {"rps": done / elapsed, "p99_ms": lat[int(len(lat) * 0.99)] * 1000 if lat else float("nan")}


WRK_SCRIPT = """
local n = %d
request = function()
  return wrk.format("GET", string.format("/v1/domain/name%%05d.bit?type=A", math.random(0, n - 1)))
end
"""


def wrk_load(port: int, n: int, seconds: float, workdir: str, conns: int = 50) -> dict:
    """wrk (C) as the load generator when installed: a Python client would compete with the
    server for the same two cores and measure itself."""
    script = os.path.join(workdir, "paths.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT % n)
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--latency", "-s", script,
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"wrk saw {non2xx.group(1)} error responses")
    return {"rps": rps, "p99_ms": p99}


def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    unbound = shutil.which("unbound") or shutil.which("unbound", path="/usr/sbin:/sbin")
    for tool, found in (("dnsperf", shutil.which("dnsperf")), ("unbound", unbound)):
        if not found:
            print(f"{tool} is not installed (apt-get install dnsperf unbound)", file=sys.stderr)
            return 1
    work = tempfile.mkdtemp(prefix="dotbit-bench-resolver-")
    procs = []
    try:
        t0 = time.perf_counter()
        names = build_chain(os.path.join(work, "node"), args.names)
        print(f"chain built in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        qfile = os.path.join(work, "queries.txt")
        with open(qfile, "w") as f:
            for label in names:
                f.write(f"{label}.bit A\nwww.{label}.bit A\n")
        dport, hport, rport, uport = free_port(), free_port(), free_port(), free_port()
        node = subprocess.Popen([sys.executable, "-m", "node.cli", "--network", "regtest", "--datadir",
                                 os.path.join(work, "node"), "--rpc-port", str(rport), "--dns-port", str(dport),
                                 "--http-port", str(hport), "--log-level", "warning"],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "node.log"), "w"))
        procs.append(node)
        wait_dns(dport, node)
        ub = subprocess.Popen([unbound, "-d", "-c", unbound_conf(work, uport, names)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ub)
        wait_dns(uport, ub)
        # The first pass over every query renders (and signs) each answer once: the cold rate.
        cold = []
        for do in (False, True):
            out = _dnsperf(dport, qfile, do, "-n", "1")
            cold.append({"qps": float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))})
        results = {"resolver": [], "resolver_do": [], "unbound": [], "unbound_do": [], "http": []}
        paths = [f"/v1/domain/{label}.bit?type=A" for label in names]
        t1 = time.perf_counter()
        asyncio.run(http_load(hport, paths, 0, conns=8, each_once=True))
        cold_http = len(paths) / (time.perf_counter() - t1)
        for _ in range(args.repeat):
            # Each figure is for a warm server (rendered answers and signatures cached, as in a
            # long-running resolver between blocks): one pass over the queries comes first.
            for key, port, do in (("resolver", dport, False), ("resolver_do", dport, True),
                                  ("unbound", uport, False), ("unbound_do", uport, True)):
                _dnsperf(port, qfile, do, "-n", "1")
                results[key].append(dnsperf(port, qfile, args.seconds, do))
            asyncio.run(http_load(hport, paths, 0, conns=8, each_once=True))
            if shutil.which("wrk"):
                results["http"].append(wrk_load(hport, len(names), args.seconds, work))
            else:
                results["http"].append(asyncio.run(http_load(hport, paths, args.seconds)))
        ub_qps = med(results["unbound"], "qps")
        print(f"\nresolver benchmark: {args.names} names, {os.cpu_count()} cores, medians of {args.repeat} runs "
              f"of {args.seconds:g}s (dnsperf -c 4 -q 200)")
        print(f"  first pass (cold caches):   no DO {cold[0]['qps']:9.0f} qps   DO {cold[1]['qps']:9.0f} qps   "
              f"HTTP {cold_http:6.0f} req/s")
        for key, label in (("resolver", "dotbit DNS, no DO"), ("resolver_do", "dotbit DNS, DO"),
                           ("unbound", "Unbound local-data, no DO"), ("unbound_do", "Unbound local-data, DO")):
            rs = results[key]
            print(f"  {label:27s} {med(rs, 'qps'):9.0f} qps   p99 {med(rs, 'p99_ms'):7.2f} ms   "
                  f"({med(rs, 'qps') / ub_qps:6.1%} of Unbound no-DO; lost {sum(r['lost'] for r in rs)})")
        h = results["http"]
        print(f"  signed HTTP /v1/domain     {med(h, 'rps'):9.0f} req/s p99 {med(h, 'p99_ms'):7.2f} ms "
              f"(50 connections, {'wrk' if shutil.which('wrk') else 'Python client'})")
        figure("qps", med(results["resolver"], "qps"), "qps", f"dotbit DNS, no DO ({args.names:,} names, dnsperf)")
        figure("qps_ratio", 100 * med(results["resolver"], "qps") / ub_qps, "%", "dotbit no DO / Unbound no DO",
               ">= 50 %")
        figure("qps_do", med(results["resolver_do"], "qps"), "qps", "dotbit DNS, DO (signed)")
        figure("qps_do_ratio", 100 * med(results["resolver_do"], "qps") / ub_qps, "%", "dotbit DO / Unbound no DO",
               ">= 30 %")
        figure("unbound_qps", ub_qps, "qps", "Unbound local-data, no DO, same records")
        figure("http_rps", med(h, "rps"), "req/s", "signed HTTP /v1/domain", ">= 5,000")
        figure("http_p99", med(h, "p99_ms"), "ms", "signed HTTP p99")
        figure("cold_qps", cold[0]["qps"], "qps", "first pass over cold caches, no DO")
        print(f"  targets: no DO >= 50% of Unbound: {med(results['resolver'], 'qps') / ub_qps >= 0.5}; "
              f"DO >= 30%: {med(results['resolver_do'], 'qps') / ub_qps >= 0.3}; "
              f"HTTP >= 5000 req/s: {med(h, 'rps') >= 5000}")
    finally:
        for p in procs:
            stop(p)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
