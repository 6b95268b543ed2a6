"""Name-tree proofs and their verifier.

Light clients import this module alone, so it depends only on hashlib and msgpack: given a
name_root from a header they verified by proof of work, a key (SHA-256 of the name) and a
proof, `verify_proof` returns the committed record hash, or None for a proven absence, or
raises ProofError.

The tree (DESIGN §4): a binary Merkle radix tree over 256-bit keys, bit i of a key being its
i-th bit counted from the most significant bit of the first byte. A leaf sits at the
shallowest depth where its key prefix is unique; the empty tree hashes to 32 zero bytes.
    leaf     = SHA-256(0x00 | key | value_hash)
    internal = SHA-256(0x01 | left | right)
A proof lists the siblings on the key's path from the root down, with empty siblings left out
and marked in a bitmap, and what the path ends in: the key's own leaf (presence), an empty
subtree, or another key's leaf (both absence).
"""
from __future__ import annotations

import hashlib
import threading

import msgpack

EMPTY = bytes(32)
KEY_BITS = 256

TERM_PRESENT = 0
TERM_EMPTY = 1
TERM_OTHER = 2

PROOF_VERSION = 1


class ProofError(Exception):
    pass


_packers = threading.local()


def _packer() -> msgpack.Packer:
    packer = getattr(_packers, "packer", None)
    if packer is None:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    return packer


def leaf_hash(key: bytes, value_hash: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + key + value_hash).digest()


def internal_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def key_bit(key: bytes, i: int) -> int:
    return (key[i >> 3] >> (7 - (i & 7))) & 1


class Proof:
    __slots__ = ("siblings", "kind", "other_key", "value_hash")

    def __init__(self, siblings: list[bytes], kind: int, other_key: bytes | None = None,
                 value_hash: bytes | None = None):
        self.siblings = siblings      # top-down, EMPTY included
        self.kind = kind
        self.other_key = other_key    # TERM_OTHER: the leaf found on the path
        self.value_hash = value_hash  # TERM_PRESENT: the key's value; TERM_OTHER: the other leaf's

    @property
    def depth(self) -> int:
        return len(self.siblings)

    def __eq__(self, other):
        return isinstance(other, Proof) and self.to_bytes() == other.to_bytes()

    def to_bytes(self) -> bytes:
        # The bitmap as one integer, most significant bit the top sibling, and a Packer kept
        # per thread (packb makes one per call): a node encodes a proof per signed HTTP answer.
        depth = len(self.siblings)
        present = [s for s in self.siblings if s != EMPTY]
        if len(present) == depth:
            marks = (1 << depth) - 1
        else:
            marks = 0
            for s in self.siblings:
                marks = marks << 1 | (s != EMPTY)
        n = (depth + 7) >> 3
        bitmap = (marks << (8 * n - depth)).to_bytes(n, "big")
        return _packer().pack([PROOF_VERSION, depth, bitmap, present, self.kind, self.other_key, self.value_hash])

    @staticmethod
    def from_bytes(data: bytes) -> "Proof":
        try:
            obj = msgpack.unpackb(data, raw=False, strict_map_key=True, max_bin_len=KEY_BITS * 32 + 64,
                                  max_array_len=KEY_BITS + 8)
        except Exception as e:
            raise ProofError(f"undecodable proof: {e}") from None
        if not isinstance(obj, list) or len(obj) != 7 or obj[0] != PROOF_VERSION:
            raise ProofError("proof: wrong shape or version")
        _, depth, bitmap, present, kind, other_key, value_hash = obj
        if type(depth) is not int or not 0 <= depth <= KEY_BITS:
            raise ProofError("proof: bad depth")
        if type(bitmap) is not bytes or len(bitmap) != (depth + 7) // 8:
            raise ProofError("proof: bad bitmap")
        if not isinstance(present, list) or any(type(s) is not bytes or len(s) != 32 or s == EMPTY
                                                for s in present):
            raise ProofError("proof: bad sibling")
        if depth & 7 and bitmap[-1] & (0xFF >> (depth & 7)):
            raise ProofError("proof: bitmap padding not zero")
        siblings, it = [], iter(present)
        for i in range(depth):
            if bitmap[i >> 3] & (0x80 >> (i & 7)):
                s = next(it, None)
                if s is None:
                    raise ProofError("proof: fewer siblings than the bitmap marks")
                siblings.append(s)
            else:
                siblings.append(EMPTY)
        if next(it, None) is not None:
            raise ProofError("proof: more siblings than the bitmap marks")
        if kind == TERM_PRESENT:
            ok = other_key is None and _is_hash(value_hash)
        elif kind == TERM_EMPTY:
            ok = other_key is None and value_hash is None
        elif kind == TERM_OTHER:
            ok = _is_hash(other_key) and _is_hash(value_hash)
        else:
            ok = False
        if not ok:
            raise ProofError("proof: bad terminal")
        return Proof(siblings, kind, other_key, value_hash)


def _is_hash(b) -> bool:
    return type(b) is bytes and len(b) == 32


def _common_prefix(a: bytes, b: bytes, n: int) -> bool:
    return all(key_bit(a, i) == key_bit(b, i) for i in range(n))


def verify_proof(root: bytes, key: bytes, proof: Proof | bytes) -> bytes | None:
    """The value hash `root` commits to for `key`, or None if `root` proves it absent.
    Raises ProofError if the proof does not lead to `root`."""
    if not _is_hash(root) or not _is_hash(key):
        raise ProofError("root and key must be 32 bytes")
    if isinstance(proof, (bytes, bytearray)):
        proof = Proof.from_bytes(bytes(proof))
    depth = proof.depth
    if proof.kind == TERM_PRESENT:
        h = leaf_hash(key, proof.value_hash)
        result = proof.value_hash
    elif proof.kind == TERM_EMPTY:
        h = EMPTY
        result = None
    else:
        if proof.other_key == key or not _common_prefix(key, proof.other_key, depth):
            raise ProofError("proof: the other leaf is not on the key's path")
        h = leaf_hash(proof.other_key, proof.value_hash)
        result = None
    for i in range(depth - 1, -1, -1):
        sib = proof.siblings[i]
        h = internal_hash(sib, h) if key_bit(key, i) else internal_hash(h, sib)
    if h != root:
        raise ProofError("proof does not match the root")
    return result
