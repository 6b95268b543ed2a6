"""connect/ in-process: TLSA rows parsed the way RFC 7671 §4.1 asks (unusable ones skipped,
never an exception), each selector and matching type matched against real certificates,
DANE-TA path and name checks, and the URL / listen address rules of dotbit-connect."""
from __future__ import annotations

import hashlib
import time

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, strategies as st

from support import tls_server as T
from connect.danecheck import TLSARow, check_chain, matches, parse_row, usable_rows
from connect.target import CheckFailed, UsageError, parse_listen, parse_target

EE_KEY, EE = T.self_signed("www.example.bit")
CA_KEY, CA = T.ca()
_, LEAF = T.issued(CA_KEY, CA, "shop.example.bit")
DER = Encoding.DER


def row(usage, selector, mtype, cert) -> str:
    blob = cert.public_bytes(DER) if selector == 0 else \
        cert.public_key().public_bytes(DER, PublicFormat.SubjectPublicKeyInfo)
    data = {0: blob, 1: hashlib.sha256(blob).digest(), 2: hashlib.sha512(blob).digest()}[mtype]
    return f"{usage} {selector} {mtype} {data.hex().upper()}"


@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("mtype", [0, 1, 2])
def test_dane_ee_matches_every_selector_and_matching_type(selector, mtype):
    assert "DANE-EE" in check_chain([EE.public_bytes(DER)], [row(3, selector, mtype, EE)], "any.bit", time.time())
    with pytest.raises(CheckFailed, match="no TLSA row matches"):
        check_chain([EE.public_bytes(DER)], [row(3, selector, mtype, LEAF)], "any.bit", time.time())


def test_dane_ta_checks_the_path_the_name_and_the_time():
    chain = [LEAF.public_bytes(DER), CA.public_bytes(DER)]
    assert "DANE-TA" in check_chain(chain, [row(2, 0, 1, CA)], "shop.example.bit", time.time())
    for host, when in (("www.example.bit", time.time()), ("shop.example.bit", time.time() + 400 * 86400)):
        with pytest.raises(CheckFailed, match="does not validate"):
            check_chain(chain, [row(2, 0, 1, CA)], host, when)
    with pytest.raises(CheckFailed, match="no TLSA row matches"):          # the anchor is not in the chain
        check_chain(chain[:1], [row(2, 0, 1, CA)], "shop.example.bit", time.time())
    _, other_ca = T.ca()
    with pytest.raises(CheckFailed, match="does not validate"):             # a matching cert that did not sign
        check_chain([EE.public_bytes(DER), CA.public_bytes(DER)], [row(2, 0, 1, CA)], "www.example.bit",
                    time.time())
    assert not matches(parse_row(row(2, 0, 1, CA)), other_ca)


def test_pkix_rows_and_garbage_are_unusable_not_errors():
    rows = [row(1, 1, 1, EE), row(0, 0, 1, CA), "3 1 1 ABCD", "3 7 1 " + "00" * 32, "x y z", "3 1 9 00"]
    assert usable_rows(rows) == []
    with pytest.raises(CheckFailed, match="no usable TLSA row"):
        check_chain([EE.public_bytes(DER)], rows, "a.bit", time.time())
    with pytest.raises(CheckFailed, match="unreadable certificate"):
        check_chain([b"not a certificate"], [row(3, 1, 1, EE)], "a.bit", time.time())


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.binary(max_size=80))
def test_parse_row_reads_what_it_is_given(usage, selector, mtype, data):
    got = parse_row(f"{usage} {selector} {mtype} {data.hex()}")
    usable = selector in (0, 1) and data and {0: True, 1: len(data) == 32, 2: len(data) == 64}.get(mtype, False)
    assert got == (TLSARow(usage, selector, mtype, data) if usable else None)


@given(st.text(max_size=60))
def test_parse_row_never_raises(text):
    parse_row(text)


@pytest.mark.parametrize("text, host, port, path", [
    ("https://www.Example.bit/a/b?c=d", "www.example.bit", 443, "/a/b?c=d"),
    ("example.bit:8443", "example.bit", 8443, "/"),
    ("https://example.bit.:444", "example.bit", 444, "/"),
])
def test_targets(text, host, port, path):
    t = parse_target(text)
    assert (t.host, t.port, t.path) == (host, port, path)
    assert t.tlsa_owner == f"_{port}._tcp.{host}."


@pytest.mark.parametrize("text", ["http://example.bit/", "https://example.com/", "https://bit/",
                                  "https://a..bit/", "https://u:p@example.bit/", "https://example.bit:0/",
                                  "https://example.bit:99999/", "https://ex ample.bit/", "ftp://example.bit"])
def test_bad_targets(text):
    with pytest.raises(UsageError):
        parse_target(text)


@given(st.text(max_size=80))
def test_parse_target_raises_only_usage_errors(text):
    try:
        parse_target(text)
    except UsageError:
        pass


def test_listen_is_loopback_only():
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    for bad in ("0.0.0.0:8080", "192.0.2.1:80", "127.0.0.1:x", "8080", "127.0.0.1:70000"):
        with pytest.raises(UsageError):
            parse_listen(bad)
