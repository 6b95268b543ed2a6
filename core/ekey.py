"""The MinimaLT ephemeral-key update message: wire form, signing digest, signing (DESIGN §5).

An update is the msgpack array `[name, eph_key, seq, expires, pubkey33, sig64]`, signed
(secp256k1, compact low-S) over SHA-256d(TAG | pack([name, eph_key, seq, expires])) by the key
that owns the name. It lives here, beside the other shared primitives, because two sides build
or read it: the wallet signs updates (wallet/ekeys.py) and the node checks, stores and serves
them (node/resolver/ekeys.py, light/verify.py). Pure: no I/O, no clock.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.crypto import sha256d, sign_digest
from core.encoding import expect_bytes, expect_list, expect_uint, pack, unpack

TAG = b"dotbit/minimalt-ekey\x00"
MAX_UPDATE_SIZE = 512
MAX_LIFETIME = 30 * 86400      # an ephemeral key announced for longer defeats forward secrecy
EPH_KEY_LEN = 32               # Curve25519 public key


class EKeyError(Exception):
    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EKeyUpdate:
    name: bytes
    eph_key: bytes
    seq: int
    expires: int
    pubkey: bytes
    sig: bytes

    @property
    def digest(self) -> bytes:
        return signing_digest(self.name, self.eph_key, self.seq, self.expires)

    def to_bytes(self) -> bytes:
        return pack([self.name, self.eph_key, self.seq, self.expires, self.pubkey, self.sig])

    @staticmethod
    def from_bytes(data: bytes) -> "EKeyUpdate":
        try:
            o = expect_list(unpack(data, MAX_UPDATE_SIZE), 6, "ekey update")
            return EKeyUpdate(expect_bytes(o[0], what="name", max_len=255),
                              expect_bytes(o[1], EPH_KEY_LEN, "eph_key"),
                              expect_uint(o[2], 64, "seq"), expect_uint(o[3], 64, "expires"),
                              expect_bytes(o[4], 33, "pubkey"), expect_bytes(o[5], 64, "sig"))
        except EKeyError:
            raise
        except Exception as e:
            raise EKeyError("ekey-malformed", f"malformed ekey update: {e}") from None


def signing_digest(name: bytes, eph_key: bytes, seq: int, expires: int) -> bytes:
    return sha256d(TAG + pack([name, eph_key, seq, expires]))


def make_update(name: bytes, eph_key: bytes, seq: int, expires: int, secret: bytes, pubkey: bytes) -> EKeyUpdate:
    return EKeyUpdate(name, eph_key, seq, expires, pubkey,
                      sign_digest(secret, signing_digest(name, eph_key, seq, expires)))
