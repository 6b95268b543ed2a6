"""A name's records rendered straight to wire (node/resolver/fastanswer.py) say exactly what the
general dnspython path says: the same header, question, records and (one clock, deterministic
Ed25519) the same signatures, which verify; every other shape (cuts, DNAMEs, CNAME chasing,
NODATA, NXDOMAIN, other record sources, odd packets) is left to the general path."""
from __future__ import annotations

import json

import dns.dnssec
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
from hypothesis import given, settings, strategies as st

from core.names.rules import NameRecord
from core.params import REGTEST
from core.records import NameSource
from node.resolver import fastanswer
from node.resolver.dns_answer import Responder
from node.resolver.dnssec import OnlineSigner
from node.resolver.identity import ResolverKey, ZONE

NOW = 1_800_000_000.0
KEY = ResolverKey(bytes(range(32)))
B64 = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k="     # 32 bytes, base64 (dvalue's form)
TLSA = [3, 1, 1, B64]
VALUES = {
    "example": {"ip": ["192.0.2.1", "192.0.2.2"], "ip6": ["2001:db8::1"], "txt": [["hello", "world"]],
                "mx": [[10, "mail"]], "sshfp": [[4, 2, B64]],
                "map": {"www": {"ip": ["192.0.2.3"]}, "mail": {"ip": ["192.0.2.4"]},
                        "_tcp": {"map": {"_443": {"tls": [TLSA]}}},
                        "sub": {"ns": ["ns1.example.bit."], "ds": [[1, 8, 2, B64]]},
                        "moved": {"translate": "other.bit."}, "alias": {"alias": "www"},
                        "deep": {"map": {"a": {"map": {"b": {"ip": ["192.0.2.5"]}}}}}}},
    "big": {"txt": [["x" * 200] for _ in range(8)]},       # over 512 bytes: compression or TC
    "cut": {"ns": ["ns.cut.bit."], "ip": ["192.0.2.9"]},
    "wild": {"ip6": ["2001:db8::7", "2001:db8::8"], "map": {"*": {"ip": ["192.0.2.7"], "txt": [["w"]]}}},
}
RECORDS = {("d/" + k).encode(): NameRecord(("d/" + k).encode(), json.dumps(v).encode(), b"\0" * 20, 1,
                                           b"\0" * 32, 0) for k, v in VALUES.items()}
OWNERS = ["example", "www.example", "mail.example", "_443._tcp.example", "_tcp.example", "sub.example",
          "x.sub.example", "moved.example", "y.moved.example", "alias.example", "b.a.deep.example",
          "a.deep.example", "nosuch.example", "big", "cut", "www.cut", "nosuch", "deep.example",
          "wild", "any.wild", "a.b.wild"]
QTYPES = ["A", "AAAA", "TXT", "MX", "TLSA", "SRV", "NS", "DS", "CNAME", "SSHFP", "PTR", "DNAME", "SOA"]


def responder(signed: bool = True, policy=None) -> Responder:
    source = NameSource(RECORDS.get, lambda: 7, REGTEST)
    return Responder(source, OnlineSigner(KEY, clock=lambda: NOW) if signed else None, lambda: 7, policy)


def fast(r: Responder, wire: bytes, tcp: bool = False) -> bytes | None:
    return fastanswer.FastAnswer(r.signer).answer(r, wire, tcp, fastanswer.parse(wire))


def mixed_case(text: str, flips: int) -> str:
    return "".join(c.upper() if flips >> (i % 30) & 1 else c for i, c in enumerate(text))


def has_rrset(r: Responder, qname: dns.name.Name, qtype: int) -> bool:
    sets = r._rrsets(r.source.resolve(qname.to_text()))
    return (qname, qtype) in sets and not any(qname.is_subdomain(o) and (t == 2 and not (qtype == 43 and o == qname)
                                                                     or t == 39 and o != qname) for o, t in sets)


@settings(max_examples=400, deadline=None)
@given(owner=st.sampled_from(OWNERS), qtype=st.sampled_from(QTYPES), flips=st.integers(0, 2**30),
       edns=st.sampled_from([None, 512, 1232, 4096]), do=st.booleans(), rd=st.booleans(), tcp=st.booleans())
def test_fastanswer_matches_the_general_path(owner, qtype, flips, edns, do, rd, tcp):
    qname = dns.name.from_text(mixed_case(owner, flips) + ".bit.")
    q = dns.message.make_query(qname, qtype, use_edns=0 if edns else False, payload=edns or 512,
                               want_dnssec=do and bool(edns))
    q.flags = dns.flags.RD if rd else 0
    wire = q.to_wire()
    r = responder()
    parsed = fastanswer.parse(wire)
    assert parsed is not None
    used = r.source.track = []
    fast = fastanswer.FastAnswer(r.signer).answer(r, wire, tcp, parsed)
    fast_used, used = used, []
    r.source.track = used
    general = r._general(wire, tcp)
    r.source.track = None
    kind = dns.rdatatype.from_text(qtype)
    if fast is None:
        small = not tcp and len(general) <= max(512, min(edns or 512, 1232)) and (edns or 512) < 1232
        assert not has_rrset(r, qname.canonicalize(), kind) or small or owner == "big"
        return
    assert fast_used == used                       # the same names noted as read (cache drops)
    a, b = dns.message.from_wire(fast), dns.message.from_wire(general)
    assert a.rcode() == b.rcode() == dns.rcode.NOERROR
    assert (a.id, a.flags, a.ednsflags, a.payload, a.edns) == (b.id, b.flags, b.ednsflags, b.payload, b.edns)
    assert a.question == b.question and a.authority == b.authority == [] and a.additional == b.additional
    assert a.answer == b.answer, (a.to_text(), b.to_text())
    assert len(fast) <= (65535 if tcp else max(512, min(edns or 512, 1232)))
    if do and edns:
        keys = {ZONE: dns.rrset.from_text(ZONE, 300, "IN", "DNSKEY", KEY.dnskey.to_text())}
        data, sig = sorted(a.answer, key=lambda s: s.rdtype == dns.rdatatype.RRSIG)
        assert sig.rdtype == dns.rdatatype.RRSIG
        dns.dnssec.validate(data, sig, keys, now=NOW)


def test_the_common_shapes_take_the_fast_path():
    r = responder()
    for qname, qtype in [("example.bit.", "A"), ("WWW.Example.bit.", "A"), ("example.bit.", "TXT"),
                         ("_443._tcp.example.bit.", "TLSA"), ("b.a.deep.example.bit.", "A"),
                         ("sub.example.bit.", "DS"), ("alias.example.bit.", "CNAME")]:
        wire = dns.message.make_query(qname, qtype, want_dnssec=True).to_wire()
        out = fast(r, wire)
        assert out is not None and dns.message.from_wire(out).answer, (qname, qtype)
        sent = r.handle(wire)          # what the Responder sends: the same bytes up to record order
        assert len(sent) == len(out) and dns.message.from_wire(sent) == dns.message.from_wire(out)


def test_other_shapes_and_sources_are_left_to_the_general_path():
    r = responder()
    for qname, qtype in [("x.sub.example.bit.", "A"), ("y.moved.example.bit.", "A"), ("alias.example.bit.", "A"),
                         ("example.bit.", "SRV"), ("nosuch.bit.", "A"), ("www.cut.bit.", "A"), ("cut.bit.", "A")]:
        wire = dns.message.make_query(qname, qtype, want_dnssec=True).to_wire()
        assert fast(r, wire) is None, (qname, qtype)
    wire = dns.message.make_query("example.bit.", "A", want_dnssec=True).to_wire()
    assert fast(responder(signed=False), wire) is None

    class WithCA:
        sources = {"chain": None, "ca": None}
    assert fast(responder(policy=WithCA()), wire) is None


def test_odd_packets_are_not_parsed():
    def wire(qname, qtype="A", **kw):
        return dns.message.make_query(qname, qtype, **kw).to_wire()

    plain = wire("www.x.bit.")
    assert fastanswer.parse(plain) is not None
    pointer = plain[:12] + b"\x03www\xc0\x0c" + plain[-4:]
    for w in (wire("x.com."), wire("bit.", "SOA"), wire("x.bit.", "ANY"), wire("x.bit.", "AXFR"), wire("*.x.bit."),
              wire("a\\.b.x.bit."), wire("x.BIT."), wire("x.bit.", use_edns=1), wire("x.bit.", "OPT"),
              wire("x.bit.", options=[dns.edns.GenericOption(12, b"")]), wire("x.bit.", "TYPE300"),
              plain[:2] + b"\x80" + plain[3:], plain[:2] + b"\x28" + plain[3:], plain[:-1], plain + b"\x00",
              plain[:5] + b"\x02" + plain[6:], b"", plain[:12], pointer, plain[:12] + b"\x05ab",
              plain[:-1] + b"\x03"):
        assert fastanswer.parse(w) is None, w


@settings(max_examples=300, deadline=None)
@given(owner=st.sampled_from(["example", "www.example", "nosuch", "gone", "big", "cut", "wild", "any.wild", "a_b"]),
       qtype=st.sampled_from(["A", "AAAA", "TXT", "NS", "DS", "MX", "SOA"]), flips=st.integers(0, 2**30),
       edns=st.sampled_from([None, 512, 1232]), do=st.booleans(), tcp=st.booleans())
def test_a_worker_trying_records_first_answers_the_same_bytes(owner, qtype, flips, edns, do, tcp):
    """A worker knows which names may exist (Responder.absent) and tries a known name's records
    before the NXDOMAIN path: the same bytes and the same names noted as read (cache drops) as
    the in-process order, for names that exist, expired (known, yet denied), or never were
    registered."""
    records = dict(RECORDS)
    records[b"d/gone"] = NameRecord(b"d/gone", b'{"ip":["192.0.2.66"]}', b"\0" * 20, -100, b"\0" * 32, 0)
    known = set(records)
    wire = dns.message.make_query(mixed_case(owner, flips) + ".bit.", qtype, use_edns=0 if edns else False,
                                  payload=edns or 512, want_dnssec=do and bool(edns)).to_wire()
    answers = []
    for absent in (None, lambda name: name not in known):
        r = Responder(NameSource(records.get, lambda: 7, REGTEST), OnlineSigner(KEY, clock=lambda: NOW), lambda: 7)
        r.absent = absent
        answers.append((r.handle(wire, tcp), sorted(r._raw_by_name), r.counts))
    assert answers[0] == answers[1]
    assert answers[0][0] is not None


def test_name_source_answers_hold_the_interpreters_records_sorted_once():
    """NameSource takes records_for_qname's records as they come (sorted, each once) when no
    minimalT TXT is added: the same as sorting them again."""
    from core.names.dvalue import records_for_qname
    source = NameSource(RECORDS.get, lambda: 7, REGTEST)
    for owner in OWNERS + ["_udp.example", "_minimalt._udp.example"]:
        q = owner + ".bit."
        got = source.resolve(q)
        res = records_for_qname(q, lambda n: source.value(n))
        assert got.records == tuple(sorted(set(res.records), key=lambda r: (r.owner, r.rtype, r.rdata)))
        assert got.names_used == res.names_used and got.qname == q


@settings(max_examples=1000, deadline=None)
@given(label=st.binary(min_size=0, max_size=64) | st.sampled_from([b"example", b"Ex-am_ple", b"*", b"a.b"]),
       bit=st.sampled_from([b"bit", b"BIT", b"bIt"]), qtype=st.integers(0, 300), qclass=st.sampled_from([1, 3]),
       opt=st.sampled_from([b"", b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x00", b"\x00\x00\x29\x04\xd0\x00\x01\x00\x00\x00\x00",
                            b"\x00\x00\x29\x02\x00\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x00"]),
       flags=st.sampled_from([0, 0x0100, 0x8000, 0x2800]), cut=st.integers(0, 3), flip=st.tuples(st.integers(0, 99),
                                                                                                 st.integers(0, 255)))
def test_a_denials_parse_gives_the_answers_parse(label, bit, qtype, qclass, opt, flags, cut, flip):
    """fastanswer.from_denial(fastdeny.parse(wire)) is fastanswer.parse(wire) whenever the
    denial parses (the Responder then reads the packet once), over odd labels, cases, types,
    OPT records, flags, cut packets and a flipped byte."""
    from node.resolver import fastdeny
    wire = (b"\x12\x34" + flags.to_bytes(2, "big") + b"\x00\x01\x00\x00\x00\x00" + (b"\x00\x01" if opt else b"\x00\x00")
            + bytes([len(label)]) + label + b"\x03" + bit + b"\x00" + qtype.to_bytes(2, "big") + qclass.to_bytes(2, "big")
            + opt)
    wire = wire[:len(wire) - cut] if cut < 3 else wire
    if flip[0] < len(wire) and flip[0] % 3 == 0:
        wire = wire[:flip[0]] + bytes([flip[1]]) + wire[flip[0] + 1:]
    denial = fastdeny.parse(wire)
    if denial is not None:
        assert fastanswer.from_denial(denial) == fastanswer.parse(wire)
