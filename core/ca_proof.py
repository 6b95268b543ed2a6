"""Proofs of control of a name for the CA: a secp256k1 signature (64-byte compact, low-S,
core.crypto) by the key whose HASH160 is the name's CURRENT owner address.

  issue:  SHA-256d(ISSUE_TAG  | SHA-256(CSR DER) | block_hash32)
  revoke: SHA-256d(REVOKE_TAG | serial16         | block_hash32)

The block hash must be one of the last few main-chain blocks, so a proof is only good for a
short while (a leaked proof cannot be replayed after a transfer), and the domain tags keep a
proof from ever meaning anything else (a transaction, an ephemeral-key update). Pure: the
wallet builds proofs with these functions and the node checks them with the same ones.
"""
from __future__ import annotations

from core.crypto import sha256, sha256d, sign_digest
from core.names.dnsname import is_domain_label

ISSUE_TAG = b"dotbit/ca-issue/v1\x00"
REVOKE_TAG = b"dotbit/ca-revoke/v1\x00"
SERIAL_LEN = 16


def issue_digest(csr_der: bytes, block_hash: bytes) -> bytes:
    return sha256d(ISSUE_TAG + sha256(csr_der) + block_hash)


def revoke_digest(serial: bytes, block_hash: bytes) -> bytes:
    return sha256d(REVOKE_TAG + serial + block_hash)


def sign_issue(secret: bytes, csr_der: bytes, block_hash: bytes) -> bytes:
    return sign_digest(secret, issue_digest(csr_der, block_hash))


def sign_revoke(secret: bytes, serial: bytes, block_hash: bytes) -> bytes:
    return sign_digest(secret, revoke_digest(serial, block_hash))


def fqdn_of(name: str) -> str | None:
    """ "d/example" -> "example.bit" (no trailing dot, as certificates write names)."""
    if not name.startswith("d/"):
        return None
    label = name[2:]
    return label + ".bit" if label and label == label.lower() and is_domain_label(label) else None
