"""`dotbit-connect` (a real process) fetches from real HTTPS servers on loopback only when
the certificate matches a TLSA row the light client verified on a real node's chain: DANE-EE
3 1 1 and 3 0 1, DANE-TA 2 0 1 with a CA chain; a wrong key, a rotated (stale) key, a chain
for another name, no TLSA, PKIX-only rows and a lying resolver (a proxy that re-signs its
lies with the resolver's own key) each mean no connection: exit 2, one line naming the check.
Forward mode relays a plain local connection over the checked TLS."""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess

import msgpack
import pytest

from support import tls_server as T
from support.connect import CONNECT, connect, refused
from support.harness import free_port
from core.names.rules import NameRecord


@pytest.fixture
def run(node, key, ldir, servers, proxy):
    proxy.lie = None

    def go(url, *args, via_proxy=False):
        return connect(*args, url, resolver=proxy.url if via_proxy else f"http://127.0.0.1:{node.http_port}",
                       pin=key.fingerprint, ldir=ldir)
    yield go
    proxy.lie = None


@pytest.mark.parametrize("host, port, label, usage", [
    ("ee311.bit", "ee", "ee", "DANE-EE"),
    ("ee301.bit", "ee", "ee", "DANE-EE"),
    ("ta201.bit", "ta", "ta", "DANE-TA"),
])
def test_a_matching_certificate_is_accepted(run, world, host, port, label, usage):
    p = world.ee_port if port == "ee" else world.ta_port
    r = run(f"https://{host}:{p}/hello?x=1", "-i")
    err = r.stderr.decode()
    assert r.returncode == 0, err
    out = r.stdout.decode()
    assert out.startswith("HTTP/1.0 200 OK\r\n") or out.startswith("HTTP/1.1 200 OK\r\n"), out
    assert out.endswith(f"hello from {label} for {host}:{p} /hello?x=1\n"), out
    checked = [line for line in err.splitlines() if line.startswith(";; checked: ")]
    assert [c.split(":")[1].strip() for c in checked] == ["resolve", "resolve", "tls", "http"], err
    assert usage in checked[2] and f"_{p}._tcp.{host}." in checked[1], err


@pytest.mark.parametrize("host, port, check, words", [
    ("wrong.bit", "ee", "tls", "no TLSA row matches the server certificate"),
    ("tahost.bit", "ta", "tls", "does not validate to it for tahost.bit"),
    ("notlsa.bit", "ee", "tlsa", "has no TLSA row"),
    ("pkix.bit", "ee", "tls", "no usable TLSA row"),
    ("absent.bit", "ee", "resolve", "does not exist"),
])
def test_no_matching_row_means_no_connection(run, world, servers, host, port, check, words):
    p = world.ee_port if port == "ee" else world.ta_port
    refused(run(f"https://{host}:{p}/"), check, words)
    assert not any(h.startswith(host) for h in servers[port].seen), "a request was sent before the check"


def test_a_rotated_key_leaves_the_old_certificate_refused(run, world, node, servers):
    url = f"https://rotated.bit:{world.ee_port}/"
    assert run(url).returncode == 0
    node.update(b"d/rotated", T.tls_value(world.ee_port, [3, 1, 1, T.spki_sha256(world.other_cert)]))
    refused(run(url), "tls", "no TLSA row matches")
    assert servers["ee"].seen.count(f"rotated.bit:{world.ee_port}") == 1, servers["ee"].seen


def _tlsa_lie(world):
    def lie(body):
        if body["question"]["type"] == "TLSA" and body.get("answer"):
            rows = [r for r in body["answer"]["records"] if r[1] == "TLSA"]
            for r in rows:                       # claim the key of the server we reach
                r[2] = r[2].rsplit(" ", 1)[0] + " " + T.spki_sha256(world.ee_cert)
            body["answer"]["tls"] = [[r[0], r[2]] for r in rows]
        return body
    return lie


def _address_lie(body):
    if body["question"]["type"] == "A" and body.get("answer"):
        body["answer"]["records"] = [[r[0], r[1], "127.0.0.2"] if r[1] == "A" else r
                                     for r in body["answer"]["records"]]
    return body


def _proof_lie(body):
    """The A answer's record swapped inside its proof, pointing the name elsewhere."""
    if body["question"]["type"] == "A" and body.get("proofs"):
        p = body["proofs"][0]
        rec = NameRecord.from_obj(msgpack.unpackb(p["record"]))
        p["record"] = NameRecord(rec.name, b'{"ip":["127.0.0.2"]}', rec.address, rec.height, rec.txid,
                                 rec.vout).to_bytes()
    return body


@pytest.mark.parametrize("host, lie, words", [
    ("wrong.bit", "tlsa", "TLSA: records:"),        # claims the key the server we reach has
    ("ee311.bit", "address", "A: records:"),
    ("ee311.bit", "proof", "A: proof:"),
])
def test_a_lying_resolver_means_no_connection(run, world, proxy, host, lie, words):
    url = f"https://{host}:{world.ee_port}/"
    proxy.lie = {"tlsa": _tlsa_lie(world), "address": _address_lie, "proof": _proof_lie}[lie]
    refused(run(url, via_proxy=True), "resolve", words)
    proxy.lie = None
    assert (run(url, via_proxy=True).returncode == 0) == (host == "ee311.bit")


def _forwarder(node, key, ldir, target: str, *flags: str):
    port = free_port()
    cmd = [CONNECT, "--network", "regtest", "--resolver", f"http://127.0.0.1:{node.http_port}",
           "--pin", key.fingerprint, "--light-dir", ldir, "--config", os.devnull,
           "--listen", f"127.0.0.1:{port}", *flags, target]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    assert ready and "forwarding" in proc.stdout.readline(), "the forwarder did not start"
    return port, proc


def _stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    return proc.stderr.read()


def _get(port: int, host: str, s: socket.socket | None = None) -> bytes:
    with s or socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET /fwd HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_forward_mode_bounds_its_connections(node, key, ldir, servers, world):
    port, proc = _forwarder(node, key, ldir, f"ee311.bit:{world.ee_port}", "--max-connections", "1")
    try:
        first = socket.create_connection(("127.0.0.1", port), timeout=30)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as second:
            assert second.recv(100) == b""               # closed at once: the one slot is taken
        data = _get(port, "ee311.bit", first)           # the first is relayed all the same
        again = _get(port, "ee311.bit")                 # and its slot is free again
    finally:
        err = _stop(proc)
    assert data.endswith(b"hello from ee for ee311.bit /fwd\n") and again.endswith(b"/fwd\n"), (data, again, err)
    assert "over --max-connections (1)" in err, err


def test_forward_mode_relays_over_the_checked_connection(node, key, ldir, servers, world):
    port, proc = _forwarder(node, key, ldir, f"ee311.bit:{world.ee_port}")
    try:
        replies = [_get(port, "ee311.bit") for _ in range(2)]
    finally:
        err = _stop(proc)
    for data in replies:
        assert data.startswith(b"HTTP/1.0 200") and data.endswith(b"hello from ee for ee311.bit /fwd\n"), (data, err)
    assert err.count(";; checked: tls:") == 2, err


def test_forward_mode_closes_a_connection_whose_certificate_does_not_match(node, key, ldir, servers, world):
    port, proc = _forwarder(node, key, ldir, f"wrong.bit:{world.ee_port}")
    try:
        data = _get(port, "wrong.bit")
    finally:
        err = _stop(proc)
    assert data == b"", data
    assert "dotbit-connect: tls: no TLSA row matches the server certificate" in err, err
    assert ";; checked: tls" not in err, err
