"""TSIG on zone transfers (RFC 8945) and NOTIFY (RFC 1996), on real node processes: dig and kdig
AXFR with `-y` get exactly the exported zone; no TSIG is REFUSED, a wrong secret NOTAUTH/BADSIG,
an unknown key NOTAUTH/BADKEY, a stale clock NOTAUTH/BADTIME signed with our time; a transfer of
several 64 KiB messages verifies with dnspython's multi-message TSIG context on every message;
signed SOA queries (a BIND or Knot secondary's refresh) get signed answers; a new block sends one
signed NOTIFY with the new serial to a UDP listener, retried until acknowledged; and Unbound as a
secondary with allow-notify, and BIND 9 as a secondary with the key, pick up a new name at once
instead of at their refresh timer. Key specs and BIND key files parse, and secrets never reach
the log or an error line."""
from __future__ import annotations

import base64
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import unittest.mock

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.zone
import pytest

from support.harness import free_port, run_cli, stop_node, stop_process
from support.resolver import ResolverNode, needs_tools, new_datadir, raw_transfer, sample_names, unbound_conf, zone_serial

from node.resolver.zone import tsig

T = dns.rdatatype
ZONE = dns.name.from_text("bit.")
SECRET = base64.b64encode(bytes(range(100, 132))).decode()          # hmac-sha256, on the command line
FILE_SECRET = base64.b64encode(bytes(range(7, 71))).decode()        # hmac-sha512, from a key file
KEY = dns.tsig.Key("xfr-key.", SECRET, "hmac-sha256")
FILE_KEY = dns.tsig.Key("second.key.", FILE_SECRET, "hmac-sha512")
WRONG = dns.tsig.Key("xfr-key.", base64.b64encode(bytes(32)).decode(), "hmac-sha256")


class NotifyListener:
    """A secondary's NOTIFY port, in a thread: records every NOTIFY (parsed with the key, so a
    bad TSIG raises and is recorded as such) and acknowledges it, signed, unless told to
    ignore the next few tries."""

    def __init__(self, keyring=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.keyring = keyring
        self.got: list[tuple[float, dns.message.Message]] = []
        self.errors: list[str] = []
        self.ignore = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            try:
                msg = dns.message.from_wire(data, keyring=self.keyring)
            except Exception as e:
                self.errors.append(repr(e))
                continue
            self.got.append((time.monotonic(), msg))
            if self.ignore:
                self.ignore -= 1
                continue
            self.sock.sendto(dns.message.make_response(msg).to_wire(), addr)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def listener():
    ear = NotifyListener({KEY.name: KEY})
    yield ear
    ear.close()


@pytest.fixture(scope="module")
def node(listener, tmp_path_factory):
    keyfile = tmp_path_factory.mktemp("keys") / "tsig.key"
    keyfile.write_text(f'# tsig-keygen -a hmac-sha512 second.key\nkey "second.key" {{\n'
                       f'\talgorithm hmac-sha512;\n\tsecret "{FILE_SECRET}";\n}};\n')
    n = ResolverNode(new_datadir(), "--axfr-allow", "127.0.0.1/32", "--axfr-tsig", f"xfr-key:hmac-sha256:{SECRET}",
                     "--axfr-tsig-file", str(keyfile), "--notify", f"127.0.0.1:{listener.port}")
    n.start()
    try:
        n.fund(blocks=110)
        n.register(sample_names())
        yield n
    finally:
        try:
            n.stop()
        except Exception:
            n.kill()
        shutil.rmtree(n.datadir, ignore_errors=True)


def export(node, path) -> str:
    out = run_cli("--network", "regtest", "--datadir", node.datadir, "--rpc-port", str(node.rpc_port),
                  "zone", "export", str(path), timeout=120)
    assert out.returncode == 0, out.stderr
    with open(path) as f:
        return f.read()


def as_zone(text: str) -> dns.zone.Zone:
    return dns.zone.from_text(text, origin=ZONE, relativize=False, check_origin=False)


def verified(messages: list[bytes], query: dns.message.Message, key: dns.tsig.Key) -> list[dns.message.Message]:
    """Each message checked with dnspython's multi-message TSIG context, as a secondary does;
    raises on the first that does not verify, or that carries no TSIG."""
    ctx = None
    out = []
    for i, data in enumerate(messages):
        m = dns.message.from_wire(data, keyring={key.name: key}, request_mac=query.mac if i == 0 else b"",
                                  xfr=True, tsig_ctx=ctx, multi=True, one_rr_per_rrset=True)
        assert m.had_tsig, f"message {i} is not signed"
        ctx = m.tsig_ctx
        out.append(m)
    return out


def signed_axfr(key: dns.tsig.Key, qtype: str = "AXFR") -> dns.message.Message:
    q = dns.message.make_query(ZONE, qtype)
    q.use_tsig(key)
    return q


def tsig_mac_matches(data: bytes, key: dns.tsig.Key, request_mac: bytes) -> bool:
    """Recompute the MAC of a signed error answer (dnspython refuses to validate answers that
    carry a TSIG error, so do what it would do)."""
    m = dns.message.from_wire(data, keyring=False)
    rd = m.tsig[0]
    (arcount,) = struct.unpack("!H", data[10:12])
    unsigned = m
    unsigned.tsig = None
    body = unsigned.to_wire()
    assert struct.unpack("!H", body[10:12])[0] == arcount - 1
    again, _ = dns.tsig.sign(body, key, rd, rd.time_signed, request_mac)
    return again.mac == rd.mac


# --- transfers -----------------------------------------------------------------------------------

@needs_tools("dig", "kdig")
@pytest.mark.parametrize("tool", ["dig", "kdig"])
@pytest.mark.parametrize("key", [KEY, FILE_KEY], ids=["flag-sha256", "file-sha512"])
def test_tsig_axfr_with_dig_and_kdig_equals_export(node, tmp_path, tool, key):
    text = export(node, tmp_path / "bit.zone")
    spec = f"{key.algorithm.to_text(True)}:{key.name.to_text(True)}:{base64.b64encode(key.secret).decode()}"
    out = subprocess.run([tool, "@127.0.0.1", "-p", str(node.dns_port), "bit.", "AXFR", "-y", spec],
                         capture_output=True, text=True, timeout=60)
    records = [ln for ln in out.stdout.splitlines() if ln and not ln.startswith(";")]
    assert sum(1 for ln in records if ln.split()[3] == "TSIG") >= 1, out.stdout[-800:]   # signed answers shown
    lines = [ln for ln in records if ln.split()[3] != "TSIG"]
    assert lines and lines[0].split()[3] == "SOA" and lines[-1].split()[3] == "SOA", out.stdout[-800:] + out.stderr
    # dig checks the TSIG of every message and says so when one fails; kdig likewise.
    assert "failure" not in out.stdout.lower() + out.stderr.lower(), out.stdout[-800:]
    body = "\n".join(lines[:-1]).replace("\t", " ")
    assert as_zone(body) == as_zone(text)


@needs_tools("dig", "kdig")
@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_dig_and_kdig_without_or_with_a_wrong_key_get_nothing(node, tool):
    for extra in ([], ["-y", f"hmac-sha256:xfr-key:{base64.b64encode(bytes(32)).decode()}"]):
        out = subprocess.run([tool, "@127.0.0.1", "-p", str(node.dns_port), "bit.", "AXFR", *extra],
                             capture_output=True, text=True, timeout=60)
        records = [ln for ln in out.stdout.splitlines() if ln and not ln.startswith(";")]
        assert not [ln for ln in records if ln.split()[3] in ("SOA", "A", "RRSIG")], (extra, out.stdout)


def test_axfr_is_signed_and_equals_the_unsigned_export(node, tmp_path):
    text = export(node, tmp_path / "bit.zone")
    q = signed_axfr(KEY)
    msgs = verified(raw_transfer(node.dns_port, q), q, KEY)
    rrs = [r for m in msgs for r in m.answer]
    assert all(m.rcode() == dns.rcode.NOERROR and m.flags & dns.flags.AA for m in msgs)
    assert rrs[0].rdtype == T.SOA and rrs[-1].rdtype == T.SOA
    got = dns.zone.Zone(ZONE, relativize=False)
    with got.writer() as txn:
        for rrset in rrs[:-1]:
            txn.add(rrset)
    assert got == as_zone(text)


def test_no_tsig_wrong_secret_unknown_key_and_stale_clock_are_refused(node):
    port = node.dns_port
    # No TSIG: as a source not allowed, REFUSED.
    (only,) = raw_transfer(port, dns.message.make_query(ZONE, "AXFR"))
    r = dns.message.from_wire(only)
    assert r.rcode() == dns.rcode.REFUSED and not r.answer
    # Wrong secret: NOTAUTH, TSIG error BADSIG, unsigned (empty MAC).
    (only,) = raw_transfer(port, signed_axfr(WRONG))
    r = dns.message.from_wire(only, keyring=False)
    assert r.rcode() == dns.rcode.NOTAUTH and not r.answer
    assert r.tsig[0].error == dns.rcode.BADSIG and r.tsig[0].mac == b"" and r.tsig.name == KEY.name
    # A key we do not have, and a known name with another algorithm: BADKEY.
    for stranger in (dns.tsig.Key("nobody.", SECRET, "hmac-sha256"), dns.tsig.Key("xfr-key.", SECRET, "hmac-sha1")):
        (only,) = raw_transfer(port, signed_axfr(stranger))
        r = dns.message.from_wire(only, keyring=False)
        assert r.rcode() == dns.rcode.NOTAUTH and r.tsig[0].error == dns.rcode.BADKEY and r.tsig[0].mac == b""
    # The right key an hour off: BADTIME, signed with the key, our clock in Other Data.
    q = signed_axfr(KEY)
    with unittest.mock.patch("time.time", lambda: time.time_ns() / 1e9 - 3600):
        wire = q.to_wire()
    (only,) = raw_transfer(port, wire)
    r = dns.message.from_wire(only, keyring=False)
    assert r.rcode() == dns.rcode.NOTAUTH and r.tsig[0].error == dns.rcode.BADTIME and not r.answer
    (hi, lo) = struct.unpack("!HI", r.tsig[0].other)
    assert abs((hi << 32 | lo) - time.time()) < 30 and abs(r.tsig[0].time_signed - time.time() + 3600) < 30
    assert tsig_mac_matches(only, KEY, q.mac)
    with pytest.raises(dns.tsig.PeerBadTime):
        dns.message.from_wire(only, keyring={KEY.name: KEY}, request_mac=q.mac)
    # A valid TSIG from a source outside --axfr-allow: REFUSED still (both checks), and signed.
    q = signed_axfr(KEY)
    (only,) = raw_transfer(port, q, source="127.0.0.2")
    r = dns.message.from_wire(only, keyring={KEY.name: KEY}, request_mac=q.mac)
    assert r.rcode() == dns.rcode.REFUSED and r.had_tsig


def test_ixfr_current_is_one_signed_soa(node):
    serial = zone_serial(node)
    q = signed_axfr(KEY, "IXFR")
    q.authority.append(dns.rrset.from_text(ZONE, 0, "IN", "SOA", f". . {serial} 0 0 0 0"))
    data = raw_transfer(node.dns_port, q)
    m = dns.message.from_wire(data[0], keyring={KEY.name: KEY}, request_mac=q.mac, xfr=True)
    assert m.had_tsig and len(m.answer) == 1 and m.answer[0][0].serial == serial


def test_signed_soa_queries_get_signed_answers_over_udp_and_tcp(node):
    """What a BIND or Knot secondary sends before each transfer: a signed SOA query, whose
    unsigned answer it would drop."""
    for key in (KEY, FILE_KEY):
        q = dns.message.make_query(ZONE, "SOA", want_dnssec=True)
        q.use_tsig(key)
        for ask in (dns.query.udp, dns.query.tcp):
            r = ask(q, "127.0.0.1", port=node.dns_port, timeout=5)      # dnspython checks the TSIG
            assert r.had_tsig and r.rcode() == dns.rcode.NOERROR
            assert r.answer[0].rdtype == T.SOA and r.answer[0][0].serial == zone_serial(node)
    q = dns.message.make_query("example.bit.", "A")
    q.use_tsig(WRONG)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(q.to_wire(), ("127.0.0.1", node.dns_port))
        r = dns.message.from_wire(s.recv(4096), keyring=False)
    assert r.rcode() == dns.rcode.NOTAUTH and r.tsig[0].error == dns.rcode.BADSIG and not r.answer
    # Unsigned queries are answered as before.
    r = dns.query.udp(dns.message.make_query("example.bit.", "A"), "127.0.0.1", port=node.dns_port, timeout=5)
    assert {rd.address for rd in r.answer[0]} == {"192.0.2.1", "192.0.2.2"} and not r.had_tsig


def test_mangled_signed_queries_never_break_the_server(node):
    """Every byte of a signed query flipped in turn, and truncations: each gets an answer or
    silence, and the server still answers properly afterwards."""
    import random
    rng = random.Random(5)
    q = dns.message.make_query(ZONE, "SOA")
    q.use_tsig(KEY)
    wire = q.to_wire()
    ring = tsig.Keyring([KEY, FILE_KEY])
    variants = []
    for i in range(len(wire)):
        b = bytearray(wire)
        b[i] ^= rng.randrange(1, 256)
        variants.append(bytes(b))
    variants += [wire[:n] for n in range(len(wire))] + [wire + b"\0" * 3]
    for v in variants:
        try:
            tsig.check(v, ring)                   # in-process: only None, Signed or Rejected
        except tsig.Rejected:
            pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.05)
        for v in variants:
            s.sendto(v, ("127.0.0.1", node.dns_port))
            try:
                s.recv(4096)
            except socket.timeout:
                pass
    r = dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5)
    assert r.had_tsig and r.answer[0][0].serial == zone_serial(node)
    assert "Traceback" not in open(node.log_path).read()


def test_secrets_stay_out_of_the_log(node):
    # A refused transfer of its own (tests of one module may run on other workers): with a
    # wrong secret the server logs the failure, and must do so without key material.
    (only,) = raw_transfer(node.dns_port, signed_axfr(WRONG))
    assert dns.message.from_wire(only, keyring=False).rcode() == \
        dns.rcode.NOTAUTH
    deadline = time.monotonic() + 5
    while True:
        with open(node.log_path) as f:
            log = f.read()
        if "BADSIG" in log or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert "refused" in log and "BADSIG" in log           # the failure was logged...
    for secret in (SECRET, FILE_SECRET, base64.b64encode(KEY.secret).decode()):
        assert secret not in log                          # ...without any key material
    assert "xfr-key" in repr(tsig.Keyring([KEY])) and SECRET not in repr(tsig.Keyring([KEY]))


# --- NOTIFY ---------------------------------------------------------------------------------------

def _wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_notify_after_a_new_block_is_signed_with_the_new_serial(node, listener):
    _wait(lambda: listener.got, 10, "no NOTIFY during setup")
    time.sleep(1.5)                              # let the setup's last NOTIFY settle
    before = len(listener.got)
    node.mine(1)
    serial = zone_serial(node)
    _wait(lambda: len(listener.got) > before, 10, "no NOTIFY after a block")
    _, msg = listener.got[-1]
    assert msg.opcode() == dns.opcode.NOTIFY and msg.flags & dns.flags.AA and not msg.flags & dns.flags.QR
    assert msg.question[0].name == ZONE and msg.question[0].rdtype == T.SOA
    assert msg.answer[0].rdtype == T.SOA and msg.answer[0][0].serial == serial
    assert msg.had_tsig and msg.keyname == KEY.name          # parsed with the key: the MAC checked
    assert not listener.errors
    # The secondary's next step, an SOA query, must see the new serial, not a cached one.
    r = dns.query.udp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=node.dns_port, timeout=5)
    assert r.answer[0][0].serial == serial
    # Operators see NOTIFY traffic on /metrics: every datagram the listener got was counted as sent.
    import re
    import urllib.request
    body = urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/metrics", timeout=5).read().decode()
    sent = int(re.search(r'^dotbit_dns_notify_total\{result="sent"\} (\d+)$', body, re.M).group(1))
    assert sent >= len(listener.got) > 0


def test_a_burst_of_blocks_sends_one_notify(node, listener):
    time.sleep(1.5)
    before = len(listener.got)
    node.mine(8)
    serial = zone_serial(node)
    _wait(lambda: len(listener.got) > before, 10, "no NOTIFY after a burst")
    time.sleep(1.5)
    new = [m for _, m in listener.got[before:]]
    assert new[-1].answer[0][0].serial == serial
    assert len(new) <= 2, [m.answer[0][0].serial for m in new]     # 8 blocks, one (or two) NOTIFYs


def test_unacknowledged_notify_is_retried_with_backoff(node, listener):
    time.sleep(1.5)
    before = len(listener.got)
    listener.ignore = 2
    node.mine(1)
    serial = zone_serial(node)
    _wait(lambda: len(listener.got) >= before + 3, 15, "NOTIFY not retried")
    tries = listener.got[before:before + 3]
    assert all(m.answer[0][0].serial == serial for _, m in tries)
    assert len({m.id for _, m in tries}) == 3                      # each try is its own message
    gaps = [b[0] - a[0] for a, b in zip(tries, tries[1:])]
    assert 0.8 < gaps[0] < 1.8 and 1.8 < gaps[1] < 3.5, gaps       # 1 s, then 2 s
    time.sleep(2.5)
    assert len(listener.got) == before + 3                         # the third was acknowledged


# --- a transfer of many messages from a real chain ------------------------------------------------

def test_multi_message_transfer_signed_on_every_message(tmp_path):
    """400 names registered on a LevelDB chain (the benchmark's builder), served by a node
    process: the transfer spans several 64 KiB messages, each signed and chained to the last;
    changing one byte of a middle message breaks the check."""
    from support.name_chain import build_chain
    datadir = str(tmp_path / "chain")
    build_chain(datadir, 400)
    n = ResolverNode(datadir, "--axfr-allow", "127.0.0.1", "--axfr-tsig", f"xfr-key:{SECRET}")
    n.start(timeout=60)
    try:
        q = signed_axfr(KEY)
        raw = raw_transfer(n.dns_port, q)
        msgs = verified(raw, q, KEY)
        assert len(msgs) >= 3 and all(len(m) <= 65535 for m in raw)
        names = {r.name.to_text() for m in msgs for r in m.answer}
        assert {f"name{i:05d}.bit." for i in range(400)} <= names
        assert sum(1 for m in msgs for r in m.answer if r.rdtype == T.SOA) == 2
        # dnspython's own inbound transfer, which checks the TSIG as it goes, agrees.
        zone = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", "bit.", port=n.dns_port, keyring={KEY.name: KEY},
                                               keyname=KEY.name, keyalgorithm=KEY.algorithm, timeout=60,
                                               relativize=False), relativize=False)
        assert zone.get_rdataset("name00399.bit.", T.A) is not None
        tampered = list(raw)
        middle = bytearray(tampered[1])
        middle[len(middle) // 2] ^= 1
        tampered[1] = bytes(middle)
        with pytest.raises(Exception):
            verified(tampered, q, KEY)
    finally:
        try:
            n.stop()
        except Exception:
            n.kill()


# --- Unbound as a secondary: NOTIFY instead of the refresh timer ----------------------------------

UNBOUND = shutil.which("unbound") or shutil.which("unbound", path="/usr/sbin:/sbin")


@needs_tools("unbound")
def test_unbound_secondary_follows_notify(tmp_path):
    """Unbound has no TSIG, so this node allows the address alone; the SOA refresh is an hour,
    so a new name showing up within seconds is NOTIFY's doing."""
    uport = free_port()
    node = ResolverNode(new_datadir(), "--axfr-allow", "127.0.0.1", "--notify", f"127.0.0.1:{uport}")
    node.start()
    work = tmp_path / "unbound"
    work.mkdir()
    proc = None
    try:
        node.fund(blocks=110)
        node.register({b"d/first": {"ip": ["192.0.2.10"]}})
        (work / "unbound.conf").write_text(unbound_conf(work, uport, f"{work}/unbound.log", f"""
auth-zone:
    name: "bit."
    primary: 127.0.0.1@{node.dns_port}
    allow-notify: 127.0.0.1
    zonefile: "{work}/bit.zone"
    for-downstream: yes
    for-upstream: no
    fallback-enabled: no
""", 'module-config: "iterator"'))
        proc = subprocess.Popen([UNBOUND, "-d", "-c", str(work / "unbound.conf")], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

        def ask(qname):
            try:
                return dns.query.udp(dns.message.make_query(qname, "A"), "127.0.0.1", port=uport, timeout=2)
            except Exception:
                return None

        def log():
            p = work / "unbound.log"
            return p.read_text()[-3000:] if p.exists() else ""

        def has(qname):
            r = ask(qname)
            return r is not None and r.rcode() == dns.rcode.NOERROR and r.answer

        deadline = time.monotonic() + 20
        while not has("first.bit."):
            assert proc.poll() is None and time.monotonic() < deadline, log()
            time.sleep(0.2)
        r = ask("second.bit.")
        assert r is not None and r.rcode() == dns.rcode.NXDOMAIN
        start = time.monotonic()
        node.register({b"d/second": {"ip": ["192.0.2.20"]}})
        registered = time.monotonic() - start
        deadline = time.monotonic() + 15
        while not has("second.bit."):
            assert time.monotonic() < deadline, log() + node.log()
            time.sleep(0.2)
        picked_up = time.monotonic() - start - registered
        assert {rd.address for rd in ask("second.bit.").answer[0]} == {"192.0.2.20"}
        print(f"unbound picked up the new name {picked_up:.2f}s after its block")
    finally:
        if proc is not None:
            stop_process(proc)
        stop_node(node)


NAMED = shutil.which("named") or shutil.which("named", path="/usr/sbin:/sbin")


@needs_tools("named")
def test_bind_secondary_with_tsig_follows_signed_notify(tmp_path):
    """BIND 9 as a secondary with the key: its SOA refresh queries and transfers are signed
    and must verify both ways, and our signed NOTIFY makes it fetch a new name at once (the
    SOA refresh is an hour)."""
    nport = free_port()
    node = ResolverNode(new_datadir(), "--axfr-allow", "127.0.0.1", "--axfr-tsig", f"xfr-key:{SECRET}",
                        "--notify", f"127.0.0.1:{nport}")
    node.start()
    work = tmp_path / "named"
    work.mkdir()
    proc = None
    try:
        node.fund(blocks=110)
        node.register({b"d/first": {"ip": ["192.0.2.10"]}})
        (work / "named.conf").write_text(f"""options {{
    directory "{work}";
    listen-on port {nport} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    pid-file none;
    recursion no;
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "xfr-key" {{ algorithm hmac-sha256; secret "{SECRET}"; }};
zone "bit" {{
    type secondary;
    primaries {{ 127.0.0.1 port {node.dns_port} key xfr-key; }};
    file "bit.zone";
}};
logging {{
    channel file {{ file "{work}/named.log"; severity info; print-time yes; }};
    category default {{ file; }};
    category xfer-in {{ file; }};
    category notify {{ file; }};
}};
""")
        proc = subprocess.Popen([NAMED, "-f", "-c", str(work / "named.conf"), "-n", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def ask(qname):
            try:
                return dns.query.udp(dns.message.make_query(qname, "A"), "127.0.0.1", port=nport, timeout=2)
            except Exception:
                return None

        def has(qname):
            r = ask(qname)
            return r is not None and r.rcode() == dns.rcode.NOERROR and bool(r.answer) and r.flags & dns.flags.AA

        def log():
            p = work / "named.log"
            return p.read_text()[-3000:] if p.exists() else ""

        deadline = time.monotonic() + 20
        while not has("first.bit."):
            assert proc.poll() is None and time.monotonic() < deadline, log()
            time.sleep(0.2)
        assert ask("second.bit.").rcode() == dns.rcode.NXDOMAIN
        node.register({b"d/second": {"ip": ["192.0.2.20"]}})
        block_at = time.monotonic()
        deadline = block_at + 15
        while not has("second.bit."):
            assert time.monotonic() < deadline, log() + node.log()
            time.sleep(0.2)
        print(f"BIND picked up the new name {time.monotonic() - block_at:.2f}s after its block")
        text = (work / "named.log").read_text()
        assert "transferred serial" in text and "Transfer status: success" in text, text[-2000:]
        assert all("TSIG 'xfr-key'" in ln for ln in text.splitlines() if "transferred serial" in ln)
        assert "received notify for zone 'bit': TSIG 'xfr-key'" in text, text[-2000:]     # BIND checked our MAC
        serial = zone_serial(node)
        assert "notify from 127.0.0.1#" in text and f"transferred serial {serial}" in text, text[-2000:]
        with open(node.log_path) as f:
            ours = f.read()
        assert "(TSIG)" in ours and "acknowledged" in ours and SECRET not in ours
    finally:
        if proc is not None:
            stop_process(proc)
        stop_node(node)


# --- keys and options ----------------------------------------------------------------------------

def test_key_specs_and_files():
    k = tsig.parse_spec(f"xfr-key:{SECRET}")
    assert k == KEY                                            # hmac-sha256 by default
    assert tsig.parse_spec(f"second.key.:HMAC-SHA512:{FILE_SECRET}") == FILE_KEY
    for bad, why in [("xfr-key", "expected NAME"), (f"x:hmac-md5:{SECRET}", "algorithm"),
                     ("x:hmac-sha256:not*base64", "not base64"), ("x:hmac-sha256:AAAA", "shorter"),
                     (f"a..b:{SECRET}", "not a DNS name")]:
        with pytest.raises(tsig.TSIGKeyError, match=why) as e:
            tsig.parse_spec(bad)
        assert "base64" in why or bad.split(":")[-1] not in str(e.value) or bad == "xfr-key"
    text = f"""// shared with named.conf
key "a.example" {{ algorithm hmac-sha384; secret "{base64.b64encode(bytes(48)).decode()}"; }};
/* a second one */
key b {{
    secret {SECRET};
}};
server 192.0.2.1 {{ keys {{ b; }}; }};
"""
    keys = tsig.parse_key_file(text)
    assert [(k.name.to_text(), k.algorithm.to_text()) for k in keys] == [("a.example.", "hmac-sha384."),
                                                                         ("b.", "hmac-sha256.")]
    with pytest.raises(tsig.TSIGKeyError, match="no key statement"):
        tsig.parse_key_file("options { };")
    with pytest.raises(tsig.TSIGKeyError, match="given twice"):
        tsig.Keyring([KEY, tsig.parse_spec(f"xfr-key.:{FILE_SECRET}")])


def test_cli_errors_are_one_line_and_hold_no_secret(tmp_path):
    base = ["--network", "regtest", "--datadir", str(tmp_path), "--dns-port", str(free_port())]
    cases = [
        (["--axfr-allow", "127.0.0.1", "--axfr-tsig", "k:hmac-sha256:sekrit*notb64"], "not base64"),
        (["--axfr-tsig", f"k:{SECRET}"], "needs --axfr-allow"),
        (["--axfr-allow", "127.0.0.1", "--axfr-tsig-file", str(tmp_path / "missing.key")], "missing.key"),
        (["--notify", "secondary.example:53"], "--notify: expected IP:PORT"),
        (["--notify", "127.0.0.1:99999"], "--notify: expected IP:PORT"),
    ]
    for extra, message in cases:
        r = run_cli(*base, *extra, timeout=60)
        assert r.returncode == 1 and message in r.stderr, (extra, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "sekrit" not in r.stderr and SECRET not in r.stderr
    r = run_cli("--network", "regtest", "--datadir", str(tmp_path), "--notify", "127.0.0.1:53", timeout=60)
    assert r.returncode == 1 and "--notify needs DNS" in r.stderr


def test_config_file_keys_and_notify(tmp_path, listener):
    """The same settings from DATADIR/dotbit.toml [resolver]."""
    datadir = new_datadir()
    with open(os.path.join(datadir, "dotbit.toml"), "w") as f:
        f.write(f'[resolver]\naxfr_allow = ["127.0.0.1"]\naxfr_tsig = ["xfr-key:hmac-sha256:{SECRET}"]\n'
                f'notify = ["127.0.0.1:{listener.port}"]\n')
    n = ResolverNode(datadir)
    n.start()
    try:
        (only,) = raw_transfer(n.dns_port, dns.message.make_query(ZONE, "AXFR"))
        assert dns.message.from_wire(only).rcode() == dns.rcode.REFUSED
        q = signed_axfr(KEY)
        msgs = verified(raw_transfer(n.dns_port, q), q, KEY)
        assert msgs[0].answer[0].rdtype == T.SOA
        before = len(listener.got)
        n.mine(1)
        serial = zone_serial(n)
        _wait(lambda: any(m.answer[0][0].serial == serial for _, m in listener.got[before:]), 10, "no NOTIFY")
    finally:
        try:
            n.stop()
        except Exception:
            n.kill()
        shutil.rmtree(datadir, ignore_errors=True)
