"""Zone transfer of the signed `bit.` zone over TCP to BIND, Knot or NSD secondaries: AXFR
(RFC 5936) and IXFR (RFC 1995) from the stored zone (projection.py), in messages of at most
64 KiB, built and written one at a time from a store snapshot (bounded memory: the zone is
never rendered whole).

IXFR answers the kept steps from the client's serial on: SOA(new), then per step SOA(old) and
its deletions, SOA(next) and its additions, and SOA(new) last. A client whose serial is not in
the kept history gets the whole zone in AXFR form (§4); a client with this serial or a newer
one gets the SOA alone.

Only sources inside an `--axfr-allow` network get it (none by default); everyone else, and
every transfer asked over UDP, gets the Responder's REFUSED.

With TSIG keys configured (tsig.py) a transfer needs both: an allowed source and a valid TSIG
by one of the keys, so a leaked key alone is not enough and neither is a spoofable address.
No TSIG is REFUSED like a disallowed source; a bad one is NOTAUTH with BADKEY, BADSIG or
BADTIME; every message of the transfer is signed, each MAC chained to the one before
(RFC 8945 §5.3.1), so a secondary can check each message as it arrives.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from node.resolver.zone import tsig
from node.resolver.identity import ZONE
from node.resolver.zone.reader import ZoneVersion

log = logging.getLogger("dotbit.resolver.axfr")

MAX_MESSAGE = 65535
_SLACK = 64                    # the OPT record a response mirrors, and rounding
T = dns.rdatatype


def parse_networks(cidrs) -> tuple:
    """`--axfr-allow` values -> networks; ValueError names the bad one."""
    nets = []
    for c in cidrs or ():
        try:
            nets.append(ipaddress.ip_network(c.strip(), strict=False))
        except ValueError:
            raise ValueError(f"--axfr-allow: not an address or network: {c!r}") from None
    return tuple(nets)


def allowed(peer: str | None, networks) -> bool:
    if not peer or not networks:
        return False
    try:
        addr = ipaddress.ip_address(peer.split("%")[0])
    except ValueError:
        return False
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in n for n in networks)


def pack(rrsets, budget: int):
    """RRsets grouped into message-sized lists by their uncompressed wire size (an upper
    bound, since compression only shrinks); an RRset too big for one message is split by RR."""
    group: list = []
    used = 0
    for rrset in rrsets:
        owner = len(rrset.name.to_wire())
        sizes = [owner + 10 + len(rd.to_wire()) for rd in rrset]
        if used + sum(sizes) <= budget:
            group.append(rrset)
            used += sum(sizes)
            continue
        for rd, size in zip(rrset, sizes):
            if used + size > budget and group:
                yield group
                group, used = [], 0
            part = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype, rrset.covers)
            part.add(rd, rrset.ttl)
            group.append(part)
            used += size
    if group:
        yield group


class ZoneTransfer:
    def __init__(self, db, networks, keyring: tsig.Keyring | None = None):
        self.db = db                    # the store holding the zone (projection.py)
        self.networks = tuple(networks)
        self.keyring = keyring          # None: the address is the only check
        # Transfers by result, for /metrics: a transfer is one query with many answers, which
        # the Responder's per-query counters never see.
        self.results = {"ok": 0, "failed": 0, "refused": 0}

    def handle(self, wire: bytes, peer: str | None):
        """The transfer's messages as an async iterator, the bytes of a TSIG error answer, or
        None when this query is not a zone transfer we give to `peer` (the Responder then
        answers it, REFUSED for AXFR/IXFR)."""
        if not allowed(peer, self.networks) or len(wire) < 12 or wire[2] & 0x80:
            return None
        try:
            q = dns.message.from_wire(wire, keyring=False)       # the TSIG is checked below
        except Exception:
            return None
        if q.opcode() != dns.opcode.QUERY or len(q.question) != 1:
            return None
        question = q.question[0]
        if (question.rdtype not in (T.AXFR, T.IXFR) or question.rdclass != dns.rdataclass.IN
                or question.name != ZONE):
            return None
        if self.keyring is None:
            return None if q.had_tsig else self._transfer(q, wire, peer)
        try:
            signed = tsig.check(wire, self.keyring)
        except tsig.Rejected as e:
            log.warning("zone transfer to %s refused: %s", peer, e)
            self.results["refused"] += 1
            return e.response
        if signed is None:
            log.warning("zone transfer to %s refused: no TSIG", peer)
            return None
        return self._transfer(signed.query, signed.unsigned, peer, signed)

    async def _transfer(self, q, wire: bytes, peer: str, signed: tsig.Signed | None = None):
        room = tsig.reserve(signed.key) if signed is not None else 0
        loop = asyncio.get_running_loop()
        snap = self.db.snapshot()
        ctx = None
        count = 0
        failed = False
        try:
            version = ZoneVersion(snap)
            bodies = _bodies(q, version, room)
            while True:
                try:
                    # Built off the event loop (a message of a large zone takes milliseconds),
                    # one at a time: the loop writes it, waits for the socket, asks for the next.
                    body = await loop.run_in_executor(None, next, bodies, None)
                except Exception:
                    log.exception("zone transfer to %s failed", peer)
                    self.results["failed"] += 1
                    failed = True
                    if count:           # mid-transfer: closing the connection tells the client
                        raise ConnectionAbortedError("zone transfer failed") from None
                    resp = _response(q)
                    resp.set_rcode(dns.rcode.SERVFAIL)
                    body = resp.to_wire()[2:]
                    bodies = iter(())
                if body is None:
                    break
                message = wire[:2] + body
                if signed is not None:
                    message, ctx = signed.sign(message, ctx=ctx, multi=True)
                count += 1
                yield message
            if not failed:
                self.results["ok"] += 1
                log.info("zone transfer of bit. serial %d to %s: %d messages%s", version.serial, peer, count,
                         "" if not room else " (TSIG)")
        finally:
            snap.close()


def _client_serial(q) -> int | None:
    for rrset in q.authority:
        if rrset.rdtype == T.SOA and rrset.name == ZONE and len(rrset):
            return rrset[0].serial
    return None


def _response(q) -> dns.message.Message:
    resp = dns.message.make_response(q)
    resp.flags |= dns.flags.AA
    resp.flags &= ~dns.flags.RA
    return resp


def _bodies(q, version: ZoneVersion, room: int = 0):
    """Message bodies (without the 2-byte ID) of the transfer `q` asks for; `room` bytes are
    kept free in each for the TSIG appended later."""
    if not version.ready:
        raise RuntimeError("the zone is not built yet")
    rrsets = None
    if q.question[0].rdtype == T.IXFR:
        client = _client_serial(q)
        if client is not None and version.client_is_current(client):
            rrsets = iter([version.soa()])
        elif client is not None:
            rrsets = version.ixfr(client)
    if rrsets is None:
        rrsets = version.axfr()
    overhead = 12 + len(q.question[0].name.to_wire()) + 4 + _SLACK + room
    for group in pack(rrsets, MAX_MESSAGE - overhead):
        resp = _response(q)
        resp.answer.extend(group)
        yield resp.to_wire(max_size=MAX_MESSAGE)[2:]
