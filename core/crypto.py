"""Hashes, secp256k1 signatures and addresses.

Signing and verification go straight to libsecp256k1 through coincurve's cffi bindings: the
verify call is on the block-connect hot path, and coincurve's high-level API would convert
every compact signature to DER and back. libsecp256k1 refuses high-S signatures in verify,
which is exactly the low-S consensus rule.
"""
from __future__ import annotations

import functools
import hashlib

import base58
import coincurve
from coincurve._libsecp256k1 import ffi, lib

_CTX = coincurve.context.GLOBAL_CONTEXT.ctx
SIGHASH_TAG = b"dotbit/sighash/v1"

_sha256 = hashlib.sha256


def sha256(data: bytes) -> bytes:
    return _sha256(data).digest()


def py_sha256d(data: bytes) -> bytes:
    return _sha256(_sha256(data).digest()).digest()


def py_merkle_branch_root(leaf: bytes, branch, index: int) -> bytes:
    """Namecoin's CheckMerkleBranch, internal byte order throughout: at each level the running
    hash is the right-hand side when the index's low bit is set."""
    h = leaf
    for sibling in branch:
        h = _sha256(_sha256(sibling + h if index & 1 else h + sibling).digest()).digest()
        index >>= 1
    return h


# The native versions (core/_hashes.c, OpenSSL's SHA256) are the same functions in one C call
# each: a merge-mined header's check is a dozen double hashes, where CPython's per-call cost
# is most of the time. The build makes the extension optional (no compiler or OpenSSL headers:
# the pure-Python versions serve, only slower); DOTBIT_REQUIRE_NATIVE=1 makes CI insist on it.
try:
    from core import _hashes as _native
except ImportError:                  # pragma: no cover - exercised on machines without a compiler
    _native = None
NATIVE = _native is not None
sha256d = _native.sha256d if NATIVE else py_sha256d
merkle_branch_root = _native.merkle_branch_root if NATIVE else py_merkle_branch_root


def native_function(name: str):
    """A function of core/_hashes.c, or None without the extension (callers keep a Python path)."""
    return getattr(_native, name, None)


def hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", _sha256(data).digest()).digest()


# --- keys and signatures -----------------------------------------------------------------

def generate_secret() -> bytes:
    return coincurve.PrivateKey().secret


def pubkey_from_secret(secret: bytes) -> bytes:
    return coincurve.PrivateKey(secret).public_key.format(compressed=True)


def sign_digest(secret: bytes, digest: bytes) -> bytes:
    """64-byte compact signature, low-S (libsecp256k1 always produces low-S, RFC 6979 nonces).
    Called directly: coincurve.PrivateKey() would first derive the public key, which costs
    more than the signature itself."""
    if len(secret) != 32 or len(digest) != 32:
        raise ValueError("secret and digest must be 32 bytes")
    sig = ffi.new("secp256k1_ecdsa_signature *")
    if not lib.secp256k1_ecdsa_sign(_CTX, sig, digest, secret, ffi.NULL, ffi.NULL):
        raise ValueError("invalid secret key")
    out = ffi.new("unsigned char[64]")
    lib.secp256k1_ecdsa_signature_serialize_compact(_CTX, out, sig)
    return bytes(ffi.buffer(out, 64))


def verify_digest(pubkey33: bytes, sig64: bytes, digest: bytes) -> bool:
    if len(pubkey33) != 33 or len(sig64) != 64 or len(digest) != 32:
        return False
    sig = ffi.new("secp256k1_ecdsa_signature *")
    if not lib.secp256k1_ecdsa_signature_parse_compact(_CTX, sig, sig64):
        return False
    pub = ffi.new("secp256k1_pubkey *")
    if not lib.secp256k1_ec_pubkey_parse(_CTX, pub, pubkey33, 33):
        return False
    return bool(lib.secp256k1_ecdsa_verify(_CTX, sig, digest, pub))


def is_low_s(sig64: bytes) -> bool:
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    return 0 < int.from_bytes(sig64[32:], "big") <= n // 2


def sighash(txid: bytes, index: int, spent_value: int, spent_address: bytes) -> bytes:
    return sha256d(SIGHASH_TAG + txid + index.to_bytes(4, "little")
                   + spent_value.to_bytes(8, "little") + spent_address)


# --- addresses -----------------------------------------------------------------------------

class AddressError(ValueError):
    pass


@functools.lru_cache(maxsize=65536)
def encode_address(version: int, hash20: bytes) -> str:
    # Cached: pure-Python Base58 is a large share of an RPC answer (name_show, getblock), and
    # the same addresses come back again and again.
    return base58.b58encode_check(bytes([version]) + hash20).decode()


def decode_address(version: int, text: str) -> bytes:
    try:
        raw = base58.b58decode_check(text.strip())
    except ValueError:
        raise AddressError(f"invalid address {text!r}: bad checksum or characters") from None
    if len(raw) != 21:
        raise AddressError(f"invalid address {text!r}: wrong length")
    if raw[0] != version:
        raise AddressError(f"invalid address {text!r}: not for this network")
    return raw[1:]
