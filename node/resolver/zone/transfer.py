"""Zone transfer of the signed `bit.` zone over TCP (AXFR, RFC 5936), so BIND, Knot or NSD
secondaries can serve .bit: the same SignedZone `dotbit-node zone export` writes, SOA first and
last, in messages of at most 64 KiB.

Only sources inside an `--axfr-allow` network get it (none by default); everyone else, and
every transfer asked over UDP, gets the Responder's REFUSED. IXFR (RFC 1995) is answered with
the whole zone in AXFR form, which §4 allows of a server that keeps no history, or with the
SOA alone when the client already has this serial or a newer one.

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
import dns.serial

from node.resolver.zone import tsig
from node.resolver.identity import ZONE
from node.resolver.zone.signed import SignedZone, ZoneCache

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


def pack(zone: SignedZone, budget: int) -> list[list]:
    """RRsets split into message-sized groups by their uncompressed wire size (an upper bound,
    since compression only shrinks); an RRset too big for one message is split by RR."""
    groups: list[list] = [[]]
    used = 0
    for rrset in zone.rrsets():
        owner = len(rrset.name.to_wire())
        sizes = [owner + 10 + len(rd.to_wire()) for rd in rrset]
        if used + sum(sizes) <= budget:
            groups[-1].append(rrset)
            used += sum(sizes)
            continue
        for rd, size in zip(rrset, sizes):
            if used + size > budget and groups[-1]:
                groups.append([])
                used = 0
            part = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype, rrset.covers)
            part.add(rd, rrset.ttl)
            groups[-1].append(part)
            used += size
    return groups


class ZoneTransfer:
    def __init__(self, zones: ZoneCache, networks, keyring: tsig.Keyring | None = None):
        self.zones = zones
        self.networks = tuple(networks)
        self.keyring = keyring          # None: the address is the only check
        self._rendered: dict = {}       # (tip, query bytes after the ID, TSIG room) -> message bodies
        # Transfers by result, for /metrics: a transfer is one query with many answers, which
        # the Responder's per-query counters never see.
        self.results = {"ok": 0, "failed": 0, "refused": 0}

    def handle(self, wire: bytes, peer: str | None):
        """A coroutine giving the transfer's messages, the bytes of a TSIG error answer, or
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

    async def _transfer(self, q, wire: bytes, peer: str, signed: tsig.Signed | None = None) -> list[bytes]:
        room = tsig.reserve(signed.key) if signed is not None else 0
        try:
            out = await self._messages(q, wire, peer, room)
            self.results["ok"] += 1
        except Exception:
            log.exception("zone transfer to %s failed", peer)
            self.results["failed"] += 1
            resp = _response(q)
            resp.set_rcode(dns.rcode.SERVFAIL)
            out = [resp.to_wire()]
        if signed is None:
            return out
        ctx = None
        for i, message in enumerate(out):
            out[i], ctx = signed.sign(message, ctx=ctx, multi=True)
        return out

    async def _messages(self, q, wire: bytes, peer: str, room: int = 0) -> list[bytes]:
        zone = await self.zones.current()
        if q.question[0].rdtype == T.IXFR and _client_is_current(q, zone.serial):
            resp = _response(q)
            resp.answer.append(next(zone.rrsets()))
            return [resp.to_wire()]
        key = (zone.tip_hash, wire[2:], room)
        bodies = self._rendered.get(key)
        if bodies is None:
            bodies = await asyncio.get_running_loop().run_in_executor(None, _render, q, zone, room)
            self._rendered = {k: v for k, v in self._rendered.items() if k[0] == zone.tip_hash}
            if len(self._rendered) < 16:
                self._rendered[key] = bodies
        log.info("zone transfer of bit. serial %d to %s: %d messages%s", zone.serial, peer, len(bodies),
                 "" if not room else " (TSIG)")
        return [wire[:2] + b for b in bodies]


def _client_is_current(q, serial: int) -> bool:
    for rrset in q.authority:
        if rrset.rdtype == T.SOA and rrset.name == ZONE and len(rrset):
            return dns.serial.Serial(rrset[0].serial) >= dns.serial.Serial(serial)
    return False


def _response(q) -> dns.message.Message:
    resp = dns.message.make_response(q)
    resp.flags |= dns.flags.AA
    resp.flags &= ~dns.flags.RA
    return resp


def _render(q, zone: SignedZone, room: int = 0) -> list[bytes]:
    """Message bodies (without the 2-byte ID); the SOA opens the first and closes the last;
    `room` bytes are kept free in each for the TSIG appended later."""
    soa = next(zone.rrsets())
    closing = len(soa.name.to_wire()) + 10 + len(soa[0].to_wire())
    overhead = 12 + len(q.question[0].name.to_wire()) + 4 + _SLACK + closing + room
    groups = pack(zone, MAX_MESSAGE - overhead)
    groups[-1].append(soa)
    out = []
    for group in groups:
        resp = _response(q)
        resp.answer.extend(group)
        out.append(resp.to_wire(max_size=MAX_MESSAGE)[2:])
    return out
