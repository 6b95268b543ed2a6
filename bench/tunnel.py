"""Tunnel benchmark, everything measured in the same run on this machine:

  - time to the first response byte at a simulated 50 ms RTT, for the tunnel (0-RTT open),
    plain TCP and TCP + TLS 1.3 (Python ssl). netem is not available everywhere (it needs the
    sch_netem module), so the delay is made by relays in this process that hold every UDP
    datagram / TCP chunk 25 ms each way and hold a new TCP connection's first bytes one RTT
    (the SYN/SYN-ACK exchange a real path would cost). Also reported as round trips.
  - opens/s on one core: the server's work per OPEN (fed straight to Server.datagram, no
    sockets), accepted opens without puzzles, solved opens while busy, and unsolved opens
    answered with a puzzle while busy (the flood case).
  - bulk throughput of one tunnel on loopback against TLS 1.3 over TCP, client and server in
    one process each time (ratio target >= 0.25x): --repeat rounds, each a TLS run then a
    tunnel run, reported as medians and the median of the rounds' ratios (a shared machine's
    load moves both). Also the datagram size path MTU discovery reached (tunnel/pmtu.py).

    python bench/tunnel.py [--bytes 20000000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import ssl
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from nacl.bindings import crypto_box_keypair  # noqa: E402

from figures import figure  # noqa: E402
from tunnel import crypto as C  # noqa: E402
from tunnel import packet as P  # noqa: E402
from tunnel.client import Tunnel  # noqa: E402
from tunnel.resolve import ServerInfo  # noqa: E402
from tunnel.server import Server, ServerLimits  # noqa: E402

ONE_WAY = 0.025
RESPONSE = b"HTTP/1.0 200 OK\r\n\r\nhello"


def tls_contexts():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.bit")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("bench.bit")]), False).sign(key, hashes.SHA256()))
    d = tempfile.mkdtemp(prefix="dotbit-bench-tls-")
    cpath, kpath = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
    with open(cpath, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kpath, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.TLSv1_3
    server.load_cert_chain(cpath, kpath)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    client.load_verify_locations(cpath)
    return server, client


# --- delaying relays -------------------------------------------------------------------------

class UdpDelay(asyncio.DatagramProtocol):
    """Clients send to this socket; every datagram reaches the server (and comes back) ONE_WAY later."""

    def __init__(self, server_addr):
        self.server_addr = server_addr
        self.client = None
        self.up = None

    async def start(self):
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        relay = self

        class Up(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                loop.call_later(ONE_WAY, relay.transport.sendto, data, relay.client)
        self.up, _ = await loop.create_datagram_endpoint(Up, remote_addr=self.server_addr)
        return self.transport.get_extra_info("sockname")[1]

    def datagram_received(self, data, addr):
        self.client = addr
        asyncio.get_running_loop().call_later(ONE_WAY, self.up.sendto, data)


async def tcp_delay(server_port: int) -> asyncio.AbstractServer:
    """A TCP relay: chunks arrive ONE_WAY late each way, and a connection's first bytes no
    earlier than one RTT after it was accepted (the handshake a real path costs)."""
    loop = asyncio.get_running_loop()

    async def handle(reader, writer):
        accepted = loop.time()
        ur, uw = await asyncio.open_connection("127.0.0.1", server_port)

        async def pump(r, w, gate):
            while data := await r.read(65536):
                due = max(loop.time() + ONE_WAY, gate)
                await asyncio.sleep(due - loop.time())
                w.write(data)
            w.close()
        await asyncio.gather(pump(reader, uw, accepted + 2 * ONE_WAY + ONE_WAY), pump(ur, writer, 0.0))
    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def responder(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(RESPONSE)
    await writer.drain()
    writer.close()


async def ttfb(repeat: int) -> dict:
    sctx, cctx = tls_contexts()
    plain = await asyncio.start_server(responder, "127.0.0.1", 0)
    tls = await asyncio.start_server(responder, "127.0.0.1", 0, ssl=sctx)
    out = {}
    for name, port, ctx in (("tcp", plain.sockets[0].getsockname()[1], None),
                            ("tls", tls.sockets[0].getsockname()[1], cctx)):
        relay = await tcp_delay(port)
        rport, times = relay.sockets[0].getsockname()[1], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            r, w = await asyncio.open_connection("127.0.0.1", rport, ssl=ctx, server_hostname="bench.bit" if ctx else None)
            w.write(b"GET / HTTP/1.0\r\n\r\n")
            await r.readexactly(1)
            times.append(time.perf_counter() - t0)
            w.close()
        out[name] = statistics.median(times)
        relay.close()
    out["tunnel"] = await _tunnel_ttfb(repeat)
    plain.close()
    tls.close()
    return out


async def _tunnel_ttfb(repeat: int) -> float:
    (ip, isk), (ep, esk) = crypto_box_keypair(), crypto_box_keypair()

    async def serve(conn):
        await conn.reader.readuntil(b"\r\n\r\n")
        conn.write(RESPONSE)
        conn.close()
    srv = Server(isk, on_connection=serve)
    srv.set_eph_keys([(esk, time.time() + 3600)])
    port = await srv.start("127.0.0.1", 0)
    relay = UdpDelay(("127.0.0.1", port))
    rport = await relay.start()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        async with Tunnel(ServerInfo("bench.bit.", "127.0.0.1", rport, ip, ep, 0)) as t:
            conn = t.connection()
            conn.write(b"GET / HTTP/1.0\r\n\r\n")
            await conn.reader.readexactly(1)
            times.append(time.perf_counter() - t0)
    srv.close()
    return statistics.median(times)


# --- opens per second on one core --------------------------------------------------------------

class _Sink:
    """A transport that keeps nothing: the server's replies are not what is measured."""

    def sendto(self, data, addr=None):
        pass

    def is_closing(self):
        return False


def _opens(n: int, ep: bytes, ip: bytes, challenge: bytes | None) -> list[bytes]:
    """n distinct OPEN datagrams (with solved puzzles if `challenge`), made before timing."""
    out = []
    for _ in range(n):
        cp, csk = crypto_box_keypair()
        tid = os.urandom(8)
        keys = C.client_keys(csk, ep, ip, tid)
        ch, sol = (challenge, C.solve(challenge, tid, cp)) if challenge else (bytes(16), bytes(8))
        header = P.Open(tid, 0, C.key_id(ep), cp, int(time.time()), ch, sol, b"").header()
        body = P.encode_frames([P.Stream(1, 0, b"GET / HTTP/1.0\r\n\r\n")])
        out.append(header + C.seal(keys.send, 0, header, body))
    return out


async def opens_per_second(n: int) -> dict:
    """Inside a loop (the server's streams are asyncio objects), but nothing awaits while timing."""
    (ip, isk), (ep, esk) = crypto_box_keypair(), crypto_box_keypair()

    def server(puzzle_above: int) -> Server:
        s = Server(isk, ServerLimits(max_tunnels=10 * n, puzzle_above=puzzle_above, base_difficulty=8))
        s.set_eph_keys([(esk, time.time() + 3600)])
        s.transport = _Sink()
        return s

    def rate(s: Server, datagrams) -> float:
        t0 = time.perf_counter()
        for i, d in enumerate(datagrams):
            s.datagram(d, ("127.0.0.1", 1000 + i % 50000))
        return len(datagrams) / (time.perf_counter() - t0)

    out = {"plain": rate(server(10 ** 9), _opens(n, ep, ip, None))}
    busy = server(0)                                     # always busy: every open needs a solution
    challenge = busy._challenge(time.monotonic())
    out["solved"] = rate(busy, _opens(n, ep, ip, challenge))
    assert busy.stats["opens"] == n, busy.stats
    out["unsolved"] = rate(server(0), _opens(n, ep, ip, None))
    return out


# --- bulk throughput -----------------------------------------------------------------------------

async def bulk(nbytes: int, repeat: int) -> dict:
    data = os.urandom(1 << 20)
    sctx, cctx = tls_contexts()
    rounds = []
    for _ in range(repeat):
        tls = await _tls_bulk(nbytes, data, sctx, cctx)
        rate, size = await _tunnel_bulk(nbytes, data)
        rounds.append((tls, rate, size))
    return {"tls": statistics.median(r[0] for r in rounds), "tunnel": statistics.median(r[1] for r in rounds),
            "ratio": statistics.median(r[1] / r[0] for r in rounds), "datagram": min(r[2] for r in rounds)}


async def _tls_bulk(nbytes: int, data: bytes, sctx, cctx) -> float:
    total = nbytes // len(data) * len(data)

    async def sink_tcp(reader, writer):
        got = 0
        while got < total:              # counted: asyncio's TLS has no half-close to end on
            got += len(await reader.read(1 << 20))
        writer.write(b"k")
        await writer.drain()
        writer.close()
    tls = await asyncio.start_server(sink_tcp, "127.0.0.1", 0, ssl=sctx)
    r, w = await asyncio.open_connection("127.0.0.1", tls.sockets[0].getsockname()[1], ssl=cctx,
                                         server_hostname="bench.bit")
    t0 = time.perf_counter()
    for i in range(nbytes // len(data)):
        w.write(data)
        await w.drain()
    await r.read(1)
    tls_rate = nbytes / (time.perf_counter() - t0)
    w.close()
    tls.close()
    return tls_rate


async def _tunnel_bulk(nbytes: int, data: bytes) -> tuple[float, int]:
    """(bytes/s, the datagram size the sending side had reached at the end)."""
    (ip, isk), (ep, esk) = crypto_box_keypair(), crypto_box_keypair()

    async def sink(conn):
        while await conn.read():
            pass
        conn.write(b"k")
        conn.close()
    srv = Server(isk, on_connection=sink)
    srv.set_eph_keys([(esk, time.time() + 3600)])
    port = await srv.start("127.0.0.1", 0)
    async with Tunnel(ServerInfo("bench.bit.", "127.0.0.1", port, ip, ep, 0)) as t:
        conn = t.connection()
        t0 = time.perf_counter()
        for i in range(nbytes // len(data)):
            conn.write(data)
            await conn.drain()
        conn.close()
        await conn.reader.read(1)
        rate = nbytes / (time.perf_counter() - t0)
        size = t.session.pmtu.size
    srv.close()
    return rate, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", type=int, default=20_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--opens", type=int, default=2000)
    args = ap.parse_args()
    t = asyncio.run(ttfb(args.repeat))
    rtt = 2 * ONE_WAY
    for k in ("tunnel", "tcp", "tls"):
        print(f"time to first byte, 50 ms RTT, {k:6}: {t[k] * 1000:7.1f} ms = {t[k] / rtt:.2f} RTT")
    figure("ttfb_tunnel", round(t["tunnel"] * 1000, 1), "ms", "tunnel time to first response byte (50 ms RTT)",
           "<= 1 RTT + e")
    figure("ttfb_tcp", round(t["tcp"] * 1000, 1), "ms", "plain TCP time to first response byte (50 ms RTT)")
    figure("ttfb_tls13", round(t["tls"] * 1000, 1), "ms", "TCP+TLS 1.3 time to first response byte (50 ms RTT)")
    o = asyncio.run(opens_per_second(args.opens))
    print(f"opens/s on one core: {o['plain']:.0f} accepted without puzzles, {o['solved']:.0f} solved "
          f"while busy, {o['unsolved']:.0f} unsolved answered with a puzzle")
    figure("opens_plain", round(o["plain"]), "opens/s", "tunnel opens accepted per second, one core")
    figure("opens_solved", round(o["solved"]), "opens/s", "solved opens accepted per second while busy, one core")
    figure("opens_puzzled", round(o["unsolved"]), "opens/s", "unsolved opens answered with a puzzle, one core")
    b = asyncio.run(bulk(args.bytes, args.repeat))
    ratio = b["ratio"]
    print(f"bulk on loopback (medians of {args.repeat}): tunnel {b['tunnel'] / 1e6:.1f} MB/s, TLS 1.3 over TCP "
          f"{b['tls'] / 1e6:.1f} MB/s, ratio {ratio:.3f}, datagrams of {b['datagram']} bytes")
    figure("bulk_tunnel", round(b["tunnel"] / 1e6, 1), "MB/s", "one tunnel, bulk, loopback")
    figure("bulk_tls13", round(b["tls"] / 1e6, 1), "MB/s", "TLS 1.3 over TCP, bulk, loopback")
    figure("bulk_ratio", round(ratio, 3), "x", "tunnel / TLS 1.3 bulk throughput", ">= 0.25x")
    figure("bulk_datagram", b["datagram"], "bytes", "datagram size path MTU discovery reached on loopback")
    return 0


if __name__ == "__main__":
    sys.exit(main())
