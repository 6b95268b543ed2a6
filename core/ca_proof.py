"""Proofs of control of a name for the CA: a secp256k1 signature (64-byte compact, low-S,
core.crypto) by the key whose HASH160 is the name's CURRENT owner address.

  issue:  SHA-256d(ISSUE_TAG  | magic4 | len8 | name | SHA-256(CSR DER) | block_hash32)
  revoke: SHA-256d(REVOKE_TAG | magic4 | len8 | name | serial16         | block_hash32)

Everything the proof authorises is inside the digest: the purpose (the tag), the network (its
p2p magic), the name (length-prefixed, so "d/a"+x can never read as "d/ab"), the object and a
recent main-chain block. So a proof seen for d/example gets nothing for the owner's d/second,
nor on another network, and the block hash bounds it to a short while (a leaked proof cannot
be replayed after a transfer). Pure: the wallet builds proofs with these functions and the
node checks them with the same ones.
"""
from __future__ import annotations

from core.crypto import sha256, sha256d, sign_digest
from core.names.dnsname import is_domain_label

# v2: v1 digests did not cover the name or the network (issue 16).
ISSUE_TAG = b"dotbit/ca-issue/v2\x00"
REVOKE_TAG = b"dotbit/ca-revoke/v2\x00"
SERIAL_LEN = 16
MAX_NAME = 255


def _scope(tag: bytes, magic: bytes, name: str) -> bytes:
    raw = name.encode("utf-8", "surrogateescape")
    if len(magic) != 4 or len(raw) > MAX_NAME:
        raise ValueError("a CA proof needs a 4-byte network magic and a name of at most 255 bytes")
    return tag + magic + bytes([len(raw)]) + raw


def issue_digest(magic: bytes, name: str, csr_der: bytes, block_hash: bytes) -> bytes:
    return sha256d(_scope(ISSUE_TAG, magic, name) + sha256(csr_der) + block_hash)


def revoke_digest(magic: bytes, name: str, serial: bytes, block_hash: bytes) -> bytes:
    return sha256d(_scope(REVOKE_TAG, magic, name) + serial + block_hash)


def sign_issue(secret: bytes, magic: bytes, name: str, csr_der: bytes, block_hash: bytes) -> bytes:
    return sign_digest(secret, issue_digest(magic, name, csr_der, block_hash))


def sign_revoke(secret: bytes, magic: bytes, name: str, serial: bytes, block_hash: bytes) -> bytes:
    return sign_digest(secret, revoke_digest(magic, name, serial, block_hash))


def fqdn_of(name: str) -> str | None:
    """ "d/example" -> "example.bit" (no trailing dot, as certificates write names)."""
    if not name.startswith("d/"):
        return None
    label = name[2:]
    return label + ".bit" if label and label == label.lower() and is_domain_label(label) else None
