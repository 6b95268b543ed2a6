"""The signed HTTP API, uncached, on the DNS workers (--dns-workers N): req/s, and the CPU every
process spends per request (node, each worker, the load client), which a shared machine cannot
skew the way it skews req/s.

Uncached means every answer is proved, rendered and signed: each request is a /v1/domain URL
no one asked before (the answer cache is per URL), half of them existing names in random case
with a unique parameter, half random names that do not exist (the random-subdomain flood).
Each run starts the node afresh. The load client is wrk (C, with bench/http_uncached.lua) when
installed, else a Python asyncio client (which then costs more CPU than the server: read its
figures as a floor); the output says which ran. Checked, not assumed:
  - every response is a 200 or a 404 and shaped as a signed JSON envelope (wrk's Lua counts
    them; the Python client checks each), existing names 200 and absent names 404 in equal
    numbers;
  - every request is answered (but for at most one a connection cut off by the end of the pass);
  - after each pass a sample of fresh URLs is fetched on new connections (both workers) and
    opened and verified with the light client (open_answer, verify_answer: signature, question,
    tip against the headers, name-tree proofs, records recomputed from them).
Medians with min .. max over --repeat runs. CPU per request: utime + stime from /proc of the
node and its workers over the pass, and of the client; "2 quiet cores" = 2 s of CPU a second
over the total, an upper bound that ignores scheduling.

    python bench/http_load.py --chain DIR [--workers 2] [--repeat 3] [--seconds 8] [--client auto]

DIR is a chain made by bench/resolver_workers.py --chain DIR (names.txt and node/).
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from core.envelope import open_envelope  # noqa: E402
from core.params import REGTEST  # noqa: E402
from light.verify import open_answer, verify_answer  # noqa: E402
from node.resolver.identity import load_or_create  # noqa: E402
from node.resolver.service import default_key_path  # noqa: E402
from figures import figure  # noqa: E402
from resolver import free_port, stop, wait_dns  # noqa: E402

LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "http_uncached.lua")
TICK = os.sysconf("SC_CLK_TCK")
SAMPLE = 40             # fresh URLs verified with the light client after each pass


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (its threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


def run_wrk(port: int, names_file: str, seconds: float, tag: str, threads: int, conns: int) -> dict:
    """One wrk pass of `seconds`: every request a URL never asked before (http_uncached.lua)."""
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds:g}s", "-s", LUA, f"http://127.0.0.1:{port}", "--",
           names_file, tag]
    t0, ch0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120).stdout
    ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"HTTPLOAD sent=(\d+) got=(\d+) ok=(\d+) missing=(\d+) bad=(\d+) junk=(\d+)", out)
    if not m:
        raise RuntimeError(f"wrk gave no counts:\n{out[-2000:]}")
    sent, got, ok, missing, bad, junk = map(int, m.groups())
    if bad or junk:
        raise RuntimeError(f"wrk: {bad} responses neither 200 nor 404, {junk} not signed envelopes")
    # At most one request a connection is cut off by the end of the pass, and wrk makes one
    # more per thread than it sends.
    if sent - got > conns + threads:
        raise RuntimeError(f"wrk: {got} answers to {sent} requests")
    if abs(ok - missing) > conns + threads:
        raise RuntimeError(f"wrk: {ok} found and {missing} not found; the requests were half each")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"rps": rps, "answered": got, "sent": sent, "wall": time.perf_counter() - t0,
            "client_cpu": (ch1.ru_utime + ch1.ru_stime) - (ch0.ru_utime + ch0.ru_stime)}


async def _python_pass(port: int, names: list[str], tag: str, seconds: float, conns: int) -> int:
    rng, done, deadline = random.Random(tag), [0], time.perf_counter() + seconds

    async def one(c: int):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            i = 0
            while time.perf_counter() < deadline:
                i += 1
                if i % 2:
                    label = "".join(ch.upper() if rng.random() < 0.5 else ch for ch in rng.choice(names))
                    path, want = f"/v1/domain/{label}.bit?type=A&u={tag}-{c}-{i}", b"200"
                else:
                    path, want = f"/v1/domain/h{tag}t{c}x{i}.bit?type=A", b"404"
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 " + want):
                    raise RuntimeError(f"HTTP {path}: {head[:40]!r}, wanted {want!r}")
                body = await reader.readexactly(int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1)))
                if not (body.startswith(b'{"body":"') and b'"sig":"' in body):
                    raise RuntimeError(f"HTTP {path}: not a signed envelope: {body[:60]!r}")
                done[0] += 1
        finally:
            writer.close()

    await asyncio.gather(*(one(c) for c in range(conns)))
    return done[0]


def run_python(port: int, names: list[str], seconds: float, tag: str, conns: int) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    got = asyncio.run(_python_pass(port, names, tag, seconds, conns))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"rps": got / wall, "answered": got, "sent": got, "wall": wall, "client_cpu": cpu}


def fetch(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def verify_sample(port: int, names: list[str], public_key: bytes, tag: str) -> None:
    """SAMPLE fresh URLs, each on a new connection, opened and verified as a light client does."""
    raw = open_envelope(fetch(port, "/v1/headers?from=0&count=2000")[1], public_key)["answer"]["headers"]
    rng = random.Random(tag)
    for i in range(SAMPLE):
        exists = i % 2 == 0
        label = rng.choice(names) if exists else f"v{tag}x{i}"
        status, data = fetch(port, f"/v1/domain/{label}.bit?type=A&u=verify-{tag}-{i}")
        body = open_answer(data, public_key, f"{label}.bit.", "A", time.time())
        got = verify_answer(body, lambda h: raw[h], len(raw) - 1, REGTEST, time.time())
        want = ("NOERROR", 200) if exists else ("NXDOMAIN", 404)
        if (got.status, status) != want or exists and not got.records:
            raise RuntimeError(f"sample {label}.bit: {status} {got.status} {got.records}, wanted {want}")


def wait_http(port: int, proc) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError("the node exited")
        try:
            if fetch(port, "/v1/resolver")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the HTTP API did not answer")


def wait_workers(port: int, workers: int, timeout: float = 30.0) -> None:
    """Until every DNS worker has answered HTTP requests itself (its per-worker counter in
    /metrics, which the workers report each second): the first answer may come from one worker
    while another has not started listening yet, and a pass begun then puts every one of the
    client's connections on the first (one worker serving it all, the other idle)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _ in range(8):                  # fresh connections: the kernel spreads them over the listeners
            fetch(port, "/v1/resolver")
        text = fetch(port, "/metrics")[1].decode()
        took = set()
        for labels, n in re.findall(r'dotbit_http_worker_requests_total\{([^}]*)\} (\d+)', text):
            d = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            if d.get("by") == "worker" and int(n) > 0:
                took.add(d.get("worker"))
        if len(took) >= workers:
            return
        time.sleep(0.5)
    raise RuntimeError("not every DNS worker answered HTTP")


def process_name(pid: int) -> str:
    """A node's child by what it runs: the DNS workers, or multiprocessing's resource tracker."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmd = f.read()
    return f"tracker {pid}" if b"resource_tracker" in cmd else f"worker {pid}"


def measured_pass(port: int, node_pid: int, names: list[str], names_file: str, public_key: bytes, tag: str,
                  client: str, seconds: float, threads: int = 1, conns: int = 16) -> dict:
    """One uncached pass against a running node, its CPU per request per process, and a sample
    verified with the light client afterwards (resolver_workers.py's HTTP pass uses it too)."""
    pids = {"node": node_pid, **{process_name(p): p for p in children(node_pid)}}
    before = {k: cpu_seconds(p) for k, p in pids.items()}
    if client == "wrk":
        got = run_wrk(port, names_file, seconds, tag, threads, conns)
    else:
        got = run_python(port, names, seconds, tag, conns)
    after = {k: cpu_seconds(p) for k, p in pids.items()}
    verify_sample(port, names, public_key, tag)
    n = got["answered"]
    got["cpu_us"] = {k: (after[k] - before[k]) / n * 1e6 for k in pids if not k.startswith("tracker")}
    got["cpu_us"][client] = got["client_cpu"] / n * 1e6
    return got


def one_run(args, names: list[str], names_file: str, work: str, r: int, client: str) -> dict:
    datadir = os.path.join(args.chain, "node")
    dport, hport, rport = free_port(), free_port(), free_port()
    log = open(os.path.join(work, f"node-{r}.log"), "w")
    node = subprocess.Popen([sys.executable, "-m", "node.cli", "--network", "regtest", "--datadir", datadir,
                             "--rpc-port", str(rport), "--dns-port", str(dport), "--http-port", str(hport),
                             "--log-level", "warning", "--dns-workers", str(args.workers), "--no-listen"],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_dns(dport, node)
        wait_http(hport, node)
        if args.workers > 1:
            wait_workers(hport, args.workers)
        key = load_or_create(default_key_path(datadir)).public_key
        got = measured_pass(hport, node.pid, names, names_file, key, f"r{r}p{os.getpid()}", client, args.seconds,
                            args.threads, args.conns)
        with open(os.path.join(work, f"node-{r}.log")) as f:
            if "Traceback" in f.read():
                raise RuntimeError("the node logged a traceback")
        # Per-worker rows: pids differ run by run, so they are numbered by their rank in CPU.
        workers = sorted((v for k, v in got["cpu_us"].items() if k.startswith("worker")), reverse=True)
        got["cpu_us"] = {k: v for k, v in got["cpu_us"].items() if not k.startswith("worker")}
        got["cpu_us"].update({f"worker {i}": v for i, v in enumerate(workers)})
        return got
    finally:
        stop(node)
        log.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chain", required=True, help="a chain made by bench/resolver_workers.py --chain DIR")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8, help="each run's pass (URLs never repeat)")
    ap.add_argument("--names", type=int, default=2000, help="existing names the requests draw from")
    ap.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    ap.add_argument("--threads", type=int, default=1, help="wrk's threads")
    ap.add_argument("--conns", type=int, default=16, help="keep-alive connections")
    args = ap.parse_args()
    client = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "python")
    if client == "wrk" and not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk), or use --client python", file=sys.stderr)
        return 1
    with open(os.path.join(args.chain, "names.txt")) as f:
        names = f.read().split()[:args.names]
    work = tempfile.mkdtemp(prefix="dotbit-bench-http-")
    try:
        names_file = os.path.join(work, "names.txt")
        with open(names_file, "w") as f:
            f.write("\n".join(names) + "\n")
        runs = [one_run(args, names, names_file, work, r, client) for r in range(args.repeat)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(runs, args, client)
    return 0


def report(runs: list[dict], args, client: str) -> None:
    rps = [r["rps"] for r in runs]
    print(f"\nSigned HTTP API, uncached, {args.workers} worker(s): client {client} ({args.conns} connections), "
          f"{args.seconds:g} s a run (half existing names, half absent), {len(runs)} runs, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"  req/s            {statistics.median(rps):8.0f}  ({min(rps):.0f} .. {max(rps):.0f})")
    total = []
    for k in runs[0]["cpu_us"]:
        xs = [r["cpu_us"][k] for r in runs]
        print(f"  CPU {k:12s} {statistics.median(xs):8.1f} us/request  ({min(xs):.1f} .. {max(xs):.1f})")
    for r in runs:
        total.append(sum(r["cpu_us"].values()))
    med = statistics.median(total)
    print(f"  CPU all          {med:8.1f} us/request  ({min(total):.1f} .. {max(total):.1f}); "
          f"2 quiet cores would allow about {2e6 / med:.0f} req/s at most")
    figure(f"http_uncached_{args.workers}w_{client}", statistics.median(rps), "req/s",
           f"signed HTTP API, uncached, {args.workers} workers, {client} client", ">= 5,000 (2 workers)")
    figure(f"http_uncached_{args.workers}w_cpu", med, "us/request",
           f"signed HTTP API, uncached, CPU per request of every process, {client} client")


if __name__ == "__main__":
    sys.exit(main())
