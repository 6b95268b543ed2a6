"""A local DNS stub (UDP and TCP on loopback) that answers `.bit` questions with verified
data only: each answer comes from LightClient.resolve, so a lying resolver gets SERVFAIL,
never its lie. Verified answers are cached for a few seconds (bounded), so hot names cost a
dict lookup; failures are not cached, so a resolver that recovers is used again at once.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import time

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from core.connlimit import SourceLimiter
from light.dnstcp import serve_dns_tcp
from light.verdict import Verified, VerifyError

log = logging.getLogger("dotbit.resolve.stub")

TTL = 60
CACHE_SECONDS = 10.0
MAX_CACHE = 100_000
MAX_UDP = 512
MAX_TCP = 128


class Stub:
    def __init__(self, client, host: str = "127.0.0.1", port: int = 0):
        self.client = client
        self.host = host
        self.port = port
        self._cache: dict[tuple, tuple[Verified, float]] = {}
        self._raw: dict[tuple, tuple[bytes, float]] = {}
        self._udp = None
        self._tcp = None
        # No per-source caps: the stub's clients are local applications, all from one address.
        self._conns = SourceLimiter(MAX_TCP)
        self._tasks: set = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _UDP(self), local_addr=(self.host, self.port))
        self.port = self._udp.get_extra_info("sockname")[1]
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)

    async def stop(self) -> None:
        self._udp.close()
        self._tcp.close()
        for w in self._conns.holders():
            w.close()
        for t in list(self._tasks):
            t.cancel()

    # --- answers ---------------------------------------------------------------------------

    def lookup(self, wire: bytes, tcp: bool) -> tuple[bytes | None, tuple | None]:
        """(response, None) when no network round trip is needed (cache hit, bad query; the
        response is None for a packet to drop), else (None, (query, key)) for answer() to
        resolve without parsing again. Rendered responses are kept by the query bytes after
        the ID, so a repeated question costs a dict lookup instead of a DNS parse and render."""
        raw = self._raw.get((tcp, wire[2:]))
        if raw is not None and raw[1] > time.monotonic():
            return wire[:2] + raw[0], None
        query, key, early = self._parse(wire)
        if early is not None or query is None:
            return early, None
        hit = self._cache.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return self._keep(wire, tcp, _render(query, hit[0], tcp), hit[1]), None
        return None, (query, key)

    def _keep(self, wire: bytes, tcp: bool, out: bytes, until: float) -> bytes:
        if len(self._raw) >= MAX_CACHE:
            self._raw.clear()
        self._raw[(tcp, wire[2:])] = (out[2:], until)
        return out

    async def answer(self, wire: bytes, tcp: bool, parsed: tuple | None = None) -> bytes | None:
        """The response to a query; `parsed` is what lookup() returned for it, if called."""
        if parsed is None:
            out, parsed = self.lookup(wire, tcp)
            if parsed is None:
                return out
        query, key = parsed
        try:
            verified = await self.client.resolve(key[0], key[1], fresh_sync=False)
        except VerifyError as e:
            print(f"SERVFAIL {key[0]} {key[1]}: {e}", file=sys.stderr, flush=True)
            return _bare(query, dns.rcode.SERVFAIL)
        except Exception:
            log.exception("internal error answering %s %s", *key)
            return _bare(query, dns.rcode.SERVFAIL)
        if len(self._cache) >= MAX_CACHE:
            self._cache.clear()
        until = time.monotonic() + CACHE_SECONDS
        self._cache[key] = (verified, until)
        return self._keep(wire, tcp, _render(query, verified, tcp), until)

    def _parse(self, wire: bytes):
        """(query, (fqdn, type), None) for a .bit question; (None, None, response-or-None) else."""
        if len(wire) < 12 or wire[2] & 0x80:
            return None, None, None           # no header, or a response: never answer
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None, None, _formerr(wire)
        if query.opcode() != 0 or len(query.question) != 1:
            return None, None, _bare(query, dns.rcode.NOTIMP if query.opcode() else dns.rcode.FORMERR)
        q = query.question[0]
        fqdn = q.name.to_text().lower()
        if not (fqdn.endswith(".bit.") and q.rdclass == 1):
            return None, None, _bare(query, dns.rcode.REFUSED)
        return query, (fqdn, dns.rdatatype.to_text(q.rdtype)), None

    # --- transports ------------------------------------------------------------------------

    def spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_tcp(self, reader, writer):
        await serve_dns_tcp(reader, writer, lambda wire: self.answer(wire, True), self._conns)

class _UDP(asyncio.DatagramProtocol):
    def __init__(self, stub: Stub):
        self.stub = stub
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        out, parsed = self.stub.lookup(data, False)
        if out is not None:
            self.transport.sendto(out, addr)
        elif parsed is not None:
            self.stub.spawn(self._reply(data, addr, parsed))

    async def _reply(self, data, addr, parsed):
        out = await self.stub.answer(data, False, parsed)
        if out is not None:
            self.transport.sendto(out, addr)

    def error_received(self, exc):
        pass


def _render(query, v: Verified, tcp: bool) -> bytes:
    resp = dns.message.make_response(query)
    resp.flags |= dns.flags.RA
    resp.flags &= ~dns.flags.AA
    if v.status == "NXDOMAIN":
        resp.set_rcode(dns.rcode.NXDOMAIN)
    fqdn = v.fqdn
    for r in v.records:
        try:
            rrset = dns.rrset.from_text(r.owner, TTL, "IN", r.rtype, r.rdata)
        except Exception:
            continue                        # rdata dnspython refuses (the d/ rules allow some)
        if r.rtype == "NS" and r.owner != fqdn:
            section = resp.authority
        elif r.owner == fqdn or r.rtype == "DNAME":
            section = resp.answer
        else:
            section = resp.additional
        existing = next((s for s in section if s.name == rrset.name and s.rdtype == rrset.rdtype), None)
        if existing is None:
            section.append(rrset)
        else:
            existing.union_update(rrset)
    limit = 65535 if tcp else max(MAX_UDP, query.payload if query.edns >= 0 else 0)
    try:
        return resp.to_wire(max_size=limit)
    except dns.exception.TooBig:
        resp.answer, resp.authority, resp.additional = [], [], []
        resp.flags |= dns.flags.TC
        return resp.to_wire()


def _bare(query, rcode) -> bytes:
    resp = dns.message.make_response(query)
    resp.flags |= dns.flags.RA
    resp.set_rcode(rcode)
    return resp.to_wire()


def _formerr(wire: bytes) -> bytes:
    # ID and opcode copied, QR set, RCODE FORMERR, no sections: all that can be said safely.
    return wire[:2] + bytes([0x80 | (wire[2] & 0x78), 0x81]) + bytes(8)
