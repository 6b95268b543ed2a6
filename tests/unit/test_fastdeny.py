"""The random-name NXDOMAIN rendered straight to wire (node/resolver/fastdeny.py) says exactly
what the general dnspython path says: the same header, question, records and (one clock,
deterministic Ed25519) the same signatures; queries outside its plain shape are left to the
general path; and the signatures verify."""
from __future__ import annotations

import json

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
from hypothesis import given, settings, strategies as st

from core.names.rules import NameRecord
from core.params import REGTEST
from core.records import NameSource
from node.resolver import fastdeny
from node.resolver.dns_answer import Responder
from node.resolver.dnssec import OnlineSigner
from node.resolver.identity import ResolverKey, ZONE

NOW = 1_800_000_000.0
KEY = ResolverKey(bytes(range(32)))
RECORDS = {b"d/example": NameRecord(b"d/example", json.dumps({"ip": ["192.0.2.1"]}).encode(), b"\0" * 20, 1,
                                    b"\0" * 32, 0)}


def responder(signed: bool = True, absent: bool = False) -> Responder:
    source = NameSource(RECORDS.get, lambda: 7, REGTEST)
    r = Responder(source, OnlineSigner(KEY, clock=lambda: NOW) if signed else None, lambda: 7)
    if absent:                               # a worker's filter of names that exist
        r.absent = lambda name: name not in RECORDS
    return r


LABELS = st.binary(min_size=1, max_size=63).filter(lambda b: b"." not in b and b != b"*") | \
    st.from_regex(r"\A[a-zA-Z0-9-]{1,40}\Z").map(str.encode)
QTYPES = st.sampled_from(["A", "AAAA", "TXT", "MX", "TLSA", "SRV", "NS", "DS", "CNAME", "SOA", "PTR", "SSHFP"])


@settings(max_examples=300, deadline=None)
@given(label=LABELS, qtype=QTYPES, edns=st.sampled_from([None, 512, 1232, 4096]), do=st.booleans(),
       rd=st.booleans(), tcp=st.booleans(), absent=st.booleans())
def test_fastdeny_matches_the_general_path(label, qtype, edns, do, rd, tcp, absent):
    name = dns.name.Name((label, b"bit", b""))
    q = dns.message.make_query(name, qtype, use_edns=0 if edns else False, payload=edns or 512,
                               want_dnssec=do and bool(edns))
    q.flags = dns.flags.RD if rd else 0
    wire = q.to_wire()
    r = responder(absent=absent)
    parsed = fastdeny.parse(wire)
    assert parsed is not None
    used = r.source.track = []
    fast = r._deny(wire, tcp, parsed)
    fast_used, used = used, []
    r.source.track = used
    general = r._general(wire, tcp)
    r.source.track = None
    assert fast is None or fast_used == used          # the same names noted as read (cache drops)
    if fast is None:        # uncompressed, over the UDP size: the general path compresses or truncates
        assert not tcp and edns is not None and edns < 1232 and len(general) <= max(512, edns)
        return
    a, b = dns.message.from_wire(fast), dns.message.from_wire(general)
    assert a.rcode() == b.rcode() == dns.rcode.NXDOMAIN
    assert (a.id, a.flags, a.ednsflags, a.payload, a.edns) == (b.id, b.flags, b.ednsflags, b.payload, b.edns)
    assert a.question == b.question and a.answer == b.answer == [] and a.additional == b.additional
    assert a.authority == b.authority, (a.to_text(), b.to_text())
    assert len(fast) <= (65535 if tcp else max(512, min(edns or 512, 1232)))


def test_the_signatures_verify_and_existing_names_take_the_general_path():
    r = responder()
    q = dns.message.make_query("nosuch.bit.", "A", want_dnssec=True)
    out = dns.message.from_wire(r._deny(q.to_wire(), False, fastdeny.parse(q.to_wire())))
    keys = {ZONE: dns.rrset.from_text(ZONE, 300, "IN", "DNSKEY", KEY.dnskey.to_text())}
    sigs = [s for s in out.authority if s.rdtype == dns.rdatatype.RRSIG]
    assert len(sigs) == 3
    for rrset in out.authority:
        if rrset.rdtype != dns.rdatatype.RRSIG:
            sig = next(s for s in sigs if s.name == rrset.name and s.covers == rrset.rdtype)
            dns.dnssec.validate(rrset, sig, keys, now=NOW)
    q = dns.message.make_query("example.bit.", "A", want_dnssec=True)
    assert r._deny(q.to_wire(), False, fastdeny.parse(q.to_wire())) is None
    assert responder(absent=True)._deny(q.to_wire(), False, fastdeny.parse(q.to_wire())) is None
    assert responder(signed=False)._deny(q.to_wire(), False, fastdeny.parse(q.to_wire())) is None


def test_other_shapes_are_left_to_the_general_path():
    def wire(qname, qtype="A", **kw):
        return dns.message.make_query(qname, qtype, **kw).to_wire()

    plain = wire("x.bit.")
    assert fastdeny.parse(plain) is not None
    for w in (wire("a.x.bit."), wire("x.com."), wire("bit.", "SOA"), wire("x.bit.", "ANY"), wire("x.bit.", "AXFR"),
              wire("*.bit."), wire("x.bit.", use_edns=1), wire("x.bit.", options=[dns.edns.GenericOption(12, b"")]),
              plain[:2] + b"\x80" + plain[3:], plain[:2] + b"\x28" + plain[3:], plain[:-1], plain + b"\x00",
              plain[:5] + b"\x02" + plain[6:], b"", plain[:12]):
        assert fastdeny.parse(w) is None, w
