"""Authoritative answers for `bit.`: one query packet in, one response packet out.

`Responder.handle(wire, tcp)` is the whole DNS logic as a function of the packet (the servers
in dns_server.py only move bytes), so it can be fuzzed in-process. It never raises: a packet
too short for a header, or one that is itself a response, is dropped (None); anything else
that does not parse gets FORMERR; an internal error gets SERVFAIL.

Rendered responses are cached by the query bytes after the ID, so repeated questions cost a
dict lookup; each is indexed by the names its answer read, and `invalidate(name)` (on every
change of that name) drops just those.

With a record-source policy (sources.py), a TLSA RRset at `_PORT._tcp.HOST` may come from
another source (the CA) instead of the chain; such records are merged into the name's RRsets
before any existence decision, so NODATA/NXDOMAIN and their NSEC proofs account for them.
"""
from __future__ import annotations

import logging
import struct
import time
from typing import Callable

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from node.resolver import fastanswer, fastdeny
from node.resolver.dnssec import OnlineSigner, nsec_rrset, predecessor, successor, successor_after_subtree
from node.resolver.identity import ZONE
from core.records import Answer, NameSource

log = logging.getLogger("dotbit.resolver.dns")

TTL = 300
NEG_TTL = 60                     # SOA minimum: how long a denial may be cached
NS_NAME = "localhost."           # the resolver serves bit. itself on loopback
OUR_PAYLOAD = 1232               # DNS flag day 2020 advice: avoids IP fragmentation
MAX_UDP = OUR_PAYLOAD           # a bigger EDNS buffer is clamped: amplification and fragments
MAX_CNAME_CHAIN = 8
RAW_CACHE_SECONDS = 300         # bounds how long an answer lives; signatures live for days
# A pseudo-name (no d/ name starts with "@") that answers carrying the SOA depend on: the serial
# is the tip height, so a new tip drops them and a secondary probing after a NOTIFY sees the
# new serial at once, not up to RAW_CACHE_SECONDS later.
SERIAL = "@serial"
RAW_CACHE_MAX = 100_000

T = dns.rdatatype
APEX_TYPES = (T.SOA, T.NS, T.DNSKEY)
_HEADER = struct.Struct(">HHHHHH")


class Responder:
    def __init__(self, source: NameSource, signer: OnlineSigner | None, serial: Callable[[], int],
                 policy=None):
        self.source = source
        self.policy = policy
        self.signer = signer
        self.serial = serial
        self._raw, self._raw_by_name, self._sets = {}, {}, {}    # answers, their keys by name read, RRsets
        self._fast = self._fast_answer = None    # fastdeny.FastDeny, fastanswer.FastAnswer: made on first use
        self.absent = None               # name bytes -> True when surely absent (worker.py), or None
        self._soas: dict = {}            # (serial, ttl) -> the SOA RRset: parsing its text each time cost 10%
        # Plain ints for /metrics: counts[17 * tcp + rcode] (rcode 16: dropped unanswered), and misses;
        # hits are the rest, so a cached answer costs one increment (its index is in the cache entry).
        self.counts = [0] * 34
        self.cache_misses = 0

    def invalidate(self, name: str | None = None) -> None:
        """Forget responses that read `name` ("d/example"), or everything."""
        if name is None:
            self._raw.clear()
            self._raw_by_name.clear()
            self._sets.clear()
            return
        for key in self._raw_by_name.pop(name, ()):
            self._raw.pop(key, None)

    # --- packets ------------------------------------------------------------------------------

    def cached(self, wire: bytes, tcp: bool = False) -> bytes | None:
        """The answer kept for this very query (counted), or None. Only queries that passed
        handle()'s checks are ever kept, so none are needed here (dns_server.py's UDP drain)."""
        hit = self._raw.get((tcp, wire[2:]))
        if hit is not None and hit[1] > time.monotonic():
            self.counts[hit[2]] += 1
            return wire[:2] + hit[0]
        return None

    def handle(self, wire: bytes, tcp: bool = False) -> bytes | None:
        if len(wire) < 12 or wire[2] & 0x80:        # no header, or a response: never answer
            return None
        if (out := self.cached(wire, tcp)) is not None:
            return out
        key, now = (tcp, wire[2:]), time.monotonic()
        self.cache_misses += 1
        used = self.source.track = []
        try:
            out = self._respond(wire, tcp)
        except Exception:
            log.exception("internal error answering a query")
            self.counts[17 * tcp + dns.rcode.SERVFAIL] += 1
            return _bare(wire, dns.rcode.SERVFAIL)
        finally:
            self.source.track = None
        counted = 17 * tcp + (16 if out is None else out[3] & 0xF)
        self.counts[counted] += 1
        # Only real answers are kept: junk (FORMERR, REFUSED...) must not be able to fill memory.
        if out is not None and len(wire) <= 512 and out[3] & 0xF in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            if len(self._raw) >= RAW_CACHE_MAX:
                self.invalidate()
            self._raw[key] = (out[2:], now + RAW_CACHE_SECONDS, counted)
            for n in used:
                self._raw_by_name.setdefault(n, set()).add(key)
        return out

    def _respond(self, wire: bytes, tcp: bool) -> bytes | None:
        """fastdeny's NXDOMAIN or fastanswer's records, else the general path. The fast paths never
        both answer (records at the name, or none): a name `absent` says may exist tries records first."""
        denial = fastdeny.parse(wire)
        likely = denial is not None and self.absent is not None and not self.absent(b"d/" + denial[0].lower())
        out = None if denial is None or likely else self._deny(wire, tcp, denial)
        if out is None and (parsed := fastanswer.parse(wire) if denial is None else fastanswer.from_denial(denial)):
            self._fast_answer = self._fast_answer or fastanswer.FastAnswer(self.signer)
            out = self._fast_answer.answer(self, wire, tcp, parsed)
        out = self._deny(wire, tcp, denial) if out is None and likely else out
        return out if out is not None else self._general(wire, tcp)

    def _general(self, wire: bytes, tcp: bool) -> bytes | None:
        try:
            q = dns.message.from_wire(wire)
        except dns.message.ShortHeader:
            return None
        except Exception:
            return _bare(wire, dns.rcode.FORMERR)
        resp = dns.message.make_response(q, our_payload=OUR_PAYLOAD)
        resp.flags &= ~dns.flags.RA
        if q.opcode() != dns.opcode.QUERY:
            resp.set_rcode(dns.rcode.NOTIMP)
            return resp.to_wire()
        if q.edns > 0:
            resp.set_rcode(dns.rcode.BADVERS)
            return resp.to_wire()
        if len(q.question) != 1 or q.answer or q.authority:
            resp.set_rcode(dns.rcode.FORMERR)
            return resp.to_wire()
        question = q.question[0]
        qname, qtype = question.name, question.rdtype
        if question.rdclass != dns.rdataclass.IN or not qname.is_subdomain(ZONE):
            resp.set_rcode(dns.rcode.REFUSED)
            return resp.to_wire()
        if dns.rdatatype.is_metatype(qtype) and qtype != T.ANY or qtype in (T.AXFR, T.IXFR):
            resp.set_rcode(dns.rcode.REFUSED if qtype in (T.AXFR, T.IXFR) else dns.rcode.FORMERR)
            return resp.to_wire()
        do = q.edns >= 0 and bool(q.ednsflags & dns.flags.DO) and self.signer is not None
        if do:
            resp.want_dnssec(True)
        resp.flags |= dns.flags.AA
        self._answer(resp, qname, qtype, do)
        limit = 65535 if tcp else (max(512, min(q.payload, MAX_UDP)) if q.edns >= 0 else 512)
        try:
            return resp.to_wire(max_size=limit)
        except dns.exception.TooBig:
            resp.answer, resp.authority, resp.additional = [], [], []
            resp.flags |= dns.flags.TC
            return resp.to_wire(max_size=limit)

    def _deny(self, wire: bytes, tcp: bool, parsed) -> bytes | None:       # fastdeny.deny, or None
        self._fast = self._fast or fastdeny.FastDeny(self.signer)
        return fastdeny.deny(self, self._fast, wire, tcp, parsed, NEG_TTL)

    # --- answers ------------------------------------------------------------------------------

    def _answer(self, resp, qname: dns.name.Name, qtype: int, do: bool) -> None:
        qname = qname.canonicalize()
        if qname == ZONE:
            return self._apex(resp, qtype, do)
        ans = self.source.resolve(qname.to_text())
        sets = self._with_policy(qname, self._rrsets(ans))
        # A zone cut at or above the name: refer (unless asking the parent side for DS).
        for (owner, rtype), rrset in sets.items():
            if rtype == T.NS and qname.is_subdomain(owner) and not (qname == owner and qtype == T.DS):
                return self._referral(resp, owner, rrset, sets, do)
        for (owner, rtype), rrset in sets.items():
            if rtype == T.DNAME and qname.is_subdomain(owner) and qname != owner:
                return self._dname(resp, qname, rrset, do)
        here = {rtype: rrset for (owner, rtype), rrset in sets.items() if owner == qname}
        if not here:
            if any(owner.is_subdomain(qname) for owner, _ in sets):
                return self._nodata(resp, qname, (), do)      # empty non-terminal
            return self._nxdomain(resp, qname, do)
        if qtype == T.ANY:                                    # RFC 8482: one RRset is enough
            self._add(resp.answer, here[min(here)], do)
            return
        if qtype in here:
            self._add(resp.answer, here[qtype], do)
            return
        if T.CNAME in here:
            return self._cname(resp, here[T.CNAME], qtype, do)
        self._nodata(resp, qname, tuple(here), do)

    def _apex(self, resp, qtype: int, do: bool) -> None:
        if qtype in (T.SOA, T.ANY):
            self._add(resp.answer, self._soa(TTL), do)
        elif qtype == T.NS:
            self._add(resp.answer, dns.rrset.from_text(ZONE, TTL, "IN", "NS", NS_NAME), do)
        elif qtype == T.DNSKEY and self.signer is not None:
            self._add(resp.answer, self.signer.dnskey_rrset(TTL), do)
        else:
            types = APEX_TYPES if self.signer is not None else APEX_TYPES[:2]
            self._nodata(resp, ZONE, types, do)

    def _referral(self, resp, cut: dns.name.Name, ns: dns.rrset.RRset, sets, do: bool) -> None:
        resp.flags &= ~dns.flags.AA
        resp.authority.append(ns)
        if do:
            ds = sets.get((cut, T.DS))
            if ds is not None:
                self._add(resp.authority, ds, True)
            else:                                             # insecure delegation, proven
                self._add(resp.authority, nsec_rrset(cut, successor(cut), (T.NS,), NEG_TTL), True)
        targets = {rd.target for rd in ns}
        for (owner, rtype), rrset in sorted(sets.items()):
            if rtype in (T.A, T.AAAA) and owner in targets:
                resp.additional.append(rrset)

    def _dname(self, resp, qname, dname: dns.rrset.RRset, do: bool) -> None:
        self._add(resp.answer, dname, do)
        try:
            target = qname.relativize(dname.name).concatenate(dname[0].target)
        except dns.name.NameTooLong:
            resp.set_rcode(dns.rcode.YXDOMAIN)
            return
        resp.answer.append(dns.rrset.from_text(qname, dname.ttl, "IN", "CNAME", target.to_text()))

    def _cname(self, resp, cname: dns.rrset.RRset, qtype: int, do: bool) -> None:
        """Answer the CNAME and follow it while it stays inside bit. (as authoritative
        servers do for in-zone targets)."""
        self._add(resp.answer, cname, do)
        seen = {cname.name}
        target = cname[0].target
        for _ in range(MAX_CNAME_CHAIN):
            if not target.is_subdomain(ZONE) or target == ZONE or target in seen:
                return
            seen.add(target)
            sets = self._with_policy(target, self._rrsets(self.source.resolve(target.to_text())))
            if any(t in (T.NS, T.DNAME) and target.is_subdomain(owner) and owner != target for owner, t in sets):
                return          # beyond a cut or a DNAME: the client follows on its own
            found = sets.get((target, qtype))
            if found is not None:
                self._add(resp.answer, found, do)
                return
            nxt = sets.get((target, T.CNAME))
            if nxt is None:
                return
            self._add(resp.answer, nxt, do)
            target = nxt[0].target

    def _nodata(self, resp, qname, types, do: bool) -> None:
        self._add(resp.authority, self._soa(NEG_TTL), do)
        if do:
            self._add(resp.authority, nsec_rrset(qname, successor(qname), types, NEG_TTL), True)

    def _nxdomain(self, resp, qname, do: bool) -> None:
        resp.set_rcode(dns.rcode.NXDOMAIN)
        self._add(resp.authority, self._soa(NEG_TTL), do)
        if not do:
            return
        encloser = qname.parent()
        while encloser != ZONE and not self._exists(encloser):
            encloser = encloser.parent()
        # Deny the next closer name (with all below it, qname included) and the wildcard.
        next_closer = dns.name.Name(qname.labels[-(len(encloser.labels) + 1):])
        wildcard = dns.name.Name((b"*",) + encloser.labels)
        seen = set()
        for denied in (next_closer, wildcard):
            owner = predecessor(denied)
            if owner in seen:
                continue
            seen.add(owner)
            self._add(resp.authority, nsec_rrset(owner, successor_after_subtree(denied), (), NEG_TTL), True)

    def _exists(self, name: dns.name.Name) -> bool:
        ans = self.source.resolve(name.to_text())
        if bool(ans.records) and any(dns.name.from_text(r.owner).is_subdomain(name) for r in ans.records):
            return True
        return self.policy is not None and any(o.is_subdomain(name) for o, _ in self._with_policy(name, {}))

    # --- helpers ------------------------------------------------------------------------------

    def _add(self, section: list, rrset: dns.rrset.RRset, do: bool) -> None:
        section.append(rrset)
        if do:
            section.append(self.signer.sign(rrset))

    def _soa(self, ttl: int) -> dns.rrset.RRset:
        if self.source.track is not None:
            self.source.track.append(SERIAL)
        key = (self.serial(), ttl)
        rrset = self._soas.get(key)
        if rrset is None:
            if len(self._soas) >= 8:
                self._soas.clear()
            rrset = self._soas[key] = soa_rrset(*key)
        return rrset

    def _with_policy(self, qname: dns.name.Name, sets: dict) -> dict:
        """`sets` with the policy's TLSA at qname when another source answers there. For a
        name that is not itself a TLSA owner, the TLSA owner under it (`_443._tcp.` + name)
        is probed too, only so that existence (empty non-terminals) comes out right; a CA
        leaf certifies a host for every port, so any port is as good as 443."""
        if self.policy is None or qname == ZONE:
            return sets
        for owner, rtype in sets:
            if (rtype == T.NS and qname.is_subdomain(owner) or rtype == T.DNAME and qname.is_subdomain(owner)
                    and qname != owner or rtype == T.CNAME and owner == qname):
                return sets                 # the chain has cut, redirected or aliased it
        text = qname.to_text()
        first = qname.labels[0].decode("ascii", "replace")
        if first == "_tcp":
            probe = "_443." + text
        elif first.startswith("_") and len(qname.labels) > 1 and qname.labels[1] == b"_tcp":
            probe = text
        else:
            probe = "_443._tcp." + text
        try:
            alt = self.policy.alternative(probe, "TLSA")
        except Exception:
            log.exception("record source failed for %s", probe)
            return sets
        if alt is None:
            return sets
        if self.source.track is not None:
            self.source.track.extend(alt.names_used)
        owner = dns.name.from_text(probe)
        rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, T.TLSA)
        for r in alt.records:
            try:
                rrset.add(dns.rdata.from_text(dns.rdataclass.IN, T.TLSA, r.rdata), TTL)
            except Exception:
                continue
        if not rrset:
            return sets
        merged = dict(sets)
        merged[(owner, T.TLSA)] = rrset
        return merged

    def _rrsets(self, ans: Answer) -> dict:
        """The answer's records as dnspython RRsets by (owner, type); rdata that dnspython
        will not parse strictly (e.g. a DS digest of the wrong length) is left out."""
        hit = self._sets.get(ans.qname)
        if hit is not None and hit[0] is ans:
            return hit[1]
        sets = rrsets_of((r.owner, r.rtype, r.rdata) for r in ans.records)
        if not sets:
            return sets                   # nothing to keep (and uncached answers never repeat)
        if len(self._sets) >= RAW_CACHE_MAX:
            self._sets.clear()
        self._sets[ans.qname] = (ans, sets)
        return sets


def rrsets_of(records) -> dict:
    """(owner, type, rdata) text triples as dnspython RRsets by (owner, type). Rdata dnspython
    will not parse strictly (e.g. a DS digest of the wrong length) is left out, so the online
    answers and the exported zone leave out the same records."""
    sets: dict = {}
    for owner, rtype, rdata in records:
        try:
            name = dns.name.from_text(owner)
            kind = dns.rdatatype.from_text(rtype)
            rd = dns.rdata.from_text(dns.rdataclass.IN, kind, rdata)
        except Exception:
            continue
        rrset = sets.get((name, kind))
        if rrset is None:
            rrset = sets[(name, kind)] = dns.rrset.RRset(name, dns.rdataclass.IN, kind)
        rrset.add(rd, TTL)
    return sets


def soa_rrset(serial: int, ttl: int = TTL) -> dns.rrset.RRset:
    """bit.'s SOA; the exported zone (zone.py) carries the same one."""
    return dns.rrset.from_text(ZONE, ttl, "IN", "SOA",
                               f"{NS_NAME} hostmaster.{NS_NAME} {serial} 3600 600 86400 {NEG_TTL}")


def _bare(wire: bytes, rcode: int) -> bytes | None:
    """A header-only response when the query itself cannot be parsed."""
    if len(wire) < 12:
        return None
    qid, flags = struct.unpack(">HH", wire[:4])
    flags = 0x8000 | (flags & 0x7900) | (rcode & 0xF)     # QR, opcode and RD copied
    return _HEADER.pack(qid, flags, 0, 0, 0, 0)
