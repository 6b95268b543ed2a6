"""The DNS side of the resolver on a real node process: every record type over UDP and TCP
to dnspython and to dig/kdig, negative answers, referrals, EDNS truncation, error rcodes,
and a name update changing the answer within one block."""
from __future__ import annotations

import socket
import struct

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from support.resolver import MINIMALT_TXT, TLS_DIGEST, needs_tools, tool_query


# (qname, type, expected rdata texts in the answer section)
CASES = [
    ("example.bit.", "A", {"192.0.2.1", "192.0.2.2"}),
    ("example.bit.", "AAAA", {"2001:db8::1"}),
    ("example.bit.", "MX", {"10 mail.example.bit."}),
    ("example.bit.", "TXT", {'"hello world"'}),                    # minimalT: only at _minimalt._udp
    ("example.bit.", "SSHFP", {"1 2 " + TLS_DIGEST.hex()}),
    ("www.example.bit.", "A", {"192.0.2.3"}),
    ("_443._tcp.example.bit.", "TLSA", {"3 1 1 " + TLS_DIGEST.hex()}),
    ("_sip._udp.example.bit.", "SRV", {"10 20 5060 sip.example.bit."}),
    ("_minimalt._udp.example.bit.", "TXT", {MINIMALT_TXT}),
    ("alias.example.bit.", "CNAME", {"www.example.bit."}),
    ("anything.example.bit.", "A", {"192.0.2.99"}),                 # map "*"
    ("old.example.bit.", "DNAME", {"example.bit."}),
    ("deleg.bit.", "DS", {"12345 8 2 " + TLS_DIGEST.hex()}),
    ("bit.", "NS", {"localhost."}),
]


def ask(node, qname, qtype, tcp=False, **kw):
    q = dns.message.make_query(qname, qtype, **kw)
    q.flags &= ~dns.flags.RD
    fn = dns.query.tcp if tcp else dns.query.udp
    return fn(q, "127.0.0.1", port=node.dns_port, timeout=5)


def rdatas(resp, qname, qtype):
    out = set()
    for rrset in resp.answer:
        if rrset.name.to_text() == qname and rrset.rdtype == dns.rdatatype.from_text(qtype):
            out |= {rd.to_text() for rd in rrset}
    return out


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_every_record_type_dnspython(node, tcp):
    for qname, qtype, want in CASES:
        for do in (False, True):
            r = ask(node, qname, qtype, tcp, want_dnssec=do)
            assert r.rcode() == dns.rcode.NOERROR, (qname, qtype)
            assert r.flags & dns.flags.AA
            assert rdatas(r, qname, qtype) == {w.lower() if qtype in ("SSHFP", "TLSA", "DS") else w for w in want}, (qname, qtype, r.to_text())
            sigs = [s for s in r.answer if s.rdtype == dns.rdatatype.RRSIG]
            assert bool(sigs) == do, (qname, qtype)


def test_cname_dname_and_chase(node):
    r = ask(node, "alias.example.bit.", "A")
    assert rdatas(r, "alias.example.bit.", "CNAME") == {"www.example.bit."}
    assert rdatas(r, "www.example.bit.", "A") == {"192.0.2.3"}          # followed inside bit.
    r = ask(node, "www.old.example.bit.", "A")
    assert rdatas(r, "old.example.bit.", "DNAME") == {"example.bit."}
    assert rdatas(r, "www.old.example.bit.", "CNAME") == {"www.example.bit."}
    r = ask(node, "cn.bit.", "AAAA")
    assert rdatas(r, "cn.bit.", "CNAME") == {"example.bit."} and rdatas(r, "example.bit.", "AAAA") == {"2001:db8::1"}


def test_negative_answers(node):
    r = ask(node, "nosuchname.bit.", "A", want_dnssec=True)
    assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AA and not r.answer
    types = {s.rdtype for s in r.authority}
    assert types == {dns.rdatatype.SOA, dns.rdatatype.NSEC, dns.rdatatype.RRSIG}
    r = ask(node, "www.example.bit.", "MX")                               # NODATA
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert [s.rdtype for s in r.authority] == [dns.rdatatype.SOA]
    r = ask(node, "_tcp.example.bit.", "A")                               # empty non-terminal
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    r = ask(node, "a.b.c.nosuchname.bit.", "TXT")
    assert r.rcode() == dns.rcode.NXDOMAIN


def test_apex_and_any(node):
    r = ask(node, "bit.", "SOA")
    assert r.answer[0].rdtype == dns.rdatatype.SOA and r.flags & dns.flags.AA
    r = ask(node, "bit.", "DNSKEY")
    assert r.answer[0][0].algorithm == 15
    r = ask(node, "example.bit.", "ANY")                                  # RFC 8482: minimal
    assert r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1


def test_referral_with_ds_and_glue(node):
    for do in (False, True):
        r = ask(node, "www.deleg.bit.", "A", want_dnssec=do)
        assert r.rcode() == dns.rcode.NOERROR and not r.answer and not r.flags & dns.flags.AA
        ns = [s for s in r.authority if s.rdtype == dns.rdatatype.NS][0]
        assert {rd.to_text() for rd in ns} == {"ns1.deleg.bit.", "ns.elsewhere.net."}
        assert {(s.name.to_text(), rd.to_text()) for s in r.additional for rd in s} == {("ns1.deleg.bit.", "192.0.2.53")}
        kinds = {s.rdtype for s in r.authority}
        assert (dns.rdatatype.DS in kinds) == do
    r = ask(node, "insecure.bit.", "A", want_dnssec=True)                 # proven insecure delegation
    nsec = [s for s in r.authority if s.rdtype == dns.rdatatype.NSEC][0]
    assert nsec.name.to_text() == "insecure.bit." and dns.rdatatype.DS not in _bitmap(nsec[0])


def _bitmap(nsec_rd):
    out = set()
    for window, bits in nsec_rd.windows:
        for i, byte in enumerate(bits):
            for j in range(8):
                if byte & (0x80 >> j):
                    out.add(window * 256 + i * 8 + j)
    return out


def test_edns_truncation_and_tcp_fallback(node):
    q = dns.message.make_query("big.bit.", "TXT", use_edns=False)
    r = dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5)
    assert r.flags & dns.flags.TC and not r.answer
    q = dns.message.make_query("big.bit.", "TXT", use_edns=0, payload=4096)
    r = dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 4 and r.payload == 1232
    q = dns.message.make_query("big.bit.", "TXT", use_edns=0, payload=512)
    r = dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5)
    assert r.flags & dns.flags.TC
    r = dns.query.tcp(q, "127.0.0.1", port=node.dns_port, timeout=5)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 4


def test_error_rcodes(node):
    assert ask(node, "example.com.", "A").rcode() == dns.rcode.REFUSED
    assert ask(node, "bit.", "AXFR", tcp=True).rcode() == dns.rcode.REFUSED
    q = dns.message.make_query("example.bit.", "A", use_edns=1)
    assert dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5).rcode() == dns.rcode.BADVERS
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        # header claims one question, none follows: FORMERR with the ID echoed
        s.sendto(struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0), ("127.0.0.1", node.dns_port))
        data, _ = s.recvfrom(4096)
        assert data[:2] == b"\x12\x34" and data[2] & 0x80 and data[3] & 0xF == dns.rcode.FORMERR
        # two questions: FORMERR
        q = dns.message.make_query("example.bit.", "A")
        q.question.append(q.question[0])
        s.sendto(q.to_wire(), ("127.0.0.1", node.dns_port))
        assert dns.message.from_wire(s.recvfrom(4096)[0]).rcode() == dns.rcode.FORMERR


@needs_tools("dig", "kdig")
@pytest.mark.parametrize("tool", ["dig", "kdig"])
@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
def test_every_record_type_dig_kdig(node, tool, transport):
    for qname, qtype, want in CASES:
        out = tool_query(tool, node.dns_port, qname, qtype, transport, "+dnssec")
        assert "NOERROR" in out, (tool, qname, qtype, out)
        answer = [line.split(None, 4) for line in out.splitlines()
                  if line and not line.startswith(";") and len(line.split(None, 4)) == 5]
        got = {parts[4] for parts in answer if parts[0] == qname and parts[3] == qtype}
        norm = lambda s: "".join(s.replace("(", "").replace(")", "").split()).lower()  # noqa: E731 (dig splits hex)
        assert {norm(g) for g in got} == {norm(w) for w in want}, (tool, qname, qtype, out)
        assert any(parts[3] == "RRSIG" for parts in answer), (tool, qname, qtype)
    out = tool_query(tool, node.dns_port, "nosuchname.bit.", "A", transport)
    assert "NXDOMAIN" in out


def test_name_update_visible_within_one_block(node):
    assert rdatas(ask(node, "www.example.bit.", "A"), "www.example.bit.", "A") == {"192.0.2.3"}
    assert ask(node, "new.bit.", "A").rcode() == dns.rcode.NXDOMAIN
    node.update(b"d/cn", {"ip": ["198.51.100.7"], "map": {"www": {"ip": ["198.51.100.8"]}}})
    r = ask(node, "cn.bit.", "A", want_dnssec=True)
    assert rdatas(r, "cn.bit.", "A") == {"198.51.100.7"}
    assert rdatas(ask(node, "www.cn.bit.", "A"), "www.cn.bit.", "A") == {"198.51.100.8"}


def test_new_registration_replaces_cached_nxdomain(node):
    q = dns.message.make_query("fresh.bit.", "A", want_dnssec=True)
    for _ in range(2):                                                     # now cached
        assert dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5).rcode() == dns.rcode.NXDOMAIN
    node.register({b"d/fresh": {"ip": ["203.0.113.5"]}})
    r = dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5)
    assert r.rcode() == dns.rcode.NOERROR and rdatas(r, "fresh.bit.", "A") == {"203.0.113.5"}
