"""A real node with the resolver on loopback ports, and names registered on it over RPC."""
from __future__ import annotations

import base64
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile

from support.chain import Key
from support.name_txs import Funds, firstupdate, name_new, update
from support.harness import NodeProcess, running
from core.params import REGTEST

OWNER = Key.from_seed(61)
OTHER = Key.from_seed(62)
TLS_DIGEST = bytes(range(32))
TLS_DIGEST_B64 = base64.b64encode(TLS_DIGEST).decode()
ID_KEY = base64.b64encode(bytes([1] * 32)).decode()
EPH_KEY = base64.b64encode(bytes([2] * 32)).decode()
MINIMALT_TXT = f'"v=minimalt1" "port=7000" "id_key={ID_KEY}" "eph_key={EPH_KEY}"'


def sample_names() -> dict[bytes, dict]:
    """One name per feature the DNS side must serve."""
    return {
        b"d/example": {
            "ip": ["192.0.2.1", "192.0.2.2"], "ip6": ["2001:db8::1"],
            "mx": [[10, "mail.example.bit."]], "txt": ["hello world"],
            "sshfp": [[1, 2, TLS_DIGEST_B64]],
            "map": {"www": {"ip": ["192.0.2.3"]}, "mail": {"ip": ["192.0.2.4"]},
                    "alias": {"alias": "www.example.bit."},
                    "old": {"translate": "example.bit."},
                    "_tcp": {"map": {"_443": {"tls": [[3, 1, 1, TLS_DIGEST_B64]]}}},
                    "_udp": {"map": {"_sip": {"srv": [[10, 20, 5060, "sip.example.bit."]]}}},
                    "*": {"ip": ["192.0.2.99"]}},
            "minimalT": {"port": 7000, "id_key": ID_KEY, "eph_key": EPH_KEY},
        },
        b"d/deleg": {"ns": ["ns1.deleg.bit.", "ns.elsewhere.net."],
                     "ds": [[12345, 8, 2, TLS_DIGEST_B64]],
                     "map": {"ns1": {"ip": ["192.0.2.53"]}}},
        b"d/insecure": {"ns": ["ns.elsewhere.net."]},
        b"d/moved": {"translate": "example.bit."},
        b"d/cn": {"alias": "example.bit."},
        b"d/big": {"txt": [str(i) * 230 for i in range(4)]},      # > 512 bytes: TC over UDP
    }


class ResolverNode(NodeProcess):
    """A regtest node process with DNS and HTTP enabled on free ports."""

    def __init__(self, datadir: str, *extra: str):
        super().__init__(datadir, *extra, resolver=True)
        self.funds: Funds | None = None
        self.coins: dict[bytes, tuple] = {}     # name -> (tx, vout) of its current coin

    def mine(self, n: int = 1, key: Key = OWNER) -> list[str]:
        return self.call("generatetoaddress", n, key.addr_text())

    def fund(self, key: Key = OWNER, blocks: int = 101) -> None:
        self.mine(blocks, key)
        utxos = self.call("getaddressutxos", key.addr_text())
        self.funds = Funds(key, [(bytes.fromhex(u["txid"]), u["outputIndex"], u["value_sat"])
                                 for u in utxos][: blocks - 100])   # the mature coinbases

    def send(self, tx) -> None:
        self.call("sendrawtransaction", tx.to_bytes().hex())

    def register(self, names: dict[bytes, dict | str], owner: Key = OWNER) -> None:
        rng = random.Random(7)
        news = {}
        for name in names:
            rand = rng.randbytes(20)
            tx = name_new(self.funds, name, rand, owner)
            self.send(tx)
            news[name] = (tx, rand)
        self.mine(12)
        height = self.call("getblockcount") + 1
        for name, value in names.items():
            tx, rand = news[name]
            raw = value.encode() if isinstance(value, str) else json.dumps(value).encode()
            first = firstupdate(self.funds, tx, name, rand, raw, REGTEST, height, owner)
            self.send(first)
            self.coins[name] = (first, 0)
        self.mine(1)

    def update(self, name: bytes, value: dict | str, owner: Key = OWNER, to: Key | None = None) -> None:
        prev, vout = self.coins[name]
        raw = value.encode() if isinstance(value, str) else json.dumps(value).encode()
        tx = update(self.funds, prev, vout, name, raw, owner, to)
        self.send(tx)
        self.coins[name] = (tx, 0)
        self.mine(1)


def needs_tools(*tools: str):
    """Skip marker for tests that run external DNS programs. Where the tools are required
    (.ci/run sets DOTBIT_REQUIRE_DNS_TOOLS=1 after installing them), a missing one fails the
    run instead of quietly skipping the test."""
    import pytest
    missing = [t for t in tools if not (shutil.which(t) or shutil.which(t, path="/usr/sbin:/sbin"))]
    if missing and os.environ.get("DOTBIT_REQUIRE_DNS_TOOLS") == "1":
        raise RuntimeError(f"required DNS tools missing: {', '.join(missing)}")
    return pytest.mark.skipif(bool(missing), reason=f"not installed: {', '.join(missing)}")


def tool_query(tool: str, port: int, qname: str, qtype: str, *opts: str, timeout: float = 10) -> str:
    limits = ["+timeout=2", "+retry=0"] if tool == "kdig" else ["+time=2", "+tries=1"]
    cmd = [tool, "@127.0.0.1", "-p", str(port), qname, qtype, "+norecurse", *limits, *opts]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout


def new_datadir() -> str:
    return tempfile.mkdtemp(prefix="dotbit-resolver-")


def started_resolver_node(setup=None):
    """Generator for a module fixture: a running node, by default funded with sample_names()
    registered; `setup(node)` replaces that. The node is stopped and its data dir removed."""
    def default(node):
        node.fund(blocks=110)
        node.register(sample_names())
    yield from running(ResolverNode(new_datadir()), setup or default)


def unbound_conf(work, port: int, log, zone: str, *server: str) -> str:
    """An Unbound config for a test: one thread on 127.0.0.1:port, in the foreground, logging
    to `log`, no chroot or remote control; `server` lines go in its server: clause (modules,
    trust anchors) and `zone` after it (a stub-zone or auth-zone clause)."""
    lines = "".join(f"    {line}\n" for line in server)
    return f"""server:
    interface: 127.0.0.1
    port: {port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{work}"
    pidfile: ""
    use-syslog: no
    logfile: "{log}"
    verbosity: 1
    num-threads: 1
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
{lines}{zone.strip()}
remote-control:
    control-enable: no
"""


def raw_transfer(port: int, query, source: str = "127.0.0.1") -> list[bytes]:
    """A zone transfer over TCP, every answer message as bytes, until the closing SOA, an
    error rcode, or (IXFR of a current serial) a lone SOA. `query` is a dnspython message
    (signed when it is written) or bytes (sent as they are)."""
    import dns.message
    import dns.rcode
    import dns.rdatatype
    wire = query if isinstance(query, bytes) else query.to_wire()
    ixfr = isinstance(query, dns.message.Message) and query.question[0].rdtype == dns.rdatatype.IXFR
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(source, 0)) as s:
        s.sendall(struct.pack(">H", len(wire)) + wire)
        f = s.makefile("rb")
        soas = 0
        while True:
            head = f.read(2)
            if len(head) < 2:
                break
            data = f.read(struct.unpack(">H", head)[0])
            out.append(data)
            m = dns.message.from_wire(data, keyring=False, xfr=True, one_rr_per_rrset=True)
            soas += sum(1 for r in m.answer if r.rdtype == dns.rdatatype.SOA)
            if m.rcode() != dns.rcode.NOERROR or soas >= 2 or (ixfr and soas == 1 and len(m.answer) == 1):
                break
    return out


def zone_serial(node) -> int:
    """The serial of bit. as the node's DNS gives it (the stored zone's: one more per block
    connected or disconnected, not the height)."""
    import dns.message
    import dns.query
    r = dns.query.tcp(dns.message.make_query("bit.", "SOA"), "127.0.0.1", port=node.dns_port, timeout=5)
    return r.answer[0][0].serial
