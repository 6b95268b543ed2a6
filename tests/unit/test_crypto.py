"""secp256k1 through coincurve cross-checked against the pure-Python `ecdsa` package on random
keys and messages (seeded), low-S, and Base58Check addresses."""
from __future__ import annotations

import hashlib
import random

import ecdsa
import pytest
from ecdsa.util import sigdecode_string, sigencode_string

from core.crypto import (AddressError, decode_address, encode_address, hash160, is_low_s,
                               pubkey_from_secret, sha256d, sign_digest, verify_digest)

N = ecdsa.SECP256k1.order


def test_cross_check_with_ecdsa_reference():
    rng = random.Random(42)
    for _ in range(50):
        secret = rng.randbytes(32)
        digest = rng.randbytes(32)
        sk = ecdsa.SigningKey.from_string(secret, curve=ecdsa.SECP256k1)
        pub = pubkey_from_secret(secret)
        assert pub == sk.get_verifying_key().to_string("compressed")
        sig = sign_digest(secret, digest)
        assert is_low_s(sig)
        vk = sk.get_verifying_key()
        assert vk.verify_digest(sig, digest, sigdecode=sigdecode_string)
        # the reference signs (maybe high-S); normalised to low-S, coincurve accepts it
        ref = sk.sign_digest_deterministic(digest, hashfunc=hashlib.sha256, sigencode=sigencode_string)
        s = int.from_bytes(ref[32:], "big")
        low = ref[:32] + min(s, N - s).to_bytes(32, "big")
        assert verify_digest(pub, low, digest)
        high = ref[:32] + max(s, N - s).to_bytes(32, "big")
        assert not verify_digest(pub, high, digest)        # high-S refused
        assert not verify_digest(pub, sig, bytes(32))
        assert not verify_digest(pub, sig[:-1] + bytes([sig[-1] ^ 1]), digest)


def test_verify_rejects_garbage():
    assert not verify_digest(b"\x02" + bytes(32), bytes(64), bytes(32))
    assert not verify_digest(bytes(33), b"\xff" * 64, bytes(32))
    assert not verify_digest(b"", b"", b"")


def test_hashes():
    assert sha256d(b"").hex() == "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"
    assert hash160(b"").hex() == "b472a266d0bd89c13706a4132ccfb16f7c3b9fcb"


def test_addresses():
    h = bytes(range(20))
    for version in (52, 60, 111):
        text = encode_address(version, h)
        assert decode_address(version, text) == h
        with pytest.raises(AddressError):
            decode_address(version + 1, text)
        with pytest.raises(AddressError):
            decode_address(version, text[:-1] + ("1" if text[-1] != "1" else "2"))
    with pytest.raises(AddressError):
        decode_address(60, "0OIl")
