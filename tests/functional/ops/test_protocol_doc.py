"""docs/protocol.md is precise enough to write a second client: this file is one, written from
the document alone (hashlib, msgpack, PyNaCl, coincurve; no project code), checked against a
real node: header hashes and proof of work, txids and wtxids, the merkle root, the coinbase
height, input signatures and addresses, the name record hash, name-tree proofs and the
resolver envelope."""
from __future__ import annotations

import hashlib
import http.client
import json
import struct

import base58
import coincurve
import msgpack
import pytest
from nacl.signing import VerifyKey

from support.harness import running
from support.resolver import OWNER, ResolverNode, new_datadir

# --- the second client: everything below comes from docs/protocol.md ----------------------------


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def sha256d(b: bytes) -> bytes:
    return sha256(sha256(b))


def hash160(b: bytes) -> bytes:
    return hashlib.new("ripemd160", sha256(b)).digest()


def pack(o) -> bytes:
    return msgpack.packb(o, use_bin_type=True)


def target(bits: int) -> int:
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    if bits & 0x00800000:
        return 0
    return mantissa >> 8 * (3 - exponent) if exponent <= 3 else mantissa << 8 * (exponent - 3)


def parse_header(raw: bytes) -> dict:
    assert len(raw) == 112
    v, prev, merkle, name_root, t, bits, nonce = struct.unpack("<I32s32s32sIII", raw)
    return {"version": v, "prev": prev, "merkle": merkle, "name_root": name_root, "time": t, "bits": bits,
            "nonce": nonce, "hash": sha256d(raw)}


def txid(tx: list) -> bytes:
    version, ins, outs, locktime = tx
    return sha256d(pack([version, [[i[0], i[1]] for i in ins], outs, locktime]))


def merkle_root(hashes: list[bytes]) -> bytes:
    if not hashes:
        return bytes(32)
    level = list(hashes)
    while len(level) > 1:
        nxt = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def sighash(tid: bytes, index: int, value: int, address: bytes) -> bytes:
    return sha256d(b"dotbit/sighash/v1" + tid + struct.pack("<I", index) + struct.pack("<Q", value) + address)


def bit(key: bytes, i: int) -> int:
    return (key[i // 8] >> (7 - i % 8)) & 1


def verify_name_proof(root: bytes, name: bytes, proof_bytes: bytes) -> bytes | None:
    version, depth, bitmap, present, kind, other_key, value_hash = msgpack.unpackb(proof_bytes)
    assert version == 1 and len(bitmap) == (depth + 7) // 8
    it = iter(present)
    siblings = [next(it) if bitmap[i // 8] & (0x80 >> (i % 8)) else bytes(32) for i in range(depth)]
    key = sha256(name)
    if kind == 0:
        h = sha256(b"\x00" + key + value_hash)
    elif kind == 1:
        h = bytes(32)
    else:
        assert other_key != key and all(bit(key, i) == bit(other_key, i) for i in range(depth))
        h = sha256(b"\x00" + other_key + value_hash)
    for i in range(depth - 1, -1, -1):
        h = sha256(b"\x01" + siblings[i] + h) if bit(key, i) else sha256(b"\x01" + h + siblings[i])
    assert h == root, "proof does not lead to the root"
    return value_hash if kind == 0 else None


def open_envelope(data: bytes, public_key: bytes) -> dict:
    version, body, sig = msgpack.unpackb(data)
    assert version == 1 and pack([version, body, sig]) == data
    VerifyKey(public_key).verify(b"dotbit/resolver-envelope/v1\x00" + body, sig)
    return msgpack.unpackb(body)


# --- against a real node ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def node():
    def setup(n):
        n.fund(blocks=102)
        n.register({b"d/example": {"ip": "192.0.2.1"}, b"d/other": {"ip": "192.0.2.2"}})
    yield from running(ResolverNode(new_datadir()), setup)


def get(node, path: str) -> bytes:
    c = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=10)
    c.request("GET", path, headers={"Accept": "application/msgpack"})
    data = c.getresponse().read()
    c.close()
    return data


def test_blocks_transactions_and_signatures(node):
    height = node.call("getblockcount")
    prev = None
    for h in (0, height - 1, height):
        raw_block = bytes.fromhex(node.call("getblock", node.call("getblockhash", h), 0))
        header_raw, txs = msgpack.unpackb(raw_block)
        header = parse_header(header_raw)
        assert header["hash"].hex() == node.call("getblockhash", h)
        assert int.from_bytes(header["hash"], "big") <= target(header["bits"])
        wtxids = [sha256d(pack(tx)) for tx in txs]
        assert merkle_root(wtxids) == header["merkle"]
        assert txs[0][1] == [] and txs[0][3] == h                  # coinbase carries its height
        assert [txid(tx).hex() for tx in txs] == node.call("getblock", header["hash"].hex(), 1)["tx"]
        if prev is not None and h == height:
            assert header["prev"] == prev["hash"]
        prev = header
    # the last block holds the FIRSTUPDATEs: check every input's signature and key
    for tx in txs[1:]:
        tid = txid(tx)
        for n, (prev_txid, prev_index, (sig, pubkey)) in enumerate(tx[1]):
            spent = node.call("getrawtransaction", prev_txid.hex(), True)["vout"][prev_index]
            address = base58.b58decode_check(spent["address"])
            assert address[0] == 60 and hash160(pubkey) == address[1:]            # regtest version byte
            value = spent.get("value_sat", round(spent["value"] * 10**8))
            der = coincurve.ecdsa.cdata_to_der(coincurve.ecdsa.deserialize_compact(sig))
            assert coincurve.PublicKey(pubkey).verify(der, sighash(tid, n, value, address[1:]), hasher=None)


def test_name_record_proof_and_envelope(node):
    raw = get(node, "/v1/resolver")
    body = msgpack.unpackb(msgpack.unpackb(raw)[1])
    public_key = body["answer"]["public_key"]
    assert sha256(public_key).hex() == body["answer"]["fingerprint"]
    open_envelope(raw, public_key)
    ans = open_envelope(get(node, "/v1/name/d/example"), public_key)
    assert ans["kind"] == "name" and ans["question"] == {"name": b"d/example"}
    tip = ans["tip"]
    header = parse_header(open_envelope(get(node, f"/v1/headers?from={tip['height']}&count=1"),
                                        public_key)["answer"]["headers"][0])
    assert header["hash"] == tip["hash"] and header["name_root"] == tip["name_root"]
    (p,) = ans["proofs"]
    value_hash = verify_name_proof(tip["name_root"], b"d/example", p["proof"])
    assert value_hash == sha256(b"dotbit/name-record" + p["record"])
    name, value, address, height, rec_txid, vout = msgpack.unpackb(p["record"])
    assert (name, json.loads(value), address) == (b"d/example", {"ip": "192.0.2.1"}, OWNER.address)
    assert (rec_txid.hex(), vout, height) == (ans["answer"]["txid"].hex(), ans["answer"]["vout"], ans["answer"]["height"])
    # absence is proven too
    missing = open_envelope(get(node, "/v1/name/d/nosuchname"), public_key)
    assert missing["kind"] == "error"
    assert verify_name_proof(missing["tip"]["name_root"], b"d/nosuchname", missing["proofs"][0]["proof"]) is None
    # and a wrong root is caught
    with pytest.raises(AssertionError):
        verify_name_proof(bytes(31) + b"\x01", b"d/example", p["proof"])


def ekey_update(name: bytes, eph: bytes, seq: int, expires: int, secret: bytes, tag=b"dotbit/minimalt-ekey\x00") -> bytes:
    key = coincurve.PrivateKey(secret)
    digest = sha256d(tag + pack([name, eph, seq, expires]))
    sig = coincurve.ecdsa.serialize_compact(coincurve.ecdsa.der_to_cdata(key.sign(digest, hasher=None)))
    return pack([name, eph, seq, expires, key.public_key.format(compressed=True), sig])


def test_ephemeral_key_update(node):
    import time
    expires = int(time.time()) + 3600

    def post(update: bytes) -> dict:
        c = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=10)
        c.request("POST", "/v1/ekey", update, {"Content-Type": "application/msgpack", "Accept": "application/msgpack"})
        data = c.getresponse().read()
        c.close()
        return msgpack.unpackb(msgpack.unpackb(data)[1])
    good = post(ekey_update(b"d/other", bytes([7]) * 32, 1, expires, OWNER.secret))
    assert good["kind"] == "ekey" and good["answer"]["accepted"] is True
    bad = post(ekey_update(b"d/other", bytes([8]) * 32, 2, expires, OWNER.secret, tag=b"dotbit/other-tag\x00"))
    assert bad["kind"] == "error" and bad["error"].startswith("ekey-bad-signature")


def test_p2p_version_handshake(node):
    import socket
    magic = bytes.fromhex("d07b17ff")
    with socket.create_connection(("127.0.0.1", node.p2p_port), timeout=10) as s:
        body = pack(["version", [1, 1, 0, 12345, 0, 0, b"doc-client/1"]])
        s.sendall(magic + struct.pack("<I", len(body)) + body)
        got = []
        buf = b""
        while len(got) < 2:
            buf += s.recv(65536)
            while len(buf) >= 8 and len(buf) >= 8 + struct.unpack("<I", buf[4:8])[0]:
                assert buf[:4] == magic
                n = struct.unpack("<I", buf[4:8])[0]
                got.append(msgpack.unpackb(buf[8:8 + n]))
                buf = buf[8 + n:]
        kinds = {m[0]: m[1] for m in got}
        assert set(kinds) >= {"version", "verack"}
        version = kinds["version"]
        assert version[0] == 1 and version[2] == node.call("getblockcount") and len(version) == 7
