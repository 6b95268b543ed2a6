"""The DANE source: zones outside bit. served only as far as DNSSEC vouches for them (secure,
insecure, bogus), over the signed HTTP API of a real node; and `dotbit-wallet tlsa`, checked
against openssl and against the d/ interpreter."""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from support.dane_zones import TLSA_HEX, ZoneKeys, drop_rrsig, flip_rrsig, signed_zone, write_anchors, write_zone
from support.harness import NodeProcess, free_port, run_cli, running
from support.resolver import needs_tools
from core.names.dvalue import Record, lookup_records
from node.resolver.dane import BOGUS, INSECURE, SECURE, DANESource
from core.envelope import open_envelope

ORIGIN = "example.com."
TLSA_OWNER = "_443._tcp.www.example.com."
needs_openssl = needs_tools("openssl")      # certificates, and the reference TLSA digests


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="dotbit-dane-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module", params=[15, 13], ids=["ed25519", "ecdsa"])
def keys(request):
    return ZoneKeys.generate(request.param)


def source(tmp, zones: dict, anchors: list[str] | None, **kw) -> DANESource:
    """zones: file name -> dns.zone.Zone; anchors: lines (None: no anchor file)."""
    paths = [write_zone(z, os.path.join(tmp, name)) for name, z in zones.items()]
    anchor_path = write_anchors(os.path.join(tmp, "anchors"), *anchors) if anchors is not None else None
    return DANESource(paths, anchor_path, **kw)


# --- the loader, in-process ------------------------------------------------------------------------

def test_secure_zone_serves_validated_rrsets(tmp, keys):
    src = source(tmp, {"ex.zone": signed_zone(ORIGIN, keys)}, [keys.ds_line(ORIGIN)])
    assert src.zones[ORIGIN].status == SECURE and not src.zones[ORIGIN].dropped
    ans = src.lookup(TLSA_OWNER, "TLSA")
    assert ans.source == "dane" and ans.secure and ans.names_used == ()
    assert ans.records == (Record(TLSA_OWNER, "TLSA", f"3 1 1 {TLSA_HEX}"),)
    assert src.lookup("WWW.Example.COM", "aaaa").records == (Record("www.example.com.", "AAAA", "2001:db8::1"),)
    assert {r.rtype for r in src.lookup("www.example.com.", "ANY").records} == {"A", "AAAA"}
    # a CNAME answers any served type at its owner, as in DNS
    assert src.lookup("web.example.com.", "TLSA").records == (Record("web.example.com.", "CNAME", "www.example.com."),)
    assert src.lookup("www.example.com.", "MX") is None              # not a type this source serves
    assert src.lookup("nothing.example.com.", "A") is None
    assert src.lookup("www.example.org.", "A") is None              # no zone of ours
    assert src.lookup("www.example.bit.", "A") is None


def test_dnskey_anchor_and_anchor_file_as_dnssec_anchor_prints_it(tmp, keys):
    """A DNSKEY anchor works like a DS; the file may hold other zones' anchors (e.g. the
    bit. lines `dotbit-node dnssec-anchor` prints) and comments."""
    other = ZoneKeys.generate()
    lines = [other.dnskey_line("bit."), other.ds_line("bit."), "; resolver key fingerprint: 00",
             keys.dnskey_line(ORIGIN)]
    src = source(tmp, {"ex.zone": signed_zone(ORIGIN, keys)}, lines)
    assert src.zones[ORIGIN].status == SECURE and src.lookup(TLSA_OWNER, "TLSA").secure


def test_flipped_tlsa_rrsig_is_bogus_and_never_served(tmp, keys):
    zone = signed_zone(ORIGIN, keys)
    flip_rrsig(zone, TLSA_OWNER, "TLSA")
    src = source(tmp, {"ex.zone": zone}, [keys.ds_line(ORIGIN)])
    assert src.lookup(TLSA_OWNER, "TLSA") is None
    assert src.lookup(TLSA_OWNER, "ANY") is None
    assert src.zones[ORIGIN].dropped and "TLSA" in src.zones[ORIGIN].dropped[0]
    assert src.lookup("www.example.com.", "A").secure                # the intact RRsets still are
    assert any("TLSA" in p for p in src.reload())                  # reported on every load


def test_missing_rrsig_is_bogus(tmp, keys):
    zone = signed_zone(ORIGIN, keys)
    drop_rrsig(zone, TLSA_OWNER, "TLSA")
    src = source(tmp, {"ex.zone": zone}, [keys.ds_line(ORIGIN)])
    assert src.lookup(TLSA_OWNER, "TLSA") is None and "no RRSIG" in src.zones[ORIGIN].dropped[0]


def test_broken_apex_or_wrong_anchor_makes_the_whole_zone_bogus(tmp, keys):
    zone = signed_zone(ORIGIN, keys)
    flip_rrsig(zone, ORIGIN, "DNSKEY")
    src = source(tmp, {"ex.zone": zone}, [keys.ds_line(ORIGIN)])
    assert src.zones[ORIGIN].status == BOGUS
    assert all(src.lookup(n, "ANY") is None for n in (TLSA_OWNER, "www.example.com."))
    # signed with other keys than the anchor names (a forged zone): bogus too
    src = source(tmp, {"ex.zone": signed_zone(ORIGIN, ZoneKeys.generate())}, [keys.ds_line(ORIGIN)])
    assert src.zones[ORIGIN].status == BOGUS and "matches a trust anchor" in src.zones[ORIGIN].reason
    assert src.lookup(TLSA_OWNER, "TLSA") is None
    # an anchored zone whose file lost its signatures is not downgraded to insecure
    src = source(tmp, {"ex.zone": signed_zone(ORIGIN, None)}, [keys.ds_line(ORIGIN)])
    assert src.zones[ORIGIN].status == BOGUS and src.lookup(TLSA_OWNER, "TLSA") is None


def test_expired_and_not_yet_valid_signatures_are_rejected(tmp, keys):
    now = time.time()
    expired = signed_zone(ORIGIN, keys, inception=now - 10 * 86400, expiration=now - 86400)
    src = source(tmp, {"ex.zone": expired}, [keys.ds_line(ORIGIN)])
    assert src.zones[ORIGIN].status == BOGUS and "expired" in src.zones[ORIGIN].reason
    assert src.lookup(TLSA_OWNER, "TLSA") is None
    future = signed_zone(ORIGIN, keys, inception=now + 86400, expiration=now + 10 * 86400)
    assert source(tmp, {"ex.zone": future}, [keys.ds_line(ORIGIN)]).lookup(TLSA_OWNER, "TLSA") is None


def test_signatures_expiring_while_loaded_stop_being_served(tmp, keys):
    now = [time.time()]
    zone = signed_zone(ORIGIN, keys, expiration=now[0] + 3600)
    src = source(tmp, {"ex.zone": zone}, [keys.ds_line(ORIGIN)], clock=lambda: now[0])
    assert src.lookup(TLSA_OWNER, "TLSA") is not None
    now[0] += 3601                                                  # no reload in between
    assert src.lookup(TLSA_OWNER, "TLSA") is None


def test_zone_without_anchor_is_served_marked_insecure(tmp, keys):
    other = ZoneKeys.generate()
    zones = {"ex.zone": signed_zone(ORIGIN, keys), "plain.zone": signed_zone("plain.test.", None)}
    src = source(tmp, zones, [other.ds_line("example.net.")])
    assert src.zones[ORIGIN].status == INSECURE and src.zones["plain.test."].status == INSECURE
    ans = src.lookup(TLSA_OWNER, "TLSA")
    assert ans.secure is False and ans.records[0].rdata == f"3 1 1 {TLSA_HEX}"
    assert src.lookup("_443._tcp.www.plain.test.", "TLSA").secure is False
    # and with no anchor file at all
    assert source(tmp, zones, None).lookup(TLSA_OWNER, "TLSA").secure is False


def test_child_zone_secure_through_a_validated_ds_in_its_parent(tmp, keys):
    child_keys = ZoneKeys.generate()
    child = "shop.example.com."
    ds = child_keys.ds_line(child).split(" IN DS ")[1]
    parent = signed_zone(ORIGIN, keys, f"{child} 3600 IN NS ns.elsewhere.net.\n{child} 3600 IN DS {ds}\n"
                                       f"www.{child} 3600 IN A 192.0.2.66\n")
    zones = {"a-child.zone": signed_zone(child, child_keys), "parent.zone": parent}
    src = source(tmp, zones, [keys.ds_line(ORIGIN)])
    assert src.zones[child].status == SECURE
    # the child's own data is served, the parent's stale copy below the cut is not
    assert src.lookup(f"www.{child}", "A").records == (Record(f"www.{child}", "A", "192.0.2.1"),)
    assert src.lookup(f"_443._tcp.www.{child}", "TLSA").secure
    # the parent's DS signature bounds the child: once it expires the child is not served
    now = [time.time()]
    short = signed_zone(ORIGIN, keys, f"{child} 3600 IN NS ns.elsewhere.net.\n{child} 3600 IN DS {ds}\n",
                        expiration=now[0] + 600)
    src = source(tmp, {"a-child.zone": signed_zone(child, child_keys), "parent.zone": short},
                 [keys.ds_line(ORIGIN)], clock=lambda: now[0])
    assert src.lookup(f"www.{child}", "A") is not None
    now[0] += 601
    assert src.lookup(f"www.{child}", "A") is None
    alone = source(tmp, {"parent.zone": parent}, [keys.ds_line(ORIGIN)])   # data below a cut is not ours
    assert alone.lookup(f"www.{child}", "A") is None and alone.lookup("www.example.com.", "A").secure
    # a child whose keys the parent's DS does not name: bogus
    zones["a-child.zone"] = signed_zone(child, ZoneKeys.generate())
    assert source(tmp, zones, [keys.ds_line(ORIGIN)]).zones[child].status == BOGUS
    # under a secure parent without a DS for it, it cannot be proven insecure: refused
    zones["parent.zone"] = signed_zone(ORIGIN, keys, f"{child} 3600 IN NS ns.elsewhere.net.\n")
    src = source(tmp, zones, [keys.ds_line(ORIGIN)])
    assert src.zones[child].status == BOGUS and src.lookup(f"www.{child}", "A") is None


def test_bad_files_are_logged_never_raised(tmp, keys):
    good = write_zone(signed_zone(ORIGIN, keys), os.path.join(tmp, "good.zone"))
    garbage = os.path.join(tmp, "garbage.zone")
    with open(garbage, "wb") as f:
        f.write(b"\xff\xfe not a zone {{{\n")
    anchors = write_anchors(os.path.join(tmp, "anchors"), keys.ds_line(ORIGIN))
    src = DANESource([os.path.join(tmp, "missing.zone"), garbage, good], anchors)
    problems = src.reload()
    assert len(problems) == 2 and "cannot read zone" in problems[0] and "bad zone file" in problems[1]
    assert src.lookup(TLSA_OWNER, "TLSA").secure                   # the good zone still loads
    # anchors that cannot be read: nothing is served (never downgraded to insecure)
    for content in (None, "example.com. IN A 192.0.2.1\n", "example.com. IN DS nonsense\n"):
        bad = os.path.join(tmp, "bad-anchors")
        if content is not None:
            with open(bad, "w") as f:
                f.write(content)
        elif os.path.exists(bad):
            os.unlink(bad)
        src = DANESource([good], bad)
        assert src.zones == {} and src.lookup(TLSA_OWNER, "TLSA") is None


def test_zone_origin_from_origin_directive_or_first_owner(tmp, keys):
    from support.dane_zones import zone_text
    body = zone_text(ORIGIN)
    relative = body.replace(".example.com.", "").replace("example.com.", "@")
    for name, text in (("ttl-first", "$TTL 300\n" + body), ("origin", f"$ORIGIN {ORIGIN}\n" + relative)):
        with open(os.path.join(tmp, name), "w") as f:
            f.write(text)
    src = DANESource([os.path.join(tmp, "ttl-first"), os.path.join(tmp, "origin")])
    assert src.zones[ORIGIN].status == INSECURE and src.lookup(TLSA_OWNER, "TLSA") is not None
    with open(os.path.join(tmp, "no-origin"), "w") as f:
        f.write(relative)
    (problem,) = DANESource([os.path.join(tmp, "no-origin")]).reload()
    assert "no $ORIGIN" in problem


def test_reload_swaps_in_the_new_zone(tmp, keys):
    path = os.path.join(tmp, "ex.zone")
    src = source(tmp, {"ex.zone": signed_zone(ORIGIN, keys)}, [keys.ds_line(ORIGIN)])
    new_hex = "AB" * 32
    zone = signed_zone(ORIGIN, keys, f"_25._tcp.mail.{ORIGIN} 3600 IN TLSA 3 1 1 {new_hex}\n")
    write_zone(zone, path)
    assert src.lookup(f"_25._tcp.mail.{ORIGIN}", "TLSA") is None
    assert src.reload() == []
    assert src.lookup(f"_25._tcp.mail.{ORIGIN}", "TLSA").records[0].rdata == f"3 1 1 {new_hex}"


@needs_tools("dnssec-keygen", "dnssec-signzone", "dnssec-dsfromkey")
def test_zone_signed_by_bind_validates(tmp):
    """Interop: a zone signed by BIND's dnssec-signzone (KSK+ZSK, NSEC) with the DS BIND prints."""
    from support.dane_zones import zone_text
    origin = "bind.example."
    with open(os.path.join(tmp, "bind.zone"), "w") as f:
        f.write(zone_text(origin))
    run = lambda *cmd: subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=True,  # noqa: E731
                                      timeout=60).stdout.strip()
    ksk = run("dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", "-f", "KSK", "-n", "ZONE", origin)
    run("dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", "-n", "ZONE", origin)
    run("dnssec-signzone", "-q", "-S", "-K", tmp, "-o", origin, "-f", "bind.zone.signed", "bind.zone")
    ds = run("dnssec-dsfromkey", "-2", f"{ksk}.key")
    src = DANESource([os.path.join(tmp, "bind.zone.signed")], write_anchors(os.path.join(tmp, "a"), ds))
    assert src.zones[origin].status == SECURE and not src.zones[origin].dropped
    assert src.lookup(f"_443._tcp.www.{origin}", "TLSA").records[0].rdata == f"3 1 1 {TLSA_HEX}"
    # and BIND's own checker agrees with the verdict on our dnspython-signed zones
    keys = ZoneKeys.generate(13)
    good = write_zone(signed_zone(ORIGIN, keys), os.path.join(tmp, "good.zone"))
    zone = signed_zone(ORIGIN, keys)
    flip_rrsig(zone, TLSA_OWNER, "TLSA")
    bad = write_zone(zone, os.path.join(tmp, "bad.zone"))
    verify = lambda p: subprocess.run(["dnssec-verify", "-o", ORIGIN, p], capture_output=True,  # noqa: E731
                                      timeout=60).returncode
    assert verify(good) == 0 and verify(bad) != 0


# --- over HTTP, on a real node -------------------------------------------------------------------

@pytest.fixture(scope="module")
def dane_node():
    """A node serving four zones: secure, one with a flipped TLSA RRSIG, one expired, one
    without an anchor; the TLSA of the secure one comes from `dotbit-wallet tlsa`."""
    d = tempfile.mkdtemp(prefix="dotbit-dane-node-")
    cert = make_cert(d)
    line = wallet("tlsa", "--cert", cert, "--name", "www.example.com").stdout.splitlines()[-1]
    keys = {o: ZoneKeys.generate(alg) for o, alg in (("example.com.", 15), ("broken.org.", 13), ("expired.net.", 15))}
    now = time.time()
    assert line.startswith("_443._tcp.www.example.com. IN TLSA ")
    zones = {"example.com.": signed_zone("example.com.", keys["example.com."], tlsa=line.split(" IN TLSA ")[1]),
             "broken.org.": signed_zone("broken.org.", keys["broken.org."]),
             "expired.net.": signed_zone("expired.net.", keys["expired.net."], inception=now - 9 * 86400,
                                         expiration=now - 86400),
             "plain.test.": signed_zone("plain.test.", None)}
    flip_rrsig(zones["broken.org."], "_443._tcp.www.broken.org.", "TLSA")
    args = []
    for origin, z in zones.items():
        args += ["--dane-zone", write_zone(z, os.path.join(d, origin + "zone"))]
    anchors = write_anchors(os.path.join(d, "anchors"), *(k.ds_line(o) for o, k in keys.items()))
    node = NodeProcess(os.path.join(d, "node"), "--http-port", str(http_port := free_port()), *args,
                       "--dane-anchors", anchors)
    node.http_port = http_port
    node.cert, node.keys, node.dir = cert, keys["example.com."], d
    yield from running(node, remove=d)


def fetch(node, path):
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}{path}", timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def node_key(dane_node):
    out = run_cli("--network", "regtest", "--datadir", dane_node.datadir, "dnssec-anchor", timeout=60)
    return base64.b64decode("".join(out.stdout.splitlines()[0].split()[7:]))


@needs_openssl
def test_http_serves_secure_dane_tlsa_in_a_signed_envelope(dane_node, node_key):
    status, data = fetch(dane_node, "/v1/domain/_443._tcp.www.example.com?type=TLSA")
    body = open_envelope(data, node_key, now=time.time())
    assert status == 200 and body["kind"] == "domain" and body["proofs"] == []
    assert body["question"] == {"name": "_443._tcp.www.example.com.", "type": "TLSA"}
    ans = body["answer"]
    assert ans["source"] == "dane" and ans["secure"] is True
    spki_hash = openssl_spki_sha256(dane_node.cert)
    assert ans["records"] == [["_443._tcp.www.example.com.", "TLSA", f"3 1 1 {spki_hash}"]]
    assert ans["tls"] == [["_443._tcp.www.example.com.", f"3 1 1 {spki_hash}"]]
    body = open_envelope(fetch(dane_node, "/v1/domain/www.example.com?type=A")[1], node_key)
    assert body["answer"]["records"] == [["www.example.com.", "A", "192.0.2.1"]]


@needs_openssl
def test_http_never_serves_bogus_or_expired_records(dane_node, node_key):
    for name in ("_443._tcp.www.broken.org", "_443._tcp.www.expired.net", "www.expired.net"):
        status, data = fetch(dane_node, f"/v1/domain/{name}?type=ANY")
        body = open_envelope(data, node_key)
        assert status == 404 and body["kind"] == "error" and body["answer"] is None
        assert TLSA_HEX.encode() not in data and b"192.0.2.1" not in data
    # the intact RRsets of the zone with one broken signature are still served
    assert fetch(dane_node, "/v1/domain/www.broken.org?type=A")[0] == 200
    assert "BOGUS" in dane_node.log() and "broken.org" in dane_node.log()


@needs_openssl
def test_http_serves_insecure_zone_marked_insecure(dane_node, node_key):
    status, data = fetch(dane_node, "/v1/domain/_443._tcp.www.plain.test?type=TLSA")
    ans = open_envelope(data, node_key)["answer"]
    assert status == 200 and ans["secure"] is False and ans["source"] == "dane"
    assert ans["records"] == [["_443._tcp.www.plain.test.", "TLSA", f"3 1 1 {TLSA_HEX}"]]
    for odd in ("www.nowhere.org?type=A", ".?type=A", "..example.com?type=TLSA", "a.-.example.com?type=ANY",
                "www.example.com?type=MX", "example.com.?type=SOA", "x" * 250 + ".com?type=A"):
        status, data = fetch(dane_node, "/v1/domain/" + odd)
        assert status == 404 and open_envelope(data, node_key)["error"].startswith("not-found"), odd


@needs_openssl
def test_sighup_reloads_zones(dane_node, node_key):
    new_hex = "CD" * 32
    zone = signed_zone("example.com.", dane_node.keys, f"_25._tcp.mx.example.com. 3600 IN TLSA 3 1 1 {new_hex}\n",
                       tlsa=f"3 1 1 {openssl_spki_sha256(dane_node.cert)}")
    write_zone(zone, os.path.join(dane_node.dir, "example.com.zone"))
    path = "/v1/domain/_25._tcp.mx.example.com?type=TLSA"
    assert fetch(dane_node, path)[0] == 404
    dane_node.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while fetch(dane_node, path)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    ans = open_envelope(fetch(dane_node, path)[1], node_key)["answer"]
    assert ans["records"] == [["_25._tcp.mx.example.com.", "TLSA", f"3 1 1 {new_hex}"]] and ans["secure"]


# --- dotbit-wallet tlsa ----------------------------------------------------------------------------

def make_cert(d: str, kind: str = "ec") -> str:
    key, cert = os.path.join(d, f"{kind}.key"), os.path.join(d, f"{kind}.pem")
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec" else ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-subj", "/CN=www.example.bit",
                    "-keyout", key, "-out", cert, "-days", "2"], check=True, capture_output=True, timeout=60)
    return cert


def openssl(*cmds: list[str], data: bytes = b"") -> bytes:
    """A shell-less pipeline of openssl commands."""
    for cmd in cmds:
        data = subprocess.run(["openssl", *cmd], input=data, capture_output=True, check=True, timeout=60).stdout
    return data


def openssl_spki_sha256(cert: str) -> str:
    der = openssl(["x509", "-in", cert, "-pubkey", "-noout"], ["pkey", "-pubin", "-outform", "DER"])
    return subprocess.run(["sha256sum"], input=der, capture_output=True, check=True).stdout.split()[0].decode().upper()


def wallet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wallet.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DOTBIT_WALLET": "/nonexistent/never-opened.json"})


@needs_openssl
@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_wallet_tlsa_matches_openssl(tmp, kind):
    cert = make_cert(tmp, kind)
    res = wallet("tlsa", "--cert", cert, "--name", "www.example.bit")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    spki = openssl_spki_sha256(cert)
    assert lines[-1] == f"_443._tcp.www.example.bit. IN TLSA 3 1 1 {spki}"        # RFC 7671's 3 1 1
    cert_der = openssl(["x509", "-in", cert, "-outform", "DER"])
    spki_der = openssl(["x509", "-in", cert, "-pubkey", "-noout"], ["pkey", "-pubin", "-outform", "DER"])
    digest = lambda tool, data: subprocess.run([tool], input=data, capture_output=True,  # noqa: E731
                                               check=True).stdout.split()[0].decode().upper()
    for selector, mtype, want in (("0", "1", digest("sha256sum", cert_der)), ("0", "2", digest("sha512sum", cert_der)),
                                  ("1", "2", digest("sha512sum", spki_der)), ("1", "0", spki_der.hex().upper())):
        res = wallet("tlsa", "--cert", cert, "--usage", "2", "--selector", selector, "--mtype", mtype,
                     "--port", "25", "--proto", "TCP", "--json")
        out = json.loads(res.stdout)
        assert res.returncode == 0 and out["association"] == want
        assert out["zone_line"] == f"_25._tcp IN TLSA 2 {selector} {mtype} {want}"
        assert base64.b64decode(out["tls"][3]).hex().upper() == want


@needs_openssl
def test_wallet_tls_item_renders_the_same_tlsa_through_dvalue(tmp):
    cert = make_cert(tmp)
    for name, d_name in (("www.example.bit", "d/example"), ("a.b.shop.bit", "d/shop"), ("example.bit", "d/example")):
        out = json.loads(wallet("tlsa", "--cert", cert, "--name", name, "--port", "8443", "--json").stdout)
        assert out["d_name"] == d_name
        value = {"ip": ["192.0.2.1"], **out["fragment"]}
        records = lookup_records(d_name, lambda n: json.dumps(value) if n == d_name else None).records
        owner, _, rtype, rdata = out["zone_line"].split(" ", 3)
        assert Record(owner, rtype, rdata) in [r for r in records if r.rtype == "TLSA"]
        assert owner == f"_8443._tcp.{name}."


@needs_openssl
def test_wallet_tlsa_bad_input_is_one_line(tmp):
    cert = make_cert(tmp)
    not_pem = os.path.join(tmp, "ec.key")            # a PEM, but a key, not a certificate
    junk = os.path.join(tmp, "junk")
    with open(junk, "wb") as f:
        f.write(os.urandom(64))
    cases = [["--cert", os.path.join(tmp, "missing.pem")], ["--cert", not_pem], ["--cert", junk],
             ["--cert", cert, "--usage", "4"], ["--cert", cert, "--selector", "x"], ["--cert", cert, "--mtype", "3"],
             ["--cert", cert, "--port", "0"], ["--cert", cert, "--port", "65536"], ["--cert", cert, "--proto", "t cp"],
             ["--cert", cert, "--name", "bad..name.bit"], ["--cert", cert, "--usage", "-1"]]
    for case in cases:
        res = wallet("tlsa", *case)
        assert res.returncode == 1 and res.stdout == "", case
        assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith("dotbit-wallet: error: "), (case, res.stderr)
