"""Fuzz targets: every parser that takes bytes from a peer, a client or a resolver, each with
its contract — the documented error types may escape, nothing else may (no IndexError,
TypeError, KeyError, RecursionError...), and what decodes must re-encode.

A target is `Target(name, allowed, seeds, run)`: `seeds()` gives valid inputs (the corpus a
mutation starts from), `run(data)` feeds one input and raises AssertionError when a
post-condition fails. bench/fuzz.py drives them (atheris or its own mutator) and
tests/test_fuzz_*.py import them, so a finding is reproduced with the exact same code.

The world the targets see (names, headers, a node) is built once per process, lazily, from
fixed seeds: the same input always takes the same path.
"""
from __future__ import annotations

import asyncio
import atexit
import base64
import functools
import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from typing import Callable

import dns.message
import msgpack

# Everything the targets reach is imported here, at the top, so that bench/fuzz.py's atheris
# engine (which instruments what this module imports) sees coverage of all of it.
from core.auxpow import AuxPow, coinbase_script
from core.consensus import bits_to_target, check_pow
from core.crypto import hash160, pubkey_from_secret
from core.errors import ValidationError
from core.primitives import NAME_UPDATE, Block, Covenant, Header, Tx, TxIn, TxOut
from core.signing import sign_tx
from node.chain.storage import MemoryDB
from node.mining.miner import solve_quick
from core.names.dvalue import lookup_records, records_for_qname
from core.names.proof import EMPTY, ProofError, Proof, verify_proof
from core.names.ops import firstupdate_outputs, name_new_output
from core.names.rules import NameRecord, registration_burn, tree_key
from core.names.tree import NameTree
from core.params import REGTEST
from core import envelope
from node.resolver.dns_answer import Responder
from node.resolver.dnssec import OnlineSigner
from node.resolver.ekeys import EKeyError, EKeyStore, EKeyUpdate, make_update
from node.resolver.identity import ResolverKey
from light.verify import VerifyError, open_answer, verify_answer
from core.records import NameSource, select
from node.rpc.server import RPCServer
from node.service import Node, load_mining_key
from p2p import messages as M
from tunnel import crypto as TC
from tunnel import packet as TP
from tunnel.session import Session as TunnelSession


@dataclass(frozen=True)
class Target:
    name: str
    allowed: tuple[type[BaseException], ...]   # what the boundary converts; all else is a finding
    seeds: Callable[[], list[bytes]]
    run: Callable[[bytes], None]


class ContractBroken(AssertionError):
    """A post-condition failed (e.g. a decoded object does not re-encode to an equal one)."""


# --- a small world of names ------------------------------------------------------------------------

TLS_B64 = base64.b64encode(bytes(range(32))).decode()
ID_KEY = base64.b64encode(bytes([1] * 32)).decode()
EPH_KEY = base64.b64encode(bytes([2] * 32)).decode()
OWNER_SECRET = hashlib.sha256(b"dotbit fuzz owner").digest()
NAME_VALUES = {
    b"d/example": {"ip": ["192.0.2.1"], "ip6": ["2001:db8::1"], "mx": [[10, "mail.example.bit."]],
                   "txt": ["hello"], "sshfp": [[1, 2, TLS_B64]],
                   "map": {"www": {"import": "d/lib"}, "alias": {"alias": "www.example.bit."},
                           "old": {"translate": "example.bit."}, "*": {"ip": ["192.0.2.99"]},
                           "_tcp": {"map": {"_443": {"tls": [[3, 1, 1, TLS_B64]]}}},
                           "_udp": {"map": {"_sip": {"srv": [[10, 20, 5060, "sip.example.bit."]]}}}},
                   "minimalT": {"port": 7000, "id_key": ID_KEY, "eph_key": EPH_KEY}},
    b"d/lib": {"ip": ["198.51.100.99"], "tls": [[443, "tcp", 3, 1, 1, TLS_B64]]},
    b"d/deleg": {"ns": ["ns1.deleg.bit.", "ns.elsewhere.net."], "ds": [[12345, 8, 2, TLS_B64]],
                 "map": {"ns1": {"ip": ["192.0.2.53"]}}},
    b"d/cn": {"alias": "example.bit."},
    b"d/big": {"txt": [str(i) * 230 for i in range(4)]},
}
QNAMES = ["example.bit.", "www.example.bit.", "_443._tcp.example.bit.", "alias.example.bit.", "x.old.example.bit.",
          "deleg.bit.", "a.deleg.bit.", "cn.bit.", "nx.bit.", "_minimalt._udp.example.bit.", "q.z.example.bit."]
HEIGHT = 5


@functools.cache
def world():
    """Name records, their tree, a short header chain committing to the root, a resolver key
    and an owner key (the one that signs ephemeral-key updates)."""
    pub = pubkey_from_secret(OWNER_SECRET)
    records = {n: NameRecord(n, json.dumps(v).encode(), hash160(pub), 1, hashlib.sha256(n).digest(), 0)
               for n, v in NAME_VALUES.items()}
    nodes: dict = {}
    tree = NameTree(nodes.get)
    root, new = tree.update(EMPTY, {tree_key(k): r.leaf_hash for k, r in records.items()})
    nodes.update(new)
    genesis = REGTEST.genesis.header
    headers, prev = [genesis.to_bytes()], genesis
    for h in range(1, HEIGHT + 1):
        hdr = solve_quick(Header(1, prev.hash, bytes(32), root, genesis.time + h, genesis.bits, 0),
                          bits_to_target(genesis.bits))
        headers.append(hdr.to_bytes())
        prev = hdr
    return {"records": records, "tree": tree, "root": root, "headers": headers,
            "key": ResolverKey(hashlib.sha256(b"dotbit fuzz resolver").digest()), "owner_pub": pub}


# --- p2p frames --------------------------------------------------------------------------------------

MAGIC = REGTEST.magic


def _p2p_seeds() -> list[bytes]:
    w = world()
    tx = _sample_tx()
    msgs = [M.Version(1, 1, 5, 42, 1_700_000_000, 18600, b"/dotbit:0.1/"), M.Verack(), M.Ping(7), M.Pong(7),
            M.GetAddr(), M.Addr((("127.0.0.1", 18600, 1_700_000_000),)), M.Inv(((M.INV_BLOCK, bytes(32)),)),
            M.GetData(((M.INV_TX, bytes(range(32))),)), M.NotFound(((M.INV_EPHKEY, bytes(32)),)),
            M.GetHeaders((bytes(32), bytes(range(32))), bytes(32)), M.Headers(tuple(w["headers"][:3])),
            M.BlockMsg(REGTEST.genesis.to_bytes()), M.TxMsg(tx.to_bytes()), M.EphKey(_sample_ekey().to_bytes())]
    return [M.encode_frame(MAGIC, m) for m in msgs]


def run_p2p(data: bytes) -> None:
    msg = M.decode_frame(MAGIC, data)
    if msg is not None:
        again = M.decode_frame(MAGIC, M.encode_frame(MAGIC, msg))
        if again != msg:
            raise ContractBroken(f"{msg.command}: decode(encode(m)) != m")


# --- transactions, blocks, headers -------------------------------------------------------------------

def _sample_tx() -> Tx:
    return Tx(1, (TxIn(bytes(range(32)), 1, bytes(64), bytes([2]) + bytes(32)),),
              (TxOut(5_000_000, bytes(20), Covenant(NAME_UPDATE, (b"d/example", b'{"ip":"1.2.3.4"}'))),
               TxOut(100, bytes(range(20)))), 0)


def _primitives_seeds() -> list[bytes]:
    tx = _sample_tx()
    block = Block(REGTEST.genesis.header, (REGTEST.genesis.txs[0], tx))
    return [b"\x00" + tx.to_bytes(), b"\x01" + block.to_bytes(), b"\x01" + REGTEST.genesis.to_bytes(),
            b"\x02" + REGTEST.genesis.header.to_bytes()]


def run_primitives(data: bytes) -> None:
    """First byte picks the decoder (tx, block, header); a decoded object re-encodes to bytes
    that decode to the same object with the same id."""
    if not data:
        return
    kind, body = data[0] % 3, data[1:]
    if kind == 0:
        tx = Tx.from_bytes(body)
        again = Tx.from_bytes(tx.to_bytes())
        if again != tx or again.txid != tx.txid or again.wtxid != tx.wtxid:
            raise ContractBroken("tx does not round-trip")
    elif kind == 1:
        block = Block.from_bytes(body)
        again = Block.from_bytes(block.to_bytes())
        if again != block or again.hash != block.hash:
            raise ContractBroken("block does not round-trip")
    else:
        header = Header.from_bytes(body)
        if header.to_bytes() != body:
            raise ContractBroken("header does not round-trip")


# --- merged mining (AuxPoW) ---------------------------------------------------------------------------

def _auxpow_seeds() -> list[bytes]:
    from support.auxpow import aux_block
    block = aux_block(Block(REGTEST.genesis.header, REGTEST.genesis.txs))
    return [b"\x00" + block.header.auxpow.to_bytes(), b"\x01" + block.header.to_wire()]


def run_auxpow(data: bytes) -> None:
    """First byte picks the decoder (an AuxPoW, or a header in wire form); what decodes
    re-encodes to the same bytes, and checking a header fails only with a ValidationError."""
    if not data:
        return
    body = data[1:]
    if data[0] % 2 == 0:
        aux = AuxPow.from_bytes(body)
        if aux.to_bytes() != body:
            raise ContractBroken("auxpow does not round-trip")
        coinbase_script(aux.coinbase_tx)
    else:
        header = Header.from_wire(body)
        if header.to_wire() != body:
            raise ContractBroken("header does not round-trip")
        check_pow(header, header.hash, REGTEST)


# --- DNS packets ---------------------------------------------------------------------------------------

class _ErrorLog(logging.Handler):
    """Responder.handle turns an internal error into SERVFAIL and logs it: that log line is the
    finding (the packet still got an answer, but the code had a bug)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@functools.cache
def _responder():
    w = world()
    source = NameSource(w["records"].get, lambda: HEIGHT, REGTEST)
    errors = _ErrorLog()
    logging.getLogger("dotbit.resolver.dns").addHandler(errors)
    return Responder(source, OnlineSigner(w["key"]), lambda: HEIGHT), errors


def _dns_seeds() -> list[bytes]:
    out = []
    for i, qname in enumerate(QNAMES + ["bit.", "example.com."]):
        for qtype in ("A", "AAAA", "TXT", "TLSA", "NS", "DS", "SOA", "DNSKEY", "ANY", "CNAME", "SRV", "MX", "NSEC"):
            q = dns.message.make_query(qname, qtype, use_edns=0 if i % 2 else -1, want_dnssec=bool(i % 2))
            q.id = 0x1234
            out.append(bytes([i & 1]) + q.to_wire())
    return out


def run_dns(data: bytes) -> None:
    """First byte: bit 0 picks TCP. The rest is the packet. An answer must echo the ID and be a
    response; internal errors (logged, answered SERVFAIL) are findings."""
    if not data:
        return
    responder, errors = _responder()
    packet = data[1:]
    out = responder.handle(packet, bool(data[0] & 1))
    if errors.records:
        rec = errors.records[-1]
        errors.records.clear()
        responder.invalidate()
        if rec.exc_info and rec.exc_info[1] is not None:
            raise rec.exc_info[1]
        raise ContractBroken(rec.getMessage())
    if out is not None and (out[:2] != packet[:2] or not out[2] & 0x80):
        raise ContractBroken("answer does not echo the ID or is not a response")


# --- d/ values -------------------------------------------------------------------------------------------

def _dvalue_seeds() -> list[bytes]:
    vals = [json.dumps(v).encode() for v in NAME_VALUES.values()]
    return [vals[i] + b"\x00" + vals[(i + 1) % len(vals)] for i in range(len(vals))] + vals


def run_dvalue(data: bytes) -> None:
    """Up to three values separated by NUL: d/example, d/lib (which d/example imports) and
    d/cn. The interpreter never raises: invalid items are skipped and counted."""
    parts = data.split(b"\x00", 2)
    values = dict(zip(("d/example", "d/lib", "d/cn"), parts))

    def lookup(name: str) -> str | None:
        v = values.get(name)
        if v is None:
            return None
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return None
    res = lookup_records("d/example", lookup)
    for r in res.records:
        if not all(isinstance(x, str) for x in (r.owner, r.rtype, r.rdata)):
            raise ContractBroken(f"record with non-text fields: {r!r}")
    for q in ("www.example.bit.", "_443._tcp.example.bit.", "x.y.example.bit.", "cn.bit."):
        records_for_qname(q, lookup)


# --- signed envelopes, proofs, light-client answers -------------------------------------------------------

def _envelope_seeds() -> list[bytes]:
    w = world()
    body = {"v": 1, "kind": "name", "question": {"name": b"d/example"}, "answer": {"value": "x"},
            "tip": {"height": 1, "hash": bytes(32), "name_root": bytes(32)}, "served": 1, "valid_until": 2,
            "proofs": []}
    raw = envelope.encode_body(body)
    return [b"\x00" + envelope.seal(body, w["key"].sign, "json"), b"\x00" + envelope.seal(body, w["key"].sign, "msgpack"),
            b"\x01" + raw, b"\x02" + raw]


def run_envelope(data: bytes) -> None:
    """First byte: 0 = the rest is an envelope as received; 1 and 2 = the rest is a body, which
    the harness signs with the resolver key into the msgpack (1) or JSON (2) form, so what lies
    behind the signature check (body decoding, the JSON view) is fuzzed too."""
    if not data:
        return
    mode, rest = data[0] % 3, data[1:]
    w = world()
    if mode == 0:
        envelope.open_envelope(rest, w["key"].public_key, now=1.0)
        return
    sig = w["key"].sign(envelope.TAG + rest)
    if mode == 1:
        signed = msgpack.packb([envelope.VERSION, rest, sig], use_bin_type=True)
    else:
        try:
            view = envelope.to_jsonable(msgpack.unpackb(rest, raw=False, strict_map_key=True))
            text = envelope._json_text({"body": base64.b64encode(rest).decode(), "sig": base64.b64encode(sig).decode(),
                                        "v": envelope.VERSION, "view": view})
        except (ValueError, TypeError, RecursionError, msgpack.UnpackException):
            view = {}          # the harness could not build a view: an honest resolver could not either
            text = envelope._json_text({"body": base64.b64encode(rest).decode(), "sig": base64.b64encode(sig).decode(),
                                        "v": envelope.VERSION, "view": view})
        signed = text
    body = envelope.open_envelope(signed, w["key"].public_key)
    if not isinstance(body, dict) or body.get("v") != envelope.VERSION:
        raise ContractBroken("open_envelope returned a body that is not a v1 map")


def _proof_seeds() -> list[bytes]:
    w = world()
    out = []
    for name in list(w["records"]) + [b"d/absent", b"d/nx"]:
        proof = w["tree"].prove(w["root"], tree_key(name))
        out.append(name + b"\x00" + proof.to_bytes())
    return out


def run_proof(data: bytes) -> None:
    """NAME NUL PROOF: the proof is checked against the world's root for that name."""
    name, _, raw = data.partition(b"\x00")
    proof = Proof.from_bytes(raw)
    if Proof.from_bytes(proof.to_bytes()) != proof:
        raise ContractBroken("proof does not round-trip")
    verify_proof(world()["root"], tree_key(name), proof)


class _OneEKey:
    """d/example has a signed ephemeral-key update, so answers carry one to tamper with."""

    def current(self, name: bytes):
        return _sample_ekey() if name == b"d/example" else None


def _answer_body(fqdn: str, qtype: str) -> dict:
    """What the resolver's /v1/domain would sign for fqdn (see node/resolver/http_api.py)."""
    w = world()
    source = NameSource(w["records"].get, lambda: HEIGHT, REGTEST, _OneEKey())
    ans = source.resolve(fqdn)
    proofs = [{"name": n.encode(), "record": w["records"][n.encode()].to_bytes() if n.encode() in w["records"]
               else None, "proof": w["tree"].prove(w["root"], tree_key(n.encode())).to_bytes()}
              for n in ans.names_used]
    tip = {"height": HEIGHT, "hash": hashlib.sha256(hashlib.sha256(w["headers"][HEIGHT]).digest()).digest(),
           "name_root": w["root"]}
    body = {"v": 1, "question": {"name": fqdn, "type": qtype}, "tip": tip, "served": 10, "valid_until": 10**10,
            "proofs": proofs}
    if not ans.records:
        return {**body, "kind": "error", "answer": None, "error": "not-found: the domain does not exist"}
    mlt = [{"owner": o, "ip": it.ip, "port": it.port, "id_key": it.id_key, "eph_key": eph,
            "eph_update": u.to_bytes() if u else None} for o, (it, eph, u) in ans.minimalt.items()]
    return {**body, "kind": "domain", "answer": {
        "records": [[r.owner, r.rtype, r.rdata] for r in select(ans.records, fqdn, qtype)],
        "tls": [[r.owner, r.rdata] for r in ans.records if r.rtype == "TLSA"], "minimalt": mlt}}


def _lightverify_seeds() -> list[bytes]:
    out = []
    for q in QNAMES:
        for qtype in ("ANY", "A", "TLSA"):
            out.append(envelope.encode_body(_answer_body(q, qtype)))
    return out


def run_lightverify(data: bytes) -> None:
    """The input is the body a resolver holding a valid key signs (so the fuzzer plays a lying
    resolver); the light client must refuse it with VerifyError or accept it, nothing else."""
    w = world()
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=True)
        q = body["question"]
        fqdn, qtype = q["name"], q["type"]
    except Exception:
        return        # not a body any resolver signs: the envelope layer is fuzzed on its own
    if type(fqdn) is not str or type(qtype) is not str:
        return        # a client only ever asks text questions, and the answer must repeat its own
    signed = msgpack.packb([envelope.VERSION, data, w["key"].sign(envelope.TAG + data)], use_bin_type=True)
    opened = open_answer(signed, w["key"].public_key, fqdn, qtype, now=100.0)
    headers = w["headers"]
    verify_answer(opened, lambda h: headers[h], HEIGHT, REGTEST, now=100.0)


# --- ephemeral-key updates ----------------------------------------------------------------------------------

def _sample_ekey(seq: int = 1) -> EKeyUpdate:
    w = world()
    return make_update(b"d/example", bytes([9] * 32), seq, 1000, OWNER_SECRET, w["owner_pub"])


@functools.cache
def _ekey_store():
    w = world()
    return EKeyStore(MemoryDB(), w["records"], lambda: HEIGHT, REGTEST, clock=lambda: 100.0)


def _ekey_seeds() -> list[bytes]:
    return [_sample_ekey(s).to_bytes() for s in (1, 2, 10)]


def run_ekeys(data: bytes) -> None:
    store = _ekey_store()
    store.latest.clear()           # every input meets the same store
    u = store.submit(data)
    if EKeyUpdate.from_bytes(u.to_bytes()) != u or store.current(u.name) != u:
        raise ContractBroken("accepted update does not round-trip or is not current")


# --- tunnel datagrams and frames -----------------------------------------------------------------

TUN_TID, TUN_KEYS = bytes(range(8)), TC.Keys(bytes([3] * 32), bytes([4] * 32))


def _tunnel_seeds() -> list[bytes]:
    frames = [TP.Stream(1, 0, b"GET / HTTP/1.0\r\n\r\n", True), TP.Ack(1, 20, 65536), TP.Reset(3),
              TP.NextTid(bytes(8), bytes(32)), TP.NextTidAck(bytes(8)), TP.Ping(), TP.Close()]
    body = TP.encode_frames(frames)
    header = TP.Data(TUN_TID, 0, b"").header()
    return [body, body + bytes(5), header + TC.seal(TUN_KEYS.recv, 0, header, body),
            TP.Open(TUN_TID, 0, bytes(4), bytes(32), 1000, bytes(16), bytes(8), bytes(40)).to_bytes(),
            TP.Puzzle(TUN_TID, bytes(16)).to_bytes()]


def run_tunnel(data: bytes) -> None:
    """The datagram parser and the frame parser on the same bytes: PacketError or success
    (caught here, since a seed valid for one parser is not for the other); what parses re-encodes."""
    try:
        pkt = TP.parse_datagram(data)
        if pkt.to_bytes() != data:
            raise ContractBroken("datagram does not re-encode")
    except TP.PacketError:
        pass
    try:
        frames = TP.decode_frames(data)
    except TP.PacketError:
        return
    again = TP.encode_frames(frames)
    if data[:len(again)] != again or any(data[len(again):]):
        raise ContractBroken("frames do not re-encode (beyond zero padding)")


def run_tunnel_session(data: bytes) -> None:
    """Arbitrary plaintext behind a valid seal, fed to a server tunnel: whatever the frames
    say, the session neither raises nor holds more streams than its bound."""
    sent = []
    s = TunnelSession(TUN_TID, TC.Keys(TUN_KEYS.send, TUN_KEYS.recv), False, lambda d, a: sent.append(d), None)
    s.on_stream = lambda st: None
    header = TP.Data(TUN_TID, 0, b"").header()
    pkt = TP.Data(TUN_TID, 0, TC.seal(TUN_KEYS.recv, 0, header, data))
    s.on_datagram(pkt, ("127.0.0.1", 1), 1.0)
    s.flush(1.0)
    s.on_timer(5.0)
    if len(s.streams) > 256 or any(len(d) > TP.MAX_DATAGRAM for d in sent):
        raise ContractBroken("session bounds broken")


# --- JSON-RPC bodies ------------------------------------------------------------------------------------------

# Methods a fuzzer must not call: they stop the node or mine (unbounded work by design).
RPC_SKIP = {"stop", "generate", "generatetoaddress"}


class _Request:
    """What RPCServer.handle reads of an aiohttp request."""

    def __init__(self, body: bytes, auth: str):
        self.headers = {"Authorization": auth}
        self._body = body

    async def read(self) -> bytes:
        return self._body


@functools.cache
def _rpc():
    datadir = tempfile.mkdtemp(prefix="dotbit-fuzz-rpc-")
    atexit.register(shutil.rmtree, datadir, True)
    loop = asyncio.new_event_loop()
    node = Node(REGTEST, datadir)
    _register_example(node, loop)
    server = RPCServer(node, "u:p", node.rpc_methods)     # every method the node serves
    auth = "Basic " + base64.b64encode(b"u:p").decode()
    return loop, server, auth, node


def _register_example(node, loop) -> None:
    """Mature coins for the node's mining key, then d/example registered with them, so the
    name methods have a real record to show, scan and prove."""
    secret, address = load_mining_key(node.datadir)
    pub, lock, fee, name, rand = pubkey_from_secret(secret), REGTEST.name_lock, 100_000, b"d/example", bytes(20)

    def mine(n):
        loop.run_until_complete(node.mining.generate(n, address))

    def coinbase(height):
        return node.chain.get_block(node.chain.entry_at(height).hash).txs[0]

    def send(ins, outs, spent):
        tx = sign_tx(Tx(1, tuple(TxIn(t, i) for t, i in ins), tuple(outs), 0), spent, [secret] * len(ins),
                     [pub] * len(ins))
        node.mempool.accept(tx)
        return tx
    mine(REGTEST.coinbase_maturity + 2)
    cb1, cb2 = coinbase(1), coinbase(2)
    v1, v2 = cb1.outputs[0].value, cb2.outputs[0].value
    new = send([(cb1.txid, 0)], [name_new_output(name, rand, address, lock), TxOut(v1 - lock - fee, address)],
               [(v1, address)])
    mine(REGTEST.min_firstupdate_depth)
    burn = registration_burn(name, node.chain.height + 1, REGTEST)
    outs = firstupdate_outputs(name, rand, json.dumps(NAME_VALUES[name]).encode(), address, lock, burn)
    send([(new.txid, 0), (cb2.txid, 0)], outs + [TxOut(v2 - burn - fee, address)], [(lock, address), (v2, address)])
    mine(1)


def _rpc_seeds() -> list[bytes]:
    """A call of every method with real arguments (hashes, txids and addresses of the node's
    own chain), plus a batch."""
    _, _, _, node = _rpc()
    tip = node.chain.tip
    block = node.chain.get_block(tip.hash)
    cb = block.txs[0]
    addr = node.mining_address_text
    h, txid = tip.hash.hex(), cb.txid.hex()
    calls = [["getblockchaininfo", []], ["getblockcount", []], ["getbestblockhash", []], ["getblockhash", [1]],
             ["getblock", [h, 0]], ["getblock", [h, 1]], ["getblock", [h, 2]], ["getblockheader", [h]],
             ["getblockheader", [h, False]], ["getrawtransaction", [txid, True]], ["getrawtransaction", [txid]],
             ["decoderawtransaction", [_sample_tx().to_bytes().hex()]], ["sendrawtransaction", [cb.to_bytes().hex()]],
             ["getmempoolinfo", []], ["getrawmempool", [True]], ["gettxout", [txid, 0]],
             ["getaddressutxos", [addr]], ["getaddressutxos", [{"addresses": [addr]}]],
             ["getaddresshistory", [addr]], ["validateaddress", [addr]], ["getminingaddress", []],
             ["getblocktemplate", [{}]], ["submitblock", [block.to_bytes().hex()]], ["uptime", []],
             ["help", []], ["help", ["getblock"]], ["name_show", ["d/example", {"valueEncoding": "hex"}]],
             ["name_show", ["642f6578616d706c65", {"nameEncoding": "hex", "allowExpired": True}]],
             ["name_history", ["d/example"]], ["name_scan", ["", 10, {"prefix": "d/", "regexp": "^d/"}]],
             ["name_pending", ["d/example"]], ["name_checkdb", []], ["getnameproof", ["d/example", h]],
             ["getpeerinfo", []], ["getconnectioncount", []], ["getnetworkinfo", []], ["getnodeaddresses", [0]],
             ["addnode", ["127.0.0.1:1", "add"]], ["setban", ["1.2.3.4", "add"]], ["listbanned", []]]
    out = [json.dumps({"method": m, "params": p, "id": i}).encode() for i, (m, p) in enumerate(calls)]
    out.append(json.dumps([{"method": "getblockcount", "id": 1},
                           {"method": "getblockheader", "params": {"blockhash": h}, "id": 2}]).encode())
    return out


def rpc_replies(data: bytes) -> list[dict] | None:
    """The replies RPCServer.handle gives for a raw POST body (None: skipped, see RPC_SKIP)."""
    loop, server, auth, _ = _rpc()
    try:
        parsed = json.loads(data)
    except Exception:
        parsed = None
    calls = parsed if isinstance(parsed, list) else [parsed]
    if any(isinstance(c, dict) and isinstance(c.get("method"), str) and c["method"] in RPC_SKIP for c in calls):
        return None
    resp = loop.run_until_complete(server.handle(_Request(data, auth)))
    reply = json.loads(resp.body)
    return reply if isinstance(reply, list) else [reply]


def run_rpc(data: bytes) -> None:
    """Raw bytes as a POST body through RPCServer.handle: a reply always comes back, and no
    method fails with an internal error (a bug caught only by the catch-all)."""
    for r in rpc_replies(data) or ():
        err = r.get("error")
        if err and err.get("code") == -1 and str(err.get("message", "")).startswith("internal error"):
            raise ContractBroken(f"rpc internal error: {err['message'][:200]}")


# --- the table --------------------------------------------------------------------------------------------------

TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("p2p", (ValidationError,), _p2p_seeds, run_p2p),
    Target("primitives", (ValidationError,), _primitives_seeds, run_primitives),
    Target("auxpow", (ValidationError,), _auxpow_seeds, run_auxpow),
    Target("dns", (), _dns_seeds, run_dns),
    Target("dvalue", (), _dvalue_seeds, run_dvalue),
    Target("rpc", (), _rpc_seeds, run_rpc),
    Target("envelope", (envelope.EnvelopeError,), _envelope_seeds, run_envelope),
    Target("proof", (ProofError,), _proof_seeds, run_proof),
    Target("lightverify", (VerifyError,), _lightverify_seeds, run_lightverify),
    Target("ekeys", (EKeyError,), _ekey_seeds, run_ekeys),
    Target("tunnel", (), _tunnel_seeds, run_tunnel),
    Target("tunnel-session", (), _tunnel_seeds, run_tunnel_session),
)}


def check(target: Target, data: bytes) -> BaseException | None:
    """Runs one input; returns the contract violation (an exception outside `allowed`), else None."""
    try:
        target.run(data)
    except target.allowed:
        return None
    except Exception as e:           # noqa: BLE001 - a finding, reported by the caller
        return e
    return None
