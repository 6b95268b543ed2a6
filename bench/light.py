"""Light client figures: header sync, answer verification, DNS stub throughput.

1. sync: --headers regtest headers (built here with solve_quick) served by a local aiohttp
   server speaking the resolver's /v1/headers API, synced by LightClient into a fresh header
   store (every header fully checked: linkage, PoW, bits, median time). Target <= 10 s.
1c. merge-mined: 1 and 1b again over a chain whose headers from the AuxPoW activation height on
   carry an AuxPoW shaped like a real Bitcoin parent's (an 11-deep coinbase branch, a coinbase
   with a payout and a witness commitment); reports the header size growth and the ratio of
   the verification rates (target: within 2x of plain headers).
1b. p2p sync: the same headers from a p2p listener speaking the node's wire protocol
   (core.p2pwire: version handshake, getheaders/headers with a locator, as
   node/chain/p2pview.headers_after answers it), synced by light.peer.PeerSource into a fresh
   store. Target <= 5 s. (Served from this process rather than a node process: a regtest node
   with 100,000 mined blocks takes far longer to build than the figure measures.)
2. verify: open_answer + verify_answer of one /v1/domain answer carrying proofs (an import,
   so two proofs) from a tree of --names names. Target <= 5 ms median.
3. stub: a `dotbit-resolve serve --accept-stale` process (the bench chain's times are old) in
   front of the same server, queried over UDP for already-cached names by an asyncio client
   keeping --window queries in flight.

    python bench/light.py [--headers 100000] [--names 10000] [--repeat 3] [--seconds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import dns.message  # noqa: E402
from aiohttp import web  # noqa: E402

from dataclasses import replace  # noqa: E402
from core.auxpow import AuxPow, commitment, merkle_branch_root  # noqa: E402
from core.consensus import bits_to_target  # noqa: E402
from node.mining.auxbuild import aux_header, coinbase_tx, grind_parent, parent_header  # noqa: E402
from core.primitives import Header  # noqa: E402
from node.mining.miner import solve_quick  # noqa: E402
from core.names.proof import EMPTY  # noqa: E402
from core.names.rules import NameRecord, tree_key  # noqa: E402
from core.names.tree import NameTree  # noqa: E402
from core.params import REGTEST  # noqa: E402
from core.envelope import seal  # noqa: E402
from node.resolver.identity import ResolverKey  # noqa: E402
from light.client import LightClient  # noqa: E402
from support.header_peer import serve_headers  # noqa: E402
from light.headers import HeaderStore, sync_locator  # noqa: E402
from light.peer import PeerSource  # noqa: E402
from core.crypto import sha256d  # noqa: E402
from light.verify import open_answer, verify_answer  # noqa: E402
from core.records import NameSource, select  # noqa: E402
from figures import figure  # noqa: E402  (bench/ is on sys.path when run as a script)

OWNER = bytes(range(20))


def build_names(n: int, rng: random.Random, height: int):
    """n names plus d/bench (importing d/n1), all last updated at `height` so none has expired."""
    records = {}
    for i in range(n):
        name = f"d/n{i}".encode()
        records[name] = NameRecord(name, json.dumps({"ip": [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"]}).encode(),
                                   OWNER, height, rng.randbytes(32), 0)
    records[b"d/bench"] = NameRecord(b"d/bench", json.dumps({"ip": ["192.0.2.7"], "map": {"www": {
        "import": "d/n1"}}}).encode(), OWNER, height, rng.randbytes(32), 0)
    nodes: dict = {}
    tree = NameTree(nodes.get)
    root, new = tree.update(EMPTY, {tree_key(k): r.leaf_hash for k, r in records.items()})
    nodes.update(new)
    return records, tree, root


def build_headers(n: int, name_root: bytes) -> list[bytes]:
    """A regtest chain of n+1 headers (genesis first), one second apart so the last one is
    not in the future; every header commits to the bench tree's root."""
    genesis = REGTEST.genesis.header
    target = bits_to_target(genesis.bits)
    out, prev = [genesis.to_bytes()], genesis
    for h in range(1, n + 1):
        hdr = solve_quick(Header(1, prev.hash, bytes(32), name_root, genesis.time + h, genesis.bits, 0), target)
        out.append(hdr.to_bytes())
        prev = hdr
    return out


def build_aux_headers(n: int, name_root: bytes) -> list[bytes]:
    """As build_headers, but merge-mined (wire form) from the activation height on."""
    genesis = REGTEST.genesis.header
    target = bits_to_target(genesis.bits)
    branch = tuple(sha256d(bytes([i])) for i in range(11))          # a parent of ~2,000 txs
    payout = (5_000_000_000, b"\x00\x14" + bytes(20))
    witness = (0, bytes.fromhex("6a24aa21a9ed") + bytes(32))
    out, prev, parent_prev = [genesis.to_wire()], genesis, bytes(32)
    for h in range(1, n + 1):
        hdr = Header(1, prev.hash, bytes(32), name_root, genesis.time + h, genesis.bits, 0)
        if h < REGTEST.auxpow_height:
            hdr = solve_quick(hdr, target)
        else:
            hdr = aux_header(hdr, REGTEST.auxpow_chain_id)
            script = b"\x03" + h.to_bytes(3, "little") + commitment(hdr.hash, 1, 0) + bytes(8) + b"/pool/"
            cb = coinbase_tx(script, [payout, witness])
            parent = grind_parent(parent_header(0x20000000, parent_prev, merkle_branch_root(sha256d(cb), branch, 0),
                                                hdr.time, 0x207FFFFF), target)
            parent_prev = sha256d(parent)
            hdr = replace(hdr, auxpow=AuxPow(cb, branch, (), 0, parent))
        out.append(hdr.to_wire())
        prev = hdr
    return out


class Server:
    """Just enough of the resolver's HTTP API: /v1/resolver, /v1/headers, /v1/domain."""

    def __init__(self, key: ResolverKey, headers: list[bytes], records, tree, root):
        self.key, self.headers, self.records, self.tree, self.root = key, headers, records, tree, root
        self.port = None

    def envelope(self, kind, question, answer, proofs=()):
        tip = len(self.headers) - 1
        now = int(time.time())
        body = {"v": 1, "kind": kind, "question": question, "answer": answer,
                "tip": {"height": tip, "hash": hashlib.sha256(hashlib.sha256(self.headers[tip][:112]).digest()).digest(),
                        "name_root": self.root},
                "served": now, "valid_until": now + 300, "proofs": list(proofs)}
        return seal(body, self.key.sign, "msgpack")

    def domain_body(self, fqdn: str, qtype: str) -> bytes:
        source = NameSource(self.records.get, lambda: len(self.headers) - 1, REGTEST)
        ans = source.resolve(fqdn)
        proofs = [{"name": n.encode(), "record": self.records[n.encode()].to_bytes() if n.encode() in self.records
                   else None, "proof": self.tree.prove(self.root, tree_key(n.encode())).to_bytes()}
                  for n in ans.names_used]
        records = [[r.owner, r.rtype, r.rdata] for r in select(ans.records, fqdn, qtype)]
        return self.envelope("domain", {"name": fqdn, "type": qtype}, {"records": records, "tls": [],
                                                                       "minimalt": []}, proofs)

    async def start(self):
        async def info(_):
            return web.Response(body=self.envelope("resolver", {}, {"public_key": self.key.public_key,
                                                                    "network": "regtest"}))

        async def headers(req):
            start, count = int(req.query["from"]), int(req.query["count"])
            return web.Response(body=self.envelope("headers", {"from": start, "count": count},
                                                   {"from": start, "headers": self.headers[start:start + count]}))

        async def domain(req):
            fqdn = req.match_info["fqdn"].lower().rstrip(".") + "."
            return web.Response(body=self.domain_body(fqdn, req.query.get("type", "ANY")))

        app = web.Application()
        app.router.add_get("/v1/resolver", info)
        app.router.add_get("/v1/headers", headers)
        app.router.add_get("/v1/domain/{fqdn}", domain)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self.port


async def bench_sync(server: Server, repeat: int, keep_dir: str) -> list[tuple[float, float]]:
    """(wall, CPU) seconds per sync; CPU is this process's (client and the in-process server):
    on a shared machine it is the steadier of the two."""
    times = []
    for i in range(repeat):
        d = tempfile.mkdtemp(prefix="dotbit-light-bench-")
        t0, c0 = time.perf_counter(), time.process_time()
        async with LightClient(REGTEST, d, f"http://127.0.0.1:{server.port}", server.key.fingerprint) as c:
            await c.resolver.identify(server.key.fingerprint, "regtest")
            height = await c.sync()
        times.append((time.perf_counter() - t0, time.process_time() - c0))
        assert height == len(server.headers) - 1, height
        if i == 0:
            shutil.copy(os.path.join(d, "headers.dat"), os.path.join(keep_dir, "headers.dat"))
        shutil.rmtree(d)
    return times


async def bench_p2p_sync(port: int, top: int, repeat: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds per sync from the header listener on `port` serving `top` headers."""
    times = []
    for _ in range(repeat):
        d = tempfile.mkdtemp(prefix="dotbit-light-bench-")
        t0, c0 = time.perf_counter(), time.process_time()
        store = HeaderStore(d, REGTEST)
        async with PeerSource("127.0.0.1", port, REGTEST) as peer:
            height = await sync_locator(store, peer.headers_after, time.time)
        times.append((time.perf_counter() - t0, time.process_time() - c0))
        assert height == top, height
        shutil.rmtree(d)
    return times


async def bench_aux(args, plain: Server, aux: Server, ports: dict) -> None:
    """1c: the same syncs over a merge-mined chain. The machine is noisy, so plain and
    merge-mined runs alternate (which goes first alternates too) and the figures are medians
    of per-pair ratios, each pair measured back to back under the same load."""
    size = statistics.mean(len(h) for h in aux.headers[REGTEST.auxpow_height:])
    keep = tempfile.mkdtemp(prefix="dotbit-light-bench-aux-")
    http, p2p = [], []                     # ((wall, cpu) plain, (wall, cpu) merge-mined) per round
    try:
        for i in range(max(args.repeat, 3)):
            order = ("plain", "aux") if i % 2 == 0 else ("aux", "plain")
            got = {k: (await bench_sync(plain if k == "plain" else aux, 1, keep))[0] for k in order}
            http.append((got["plain"], got["aux"]))
            got = {k: (await bench_p2p_sync(ports[k], args.headers, 1))[0] for k in order}
            p2p.append((got["plain"], got["aux"]))
    finally:
        shutil.rmtree(keep, ignore_errors=True)
    at, ap = statistics.median(a[0] for _, a in http), statistics.median(a[0] for _, a in p2p)
    ratios = {(path, k): sorted(a[k] / p[k] for p, a in runs)
              for path, runs in (("http", http), ("p2p", p2p)) for k in (0, 1)}
    print(f"merge-mined headers: {size:.0f} bytes each on the wire (x{size / 112:.1f} of 112); light sync "
          f"{args.headers / at:,.0f} headers/s, p2p {args.headers / ap:,.0f} headers/s")
    for (path, k), r in ratios.items():
        print(f"  {path} merge-mined / plain {('wall', 'CPU')[k]} time: x{statistics.median(r):.2f} median "
              f"(pairs: {', '.join(f'{x:.2f}' for x in r)}); target within x2")
    figure("auxpow_header_bytes", size, "bytes", "merge-mined header on the wire (112 hashed + AuxPoW)")
    figure("auxpow_header_sync", at, "s", f"header sync of {args.headers:,} merge-mined headers")
    figure("auxpow_p2p_header_sync", ap, "s", f"p2p header sync of {args.headers:,} merge-mined headers")
    # The target is on the verification rate (the client's CPU); the wall ratio, what a user
    # waits, also holds the server's work and, on a real network, the transfer of 7x the bytes.
    for (path, k), r in ratios.items():
        what = ("wall time (waited, server included)", "client CPU time (verification rate)")[k]
        figure(f"auxpow_{'p2p_' if path == 'p2p' else ''}header_sync_{('wall', 'cpu')[k]}_ratio", statistics.median(r),
               "x plain", f"merge-mined / plain {'p2p ' if path == 'p2p' else 'HTTP '}header sync, {what}, median of "
               f"{len(r)} back-to-back pairs (spread {r[0]:.2f}-{r[-1]:.2f})", "<= 2" if k else "")


def bench_verify(server: Server, light_dir: str, n: int) -> list[float]:
    store = HeaderStore(light_dir, REGTEST)
    data = server.domain_body("www.bench.bit.", "A")
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        now = time.time()
        body = open_answer(data, server.key.public_key, "www.bench.bit.", "A", now)
        v = verify_answer(body, store.header, store.height, REGTEST, now)
        times.append(time.perf_counter() - t0)
    assert [r.rdata for r in v.records] == ["10.0.0.1"] and len(v.proven) == 2, v
    return times


async def bench_stub(server: Server, light_dir: str, seconds: float, window: int) -> float:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        os.path.join(os.path.dirname(sys.executable), "dotbit-resolve"), "--network", "regtest", "--resolver",
        f"http://127.0.0.1:{server.port}", "--pin", server.key.fingerprint, "--light-dir", light_dir,
        "--config", os.devnull, "--accept-stale", "serve", "--port", str(port), stdout=subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert b"serving" in line, line
        names = [f"n{i}.bit." for i in range(20)]
        queries = [dns.message.make_query(n, "A").to_wire() for n in names]
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        state = {"sent": 0, "got": 0, "stop": time.monotonic() + 1e9}

        class Client(asyncio.DatagramProtocol):
            def connection_made(self, t):
                self.t = t

            def datagram_received(self, data, addr):
                state["got"] += 1
                if time.monotonic() < state["stop"]:
                    self.send()
                elif state["got"] >= state["sent"]:
                    done.set()

            def send(self):
                q = queries[state["sent"] % len(queries)]
                state["sent"] += 1
                self.t.sendto(q, ("127.0.0.1", port))

        t, proto = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
        for q in queries:                         # warm the cache: one verified answer per name
            state["sent"] += 1
            t.sendto(q, ("127.0.0.1", port))
            await asyncio.sleep(0.05)
        await asyncio.sleep(1)
        state.update(sent=0, got=0)
        t0 = time.monotonic()
        state["stop"] = t0 + seconds
        for _ in range(window):
            proto.send()
        try:
            await asyncio.wait_for(done.wait(), seconds + 5)
        except asyncio.TimeoutError:
            pass                                  # some datagrams lost: count what came back
        rate = state["got"] / (time.monotonic() - t0)
        t.close()
        return rate
    finally:
        proc.terminate()
        await proc.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_in_child(start) -> tuple[int, int]:
    """Forks a child serving with `start()` (a coroutine function returning its port) until
    killed; returns (pid, port). Called before any event loop exists. The servers run apart
    from the measured client, as a resolver or a peer does, so the client's CPU time is its
    own (reading, checking and storing headers), not the encoding and signing of what it reads."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)

        async def run():
            os.write(w, (await start()).to_bytes(4, "big"))
            await asyncio.Event().wait()
        try:
            asyncio.run(run())
        finally:
            os._exit(0)
    os.close(w)
    port = int.from_bytes(os.read(r, 4), "big")
    os.close(r)
    if not port:
        raise RuntimeError("a bench server did not start")
    return pid, port


async def _p2p_port(headers: list[bytes]) -> int:
    _server, port = await serve_headers(headers)
    return port


async def main_async(args, server: Server, aux: Server, ports: dict) -> None:
    keep = tempfile.mkdtemp(prefix="dotbit-light-bench-keep-")
    try:
        med = statistics.median(w for w, _ in await bench_sync(server, args.repeat, keep))
        print(f"light header sync: {args.headers} headers in {med:.2f} s median of {args.repeat} "
              f"({args.headers / med:,.0f} headers/s; target <= 10 s)")
        figure("header_sync", med, "s", f"header sync of {args.headers:,} headers (all checks)", "<= 10 s (100,000)")
        pt = statistics.median(w for w, _ in await bench_p2p_sync(ports["plain"], args.headers, args.repeat))
        print(f"light p2p header sync: {args.headers} headers in {pt:.2f} s median of {args.repeat} "
              f"({args.headers / pt:,.0f} headers/s; target <= 5 s)")
        figure("p2p_header_sync", pt, "s", f"p2p header sync of {args.headers:,} headers (all checks)",
               "<= 5 s (100,000)")
        await bench_aux(args, server, aux, ports)
        vt = bench_verify(server, keep, 1000)
        print(f"light verify answer (2 proofs, {args.names} names): {statistics.median(vt) * 1000:.3f} ms median "
              f"(p90 {sorted(vt)[900] * 1000:.3f} ms; target <= 5 ms)")
        figure("verify", statistics.median(vt) * 1000, "ms", f"verify one /v1/domain answer, 2 proofs, {args.names:,} names",
               "<= 5 ms")
        rate = await bench_stub(server, keep, args.seconds, args.window)
        figure("stub_rate", rate, "answers/s", "verified-only DNS stub, cached names, UDP")
        print(f"light stub: {rate:,.0f} answers/s for cached names (UDP, {args.window} in flight)")
    finally:
        shutil.rmtree(keep, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--headers", type=int, default=100_000)
    ap.add_argument("--names", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--window", type=int, default=32)
    args = ap.parse_args()
    rng = random.Random(7)
    t0 = time.perf_counter()
    records, tree, root = build_names(args.names, rng, args.headers - 1)
    server = Server(ResolverKey(rng.randbytes(32)), build_headers(args.headers, root), records, tree, root)
    aux = Server(ResolverKey(bytes(32)), build_aux_headers(args.headers, root), records, tree, root)
    print(f"# built {args.names} names and {args.headers} plain and merge-mined headers in "
          f"{time.perf_counter() - t0:.1f} s")
    children, ports = [], {}
    try:
        for s in (server, aux):
            pid, s.port = serve_in_child(s.start)
            children.append(pid)
        for k, s in (("plain", server), ("aux", aux)):
            pid, ports[k] = serve_in_child(lambda s=s: _p2p_port(s.headers))
            children.append(pid)
        asyncio.run(main_async(args, server, aux, ports))
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
