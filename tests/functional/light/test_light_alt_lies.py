"""Records from other sources (the CA, DANE) never replace or add to what a .bit name proves.

One real node runs the chain, a CA (`dotbit-node ca init`) and a DNSSEC-signed DANE zone; a
lying proxy re-signs altered answers with the resolver's own key. Every row of LIES must be
refused by `dotbit-resolve` (exit 2, one line naming the check) and answered SERVFAIL by
`dotbit-resolve serve` queried with dnspython; every honest answer (the chain's own tls, CA
TLSA for a name without tls checked against --ca-cert, DANE outside bit. validated from
--dane-anchors) is accepted, and its output says what was checked.

Names: own.bit has its own tls item; bare.bit and other.bit have none and a CA leaf each;
spare.bit has neither.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from typing import Callable

import dns.message
import dns.query
import dns.rcode
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from support.ca import PASSPHRASE, ca_cert, forged_leaf, init_ca, issue, make_csr, revoke, self_signed_ca
from support.dane_zones import TLSA_HEX, ZoneKeys, signed_zone, write_anchors, write_zone
from support.harness import running
from support.light import caught, light_dir, resolve, running_stub
from support.resolver import OTHER, OWNER, TLS_DIGEST_B64, ResolverNode, new_datadir
from core.ca_evidence import tlsa_rdata
from node.resolver.ca.authority import ca_dir, load_ca

FORGED = "3 1 1 " + "EE" * 32
OWN, BARE, SPARE = "_443._tcp.own.bit.", "_443._tcp.bare.bit.", "_443._tcp.spare.bit."
DANE_ORIGIN, DANE_TLSA = "example.com.", "_443._tcp.www.example.com."
NAMES = {b"d/own": {"ip": ["192.0.2.10"], "map": {"_tcp": {"map": {"_443": {"tls": [[3, 1, 1, TLS_DIGEST_B64]]}}}}},
         b"d/bare": {"ip": ["192.0.2.11"]}, b"d/other": {"ip": ["192.0.2.12"]}, b"d/spare": {"ip": ["192.0.2.13"]}}


@pytest.fixture(scope="module")
def node():
    datadir = new_datadir()
    passfile = init_ca(datadir)
    keys = ZoneKeys.generate(15)
    zone = write_zone(signed_zone(DANE_ORIGIN, keys), os.path.join(datadir, "example.com.zone"))
    anchors = write_anchors(os.path.join(datadir, "anchors"), keys.ds_line(DANE_ORIGIN))

    def setup(n):
        n.fund(blocks=112)
        n.register(NAMES)
        n.leaves = {}
        for label, name in (("revoked", "bare"), ("bare", "bare"), ("other", "other")):
            status, body = issue(n, f"d/{name}", make_csr(f"{name}.bit")[1])
            assert status == 200, body
            pem = body["answer"]["cert"].encode()
            n.leaves[label] = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
            if label == "revoked":         # by the owner's request: only the CRL says so
                assert revoke(n, "d/bare", body["answer"]["serial"])[0] == 200
    n = ResolverNode(datadir, "--ca-passphrase-file", passfile, "--dane-zone", zone, "--dane-anchors", anchors)
    n.anchors = anchors
    yield from running(n, setup)


@pytest.fixture(scope="module")
def files(node):
    """The client's own copies: the CA certificate it pins and the DANE trust anchors."""
    d = light_dir()
    ca_file = os.path.join(d, "ca.pem")
    with open(ca_file, "wb") as f:
        f.write(ca_cert(node).public_bytes(serialization.Encoding.PEM))
    anchors = os.path.join(d, "anchors")
    shutil.copy(node.anchors, anchors)
    yield {"ca": ["--ca-cert", ca_file], "anchors": ["--dane-anchors", anchors], "dir": d}
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def proxy(module_proxy):
    module_proxy.lie = None
    yield module_proxy
    module_proxy.lie = None


@pytest.fixture
def cli(proxy, key, files):
    def run(*args):
        return resolve(*args, url=proxy.url, pin=key.fingerprint, light_dir=os.path.join(files["dir"], "light"))
    return run


# --- the lies --------------------------------------------------------------------------------

def relabel(source: str, rows: list[str] | None = None, certs=()) -> Callable:
    """The answer claims `source` answered, with an alt group of `rows` (invented by default)."""
    def lie(body, ctx):
        if body["answer"] is None:       # the chain has nothing there: make it a (proven) empty answer
            body.pop("error", None)
            body.update(kind="domain", answer={"records": [], "tls": [], "minimalt": []})
        fqdn = body["question"]["name"]
        records = [[fqdn, "TLSA", r] for r in (rows or [FORGED])]
        body["answer"]["source"] = source
        body["answer"]["alt"] = [{"source": source, "secure": True, "records": records,
                                  "evidence": {"certs": [ctx[c] if isinstance(c, str) else c for c in certs]}}]
        return body
    return lie


def ca_group(change: Callable) -> Callable:
    """The honest CA group with `change(group, ctx)` applied."""
    def lie(body, ctx):
        change(body["answer"]["alt"][0], ctx)
        return body
    return lie


def leaf_of(key: str) -> Callable:
    """The CA group now carries the leaf ctx[key] and its record, as if it were bare.bit's."""
    def change(group, ctx):
        group["evidence"]["certs"] = [ctx[key]]
        group["records"] = [[group["records"][0][0], "TLSA", tlsa_rdata(x509.load_der_x509_certificate(ctx[key]))]]
    return change


def chain_with_alt(body, ctx):
    body["answer"]["alt"] = relabel("ca")(body, ctx)["answer"]["alt"]
    body["answer"]["source"] = "chain"
    return body


def strip_chain_tls(body, ctx):
    relabel("ca")(body, ctx)
    body["answer"]["records"] = [r for r in body["answer"]["records"] if r[1] != "TLSA"]
    body["answer"]["tls"] = []
    return body


@dataclass(frozen=True)
class Lie:
    target: str
    qtype: str
    lie: Callable
    check: str
    flags: tuple = ("ca",)          # which of the client's means it has: "ca", "anchors"


LIES = {
    # own.bit has its own tls: no other source may speak for it, whatever the client holds
    "own-relabelled-dane": Lie(OWN, "TLSA", relabel("dane"), "source"),
    "own-relabelled-ca": Lie(OWN, "TLSA", relabel("ca"), "source"),
    "own-relabelled-ca-no-ca-cert": Lie(OWN, "TLSA", relabel("ca"), "source", ()),
    "own-relabelled-ca-real-leaf": Lie(OWN, "TLSA", relabel("ca", certs=("bare",)), "source"),
    "own-ca-replaces-chain-tls": Lie(OWN, "TLSA", strip_chain_tls, "records"),
    "own-any-relabelled-ca": Lie(OWN, "ANY", relabel("ca"), "source"),
    "own-tls-relabelled-dane": Lie("own.bit", "tls", relabel("dane"), "source"),
    "own-tls-relabelled-ca": Lie("own.bit", "tls", relabel("ca"), "ca"),
    # bare.bit has no tls and an honest CA leaf
    "bare-relabelled-dane": Lie(BARE, "TLSA", relabel("dane"), "source", ("ca", "anchors")),
    "bare-invented-ca-row": Lie(BARE, "TLSA", ca_group(lambda g, c: g["records"].append([BARE, "TLSA", FORGED])), "ca"),
    "bare-leaf-for-another-name": Lie(BARE, "TLSA", ca_group(leaf_of("other")), "ca"),
    "bare-leaf-expired": Lie(BARE, "TLSA", ca_group(leaf_of("expired")), "ca"),
    "bare-leaf-not-from-pinned-ca": Lie(BARE, "TLSA", ca_group(leaf_of("foreign")), "ca"),
    "bare-leaf-of-a-former-owner": Lie(BARE, "TLSA", ca_group(leaf_of("former")), "ca"),
    "bare-leaf-dropped": Lie(BARE, "TLSA", ca_group(lambda g, c: g["evidence"].update(certs=[])), "ca"),
    "bare-leaf-revoked-by-owner": Lie(BARE, "TLSA", ca_group(leaf_of("revoked")), "ca"),
    "bare-crl-dropped": Lie(BARE, "TLSA", ca_group(lambda g, c: g["evidence"].pop("crl")), "ca"),
    "bare-crl-stale": Lie(BARE, "TLSA", ca_group(lambda g, c: g["evidence"].update(crl=c["stale_crl"])), "ca"),
    "bare-honest-ca-without-ca-cert": Lie(BARE, "TLSA", lambda body, ctx: body, "ca", ()),
    # spare.bit has neither tls nor a leaf
    "spare-invented-ca-group": Lie(SPARE, "TLSA", relabel("ca"), "ca"),
    "spare-invented-ca-group-no-ca-cert": Lie(SPARE, "TLSA", relabel("ca"), "ca", ()),
    "spare-chain-with-invented-alt": Lie(SPARE, "TLSA", chain_with_alt, "source"),
    "spare-a-relabelled-ca": Lie("spare.bit", "A", relabel("ca"), "records"),
    # outside bit.: DANE only, validated from the client's own anchors
    "dane-relabelled-ca": Lie("www.example.com", "TLSA", lambda b, c: dict(b, answer=dict(b["answer"], source="ca")),
                              "shape", ("anchors",)),
    "dane-honest-without-anchors": Lie("www.example.com", "TLSA", lambda body, ctx: body, "dane", ()),
}


@pytest.fixture(scope="module")
def ctx(node):
    """Leaves the lies carry: other.bit's real one, bare.bit's revoked one, leaves for bare.bit
    signed with the real CA key the node would never issue (expired; bound to another owner)
    or by a CA nobody pinned, and a CRL of the real CA past its nextUpdate."""
    authority = load_ca(ca_dir(node.datadir), PASSPHRASE)
    foreign_key, foreign_cert = self_signed_ca()
    now = time.time()
    return {"other": node.leaves["other"], "bare": node.leaves["bare"], "revoked": node.leaves["revoked"],
            "stale_crl": authority.crl([], 1, now - 2 * 86400, now - 86400),
            "expired": forged_leaf(authority.key, authority.cert, "bare.bit", OWNER.address, days_from=-30, days_to=-1),
            "former": forged_leaf(authority.key, authority.cert, "bare.bit", OTHER.address),
            "foreign": forged_leaf(foreign_key, foreign_cert, "bare.bit", OWNER.address)}


def flags_of(lie: Lie, files) -> list[str]:
    return [x for f in lie.flags for x in files[f]]


@pytest.mark.parametrize("row", LIES)
def test_lie_is_refused_by_the_cli(row, cli, proxy, files, ctx):
    lie = LIES[row]
    proxy.lie = lambda body: lie.lie(body, ctx)
    r = cli(lie.target, lie.qtype, *flags_of(lie, files))
    caught(r, lie.check)
    assert r.stdout == "" and "checked:" not in r.stderr


@pytest.mark.parametrize("row", ["own-relabelled-dane", "own-relabelled-ca", "bare-relabelled-dane",
                                 "bare-leaf-not-from-pinned-ca", "bare-leaf-revoked-by-owner",
                                 "bare-honest-ca-without-ca-cert"])
def test_pinned_trust_applies_the_same_rules_to_other_sources(row, cli, proxy, files, ctx):
    """--trust pinned believes the resolver's chain data, not other sources' keys."""
    lie = LIES[row]
    proxy.lie = lambda body: lie.lie(body, ctx)
    caught(cli(lie.target, lie.qtype, "--trust", "pinned", *flags_of(lie, files)), lie.check)


def test_pinned_trust_accepts_honest_ca_records_it_checked(cli, files):
    r = cli(BARE, "TLSA", "--trust", "pinned", *files["ca"])
    assert r.returncode == 0, r.stderr
    assert "not on its current CRL, issued (owner NOT checked: trust pinned)" in r.stdout


def test_every_lie_is_servfail_from_the_stub(proxy, key, files, ctx):
    """The stub serves only what the CLI accepts; one stub per set of means the rows assume."""
    for means in sorted({lie.flags for lie in LIES.values()}):
        rows = {k: v for k, v in LIES.items() if v.flags == means and v.target.endswith((".bit", ".bit."))}
        if not rows:
            continue
        with running_stub(proxy.url, key.fingerprint, os.path.join(files["dir"], "stub"),
                          *[x for f in means for x in files[f]]) as (port, _):
            for name, lie in rows.items():
                proxy.lie = lambda body, lie=lie: lie.lie(body, ctx)
                qname = lie.target if lie.qtype != "tls" else lie.target + "."
                qtype = "TLSA" if lie.qtype == "tls" else lie.qtype
                resp = dns.query.udp(dns.message.make_query(qname, qtype), "127.0.0.1", port=port, timeout=10)
                assert resp.rcode() == dns.rcode.SERVFAIL and not resp.answer, (name, resp.to_text())
            proxy.lie = None


# --- honest answers --------------------------------------------------------------------------

def test_the_chains_own_tls_is_accepted_with_or_without_ca_cert(cli, files):
    for extra in ([], files["ca"]):
        r = cli(OWN, "TLSA", "--json", *extra)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["source"] == "chain" and "source_trust" not in out
        assert [t[0] for t in out["tls"]] == [OWN] and FORGED not in r.stdout
    r = cli(OWN, "TLSA")
    assert "from the" not in r.stdout and "proofs of d/own" in r.stdout


def test_ca_tlsa_for_a_name_without_tls_is_accepted_with_ca_cert(cli, files, ctx):
    want = tlsa_rdata(x509.load_der_x509_certificate(ctx["bare"]))
    r = cli(BARE, "TLSA", *files["ca"])
    assert r.returncode == 0, r.stderr
    assert f"{BARE}\tIN\tTLSA\t{want}" in r.stdout.splitlines()
    assert (f";; TLSA at {BARE} from the ca source, checked here: each record is the key of a leaf signed by "
            f"your --ca-cert, naming bare.bit., valid now, not on its current CRL, issued to d/bare's proven "
            f"owner") in r.stdout
    out = json.loads(cli(BARE, "TLSA", "--json", *files["ca"]).stdout)
    assert out["source"] == "ca" and out["source_trust"] == "ca-cert" and "CRL" in out["source_checked"]
    assert len(out["tls"]) == 1        # the revoked leaf is not served


def test_dane_outside_bit_is_accepted_with_anchors(cli, files):
    r = cli("www.example.com", "TLSA", *files["anchors"])
    assert r.returncode == 0, r.stderr
    assert f"{DANE_TLSA}\tIN\tTLSA\t3 1 1 {TLSA_HEX}" in r.stdout.splitlines()
    assert "trust dnssec-verified" in r.stdout and "our anchor for example.com." in r.stdout


def test_the_stub_serves_the_honest_answers(proxy, key, files, ctx):
    with running_stub(proxy.url, key.fingerprint, os.path.join(files["dir"], "stub"), *files["ca"]) as (port, _):
        for qname, want in ((OWN, None), (BARE, tlsa_rdata(x509.load_der_x509_certificate(ctx["bare"])))):
            resp = dns.query.udp(dns.message.make_query(qname, "TLSA"), "127.0.0.1", port=port, timeout=10)
            assert resp.rcode() == dns.rcode.NOERROR and resp.answer, resp.to_text()
            if want:
                assert want.split()[-1].lower() in resp.to_text().lower()
