"""Light clients verify DANE answers (names outside bit.) end to end: a real node serves signed
zones, `dotbit-resolve` (a real process, through a lying proxy that re-signs its lies with the
resolver's own key) validates the DNSSEC evidence from its own trust anchors, and every lie —
a swapped TLSA, a dropped RRSIG, a downgrade to "insecure", a replayed expired signature, keys
the anchor does not name, a missing DS link — is refused with one line naming the check."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time

import dns.dnssec
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from support.dane_zones import TLSA_HEX, ZoneKeys, signed_zone, write_anchors, write_zone
from support.light import light_dir, resolve
from support.harness import NodeProcess, free_port, running
from support.resolver import needs_tools
from core.params import get_params
from node.resolver.dane import DANESource, read_anchors
from core.envelope import open_envelope
from light.client import LightClient
from light.dane import validate
from light.verify import VerifyError, open_answer, verify_answer

ORIGIN, CHILD = "example.com.", "shop.example.com."
TLSA_OWNER = "_443._tcp.www.example.com."
CHILD_TLSA = "CD" * 32
RRSIG, TLSA = dns.rdatatype.RRSIG, dns.rdatatype.TLSA


@pytest.fixture(scope="module")
def node():
    """example.com. (anchored by DS), shop.example.com. (secure through the DS its parent
    signed), plain.test. (no DNSSEC)."""
    d = tempfile.mkdtemp(prefix="dotbit-light-dane-")
    keys, child_keys = ZoneKeys.generate(15), ZoneKeys.generate(13)
    ds = child_keys.ds_line(CHILD).split(" IN DS ")[1]
    zones = {ORIGIN: signed_zone(ORIGIN, keys, f"{CHILD} 3600 IN NS ns.elsewhere.net.\n{CHILD} 3600 IN DS {ds}\n"),
             CHILD: signed_zone(CHILD, child_keys, tlsa=f"3 1 1 {CHILD_TLSA}"),
             "plain.test.": signed_zone("plain.test.", None)}
    args = []
    for origin, z in zones.items():
        args += ["--dane-zone", write_zone(z, os.path.join(d, origin + "zone"))]
    anchors = write_anchors(os.path.join(d, "anchors"), keys.ds_line(ORIGIN))
    n = NodeProcess(os.path.join(d, "node"), "--http-port", str(port := free_port()), *args, "--dane-anchors", anchors)
    n.http_port, n.keys, n.child_keys, n.anchors, n.dir = port, keys, child_keys, anchors, d
    yield from running(n, remove=d)


@pytest.fixture
def cli(module_proxy, key):
    ldir = light_dir()

    def run(*args, anchors=True):
        extra = ["--dane-anchors", module_proxy.anchors] if anchors else []
        return resolve(*args, *extra, url=module_proxy.url, pin=key.fingerprint, light_dir=ldir)
    module_proxy.lie = None
    yield run
    module_proxy.lie = None
    shutil.rmtree(ldir, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def _client_anchors(node, module_proxy):
    # The client's own copy of the anchors: the same DS line the node operator publishes.
    module_proxy.anchors = write_anchors(os.path.join(node.dir, "client-anchors"), node.keys.ds_line(ORIGIN))


def caught(r, words: str) -> None:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "verification failed: dane:" in lines[0], r.stderr
    assert words in lines[0], lines[0]


# --- honest answers ----------------------------------------------------------------------------

def test_verified_tlsa_a_aaaa_from_the_anchor(cli):
    r = cli("www.example.com", "TLSA")             # a host name: its HTTPS port's TLSA
    assert r.returncode == 0, r.stderr
    assert f"{TLSA_OWNER}\tIN\tTLSA\t3 1 1 {TLSA_HEX}" in r.stdout.splitlines()
    assert "trust dnssec-verified" in r.stdout and "our anchor for example.com." in r.stdout
    assert "NOT verified" not in r.stdout
    out = json.loads(cli(TLSA_OWNER, "TLSA", "--json").stdout)
    assert out["source"] == "dane" and out["source_trust"] == "dnssec-verified" and out["trust"] == "dane"
    assert out["records"] == [[TLSA_OWNER, "TLSA", f"3 1 1 {TLSA_HEX}"]] and "height" not in out
    assert "www.example.com.\tIN\tA\t192.0.2.1" in cli("www.example.com").stdout
    r = cli("www.example.com", "all")
    assert r.returncode == 0 and "2001:db8::1" in r.stdout and "192.0.2.1" in r.stdout


def test_child_zone_verified_through_the_signed_ds(cli):
    r = cli("www.shop.example.com", "TLSA")
    assert r.returncode == 0, r.stderr
    assert f"_443._tcp.www.{CHILD}\tIN\tTLSA\t3 1 1 {CHILD_TLSA}" in r.stdout
    assert "dnssec-verified" in r.stdout and f"(zone {CHILD})" in r.stdout


def test_without_an_anchor_covering_the_name_it_is_refused(cli):
    """Without anchors all the client would have is the resolver's word, secure or insecure."""
    r = cli("www.example.com", "TLSA", anchors=False)
    caught(r, "no --dane-anchors given")
    assert r.stdout == ""
    for anchors, why in ((True, "none of your --dane-anchors covers it"), (False, "no --dane-anchors given")):
        r = cli("www.plain.test", "TLSA", anchors=anchors)      # a zone without DNSSEC
        caught(r, why)
        assert r.stdout == ""
    # absence has no NSEC proof: said as the resolver's word, exit 1
    for anchors in (True, False):
        r = cli("nothing.example.com", "A", anchors=anchors)
        assert r.returncode == 1 and "resolver-says-absent" in r.stdout
        assert "give --dane-anchors" not in r.stdout and "no NSEC proof" in r.stdout
        assert ";; NOT checked: no NSEC proof" in r.stdout and ";; checked:" not in r.stdout


# --- lies ---------------------------------------------------------------------------------------

def _evidence(body) -> dns.message.Message:
    return dns.message.from_wire(body["answer"]["alt"][0]["evidence"]["dnssec"])


def _set_evidence(body, msg: dns.message.Message) -> dict:
    body["answer"]["alt"][0]["evidence"]["dnssec"] = msg.to_wire()
    return body


def test_swapped_tlsa_rdata_is_caught(cli, module_proxy):
    forged = "3 1 1 " + "EE" * 32

    def lie(body):
        a = body["answer"]
        a["records"] = a["alt"][0]["records"] = [[r[0], r[1], forged] for r in a["records"]]
        a["tls"] = [[t[0], forged] for t in a["tls"]]
        return body
    module_proxy.lie = lie
    caught(cli("www.example.com", "TLSA"), "is not in an RRset DNSSEC validates")


def test_dropped_rrsig_is_caught(cli, module_proxy):
    def lie(body):
        msg = _evidence(body)
        msg.answer = [r for r in msg.answer if r.rdtype != RRSIG]
        return _set_evidence(body, msg)
    module_proxy.lie = lie
    caught(cli("www.example.com", "TLSA"), "has no RRSIG")

    def lie_dnskey_sig(body):                          # the apex keys' own signature this time
        msg = _evidence(body)
        msg.authority = [r for r in msg.authority if not (r.rdtype == RRSIG and r.covers == dns.rdatatype.DNSKEY)]
        return _set_evidence(body, msg)
    module_proxy.lie = lie_dnskey_sig
    caught(cli("www.example.com", "TLSA"), "the DNSKEY RRset of example.com. has no RRSIG")


def test_insecure_marked_answer_for_an_anchored_zone_is_caught(cli, module_proxy):
    def lie(body):
        body["answer"]["secure"] = body["answer"]["alt"][0]["secure"] = False
        body["answer"]["alt"][0]["evidence"] = {}
        return body
    module_proxy.lie = lie
    caught(cli("www.example.com", "TLSA"), "a downgrade")
    caught(cli("www.shop.example.com", "A"), "a downgrade")        # under the anchor, however deep


def test_replayed_expired_signature_is_caught(cli, module_proxy, node):
    """The TLSA and its RRSIG as a resolver could have kept them from an old signing run:
    signed by the zone's real ZSK, but the window has passed."""
    now = time.time()

    def lie(body):
        msg = _evidence(body)
        tlsa = next(r for r in msg.answer if r.rdtype == TLSA)
        sig = dns.dnssec.sign(tlsa, node.keys.zsk, dns.name.from_text(ORIGIN), node.keys.zsk_dnskey,
                              inception=now - 30 * 86400, expiration=now - 86400)
        msg.answer = [tlsa, dns.rrset.from_rdata(tlsa.name, tlsa.ttl, sig)]
        return _set_evidence(body, msg)
    module_proxy.lie = lie
    caught(cli("www.example.com", "TLSA"), "its signatures have expired")


def test_keys_the_anchor_does_not_name_are_caught(cli, module_proxy):
    """A whole forged zone signed with fresh keys: every signature verifies, under the wrong keys."""
    forged = signed_zone(ORIGIN, ZoneKeys.generate(15), tlsa="3 1 1 " + "EE" * 32)

    def lie(body):
        msg = dns.message.Message()
        for name, rtype in ((TLSA_OWNER, TLSA), (ORIGIN, dns.rdatatype.DNSKEY)):
            node_ = forged.get_node(name)
            section = msg.answer if rtype == TLSA else msg.authority
            for rds in (node_.get_rdataset(dns.rdataclass.IN, rtype),
                        node_.get_rdataset(dns.rdataclass.IN, RRSIG, rtype)):
                section.append(dns.rrset.from_rdata_list(dns.name.from_text(name), rds.ttl, list(rds)))
        a = body["answer"]
        a["records"] = a["alt"][0]["records"] = [[TLSA_OWNER, "TLSA", "3 1 1 " + "EE" * 32]]
        a["tls"] = [[TLSA_OWNER, "3 1 1 " + "EE" * 32]]
        return _set_evidence(body, msg)
    module_proxy.lie = lie
    caught(cli("www.example.com", "TLSA"), "no DNSKEY of example.com. matches our trust anchor")


def test_child_without_its_ds_link_is_caught(cli, module_proxy):
    def lie(body):
        msg = _evidence(body)
        msg.authority = [r for r in msg.authority if r.rdtype != dns.rdatatype.DS and r.covers != dns.rdatatype.DS]
        return _set_evidence(body, msg)
    module_proxy.lie = lie
    caught(cli("www.shop.example.com", "A"), "no signed DS for shop.example.com.")

    def garbage(body):
        body["answer"]["alt"][0]["evidence"]["dnssec"] = b"\x00\x01garbage"
        return body
    module_proxy.lie = garbage
    caught(cli("www.example.com", "A"), "undecodable DNSSEC evidence")


def test_withheld_part_of_a_signed_answer_is_caught(cli, module_proxy):
    def lie(body):
        a = body["answer"]
        a["records"] = a["alt"][0]["records"] = [r for r in a["records"] if r[1] != "AAAA"]
        return body
    module_proxy.lie = lie
    caught(cli("www.example.com", "all"), "leaves out www.example.com. AAAA 2001:db8::1")


def test_answer_for_another_owner_is_caught(cli, module_proxy):
    """Validly signed records, but for another name than the question's."""
    def lie(body):
        a = body["answer"]
        a["records"] = a["alt"][0]["records"] = [["www.example.com.", "A", "192.0.2.1"]]
        a["tls"] = []
        return body
    module_proxy.lie = lie
    r = cli("web.example.com", "A")
    assert r.returncode == 2 and "verification failed: records:" in r.stderr


# --- the library, and the clock -----------------------------------------------------------------

def test_library_client_verifies_and_expiry_is_judged_by_the_callers_clock(node, key):
    anchors = read_anchors(write_anchors(os.path.join(node.dir, "lib-anchors"), node.keys.dnskey_line(ORIGIN)))
    ldir = light_dir()

    async def go():
        async with LightClient(get_params("regtest"), ldir, f"http://127.0.0.1:{node.http_port}", key.fingerprint,
                               dane_anchors=anchors) as client:
            return await client.resolve(TLSA_OWNER, "TLSA"), await client.resolver.domain(TLSA_OWNER, "TLSA")
    try:
        v, raw = asyncio.run(go())
    finally:
        shutil.rmtree(ldir, ignore_errors=True)
    assert v.alt_trust == "dnssec-verified" and [r.rdata for r in v.records] == [f"3 1 1 {TLSA_HEX}"]
    body = open_answer(raw, key.public_key, TLSA_OWNER, "TLSA", time.time())
    wire = body["answer"]["alt"][0]["evidence"]["dnssec"]
    _, valid, _ = validate(wire, anchors, time.time())
    assert (TLSA_OWNER, "TLSA", f"3 1 1 {TLSA_HEX}") in valid
    later = time.time() + 8 * 86400                   # the fixture's signatures last 7 days
    with pytest.raises(VerifyError, match="expired"):
        verify_answer(body, None, -1, get_params("regtest"), later, dane_anchors=anchors)
    assert validate(wire, anchors, later)[1] == set()


def test_bad_anchor_file_and_bad_questions_are_one_line(cli, node, key):
    ldir = light_dir()
    try:
        r = resolve("www.example.com", "TLSA", "--dane-anchors", os.path.join(node.dir, "missing"),
                    url=f"http://127.0.0.1:{node.http_port}", pin=key.fingerprint, light_dir=ldir)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "cannot read trust anchors" in r.stderr
    finally:
        shutil.rmtree(ldir, ignore_errors=True)
    for args in (("www.example.com", "MX"), ("bad..example.com", "A"), ("ex ample.com", "A")):
        r = cli(*args)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "usage:" in r.stderr, (args, r.stderr)


def test_evidence_in_json_envelopes_is_base64(node, key):
    """JSON clients get the same DNS message, as the envelope code renders bytes."""
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/v1/domain/{TLSA_OWNER}?type=TLSA",
                                timeout=10) as resp:
        body = open_envelope(resp.read(), key.public_key)
    msg = dns.message.from_wire(body["answer"]["alt"][0]["evidence"]["dnssec"])
    assert {(r.name.to_text(), r.rdtype) for r in msg.answer} == {(TLSA_OWNER, TLSA), (TLSA_OWNER, RRSIG)}
    assert {r.rdtype for r in msg.authority} == {dns.rdatatype.DNSKEY, RRSIG}


@needs_tools("dnssec-keygen", "dnssec-signzone", "dnssec-dsfromkey")
def test_evidence_from_a_bind_signed_zone_validates(tmp_path):
    """Interop: the same checks pass on a zone BIND signed (KSK+ZSK, NSEC), from the DS line
    BIND prints, and fail once BIND's signatures are past their window."""
    from support.dane_zones import zone_text
    origin = "bind.example."
    (tmp_path / "bind.zone").write_text(zone_text(origin))
    run = lambda *cmd: subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=True,  # noqa: E731
                                      timeout=60).stdout.strip()
    ksk = run("dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", "-f", "KSK", "-n", "ZONE", origin)
    run("dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", "-n", "ZONE", origin)
    run("dnssec-signzone", "-q", "-S", "-K", str(tmp_path), "-e", "+86400", "-o", origin, "-f", "bind.zone.signed",
        "bind.zone")
    anchors_path = write_anchors(str(tmp_path / "anchors"), run("dnssec-dsfromkey", "-2", f"{ksk}.key"))
    ans = DANESource([str(tmp_path / "bind.zone.signed")], anchors_path).lookup(f"_443._tcp.www.{origin}", "TLSA")
    anchors = read_anchors(anchors_path)
    zone, valid, _ = validate(ans.evidence, anchors, time.time())
    assert zone == origin and valid == {(f"_443._tcp.www.{origin}", "TLSA", f"3 1 1 {TLSA_HEX}")}
    assert validate(ans.evidence, anchors, time.time() + 2 * 86400)[1] == set()
    other = read_anchors(write_anchors(str(tmp_path / "other"), ZoneKeys.generate().ds_line(origin)))
    _, valid, why = validate(ans.evidence, other, time.time())
    assert valid == set() and "no DNSKEY of bind.example. matches our trust anchor" in why
