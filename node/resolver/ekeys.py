"""MinimaLT ephemeral-key updates, kept off-chain (seed 004 §4.2, DESIGN §5).

An update is the msgpack array `[name, eph_key, seq, expires, pubkey33, sig64]`, signed
(secp256k1, compact low-S) over SHA-256d(TAG | pack([name, eph_key, seq, expires])) by the key
that owns the name: HASH160(pubkey33) must be the name record's address. The store keeps the
latest valid update per name in the node's LevelDB (one key per name, so it survives restarts
and is untouched by reindex) and tells listeners (p2p gossip) about each accepted update.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from node.chain import layout as L
from node.chain.crypto import hash160, sha256d, sign_digest, verify_digest
from node.chain.encoding import expect_bytes, expect_list, expect_uint, pack, unpack
from node.names.rules import is_expired

log = logging.getLogger("dotbit.resolver.ekeys")

TAG = b"dotbit/minimalt-ekey\x00"
MAX_UPDATE_SIZE = 512
MAX_LIFETIME = 30 * 86400      # an ephemeral key announced for longer defeats forward secrecy


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
            return EKeyUpdate(expect_bytes(o[0], what="name", max_len=255), expect_bytes(o[1], 32, "eph_key"),
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


class EKeyStore:
    def __init__(self, db, names, height: Callable[[], int], params, clock: Callable[[], float] = time.time):
        self.db = db
        self.names = names
        self.height = height
        self.params = params
        self.clock = clock
        self.listeners: list[Callable] = []      # fn(update_bytes, EKeyUpdate) after acceptance
        self.latest: dict[bytes, EKeyUpdate] = {}
        for _, raw in db.iterator(prefix=L.EKEY):
            try:
                u = EKeyUpdate.from_bytes(raw)
                self.latest[u.name] = u
            except EKeyError:
                log.warning("dropping unreadable stored ekey update")

    def _owner(self, name: bytes) -> bytes | None:
        rec = self.names.get(name)
        if rec is None or is_expired(rec, self.height(), self.params):
            return None
        return rec.address

    def current(self, name: bytes) -> EKeyUpdate | None:
        """The freshest update still valid now: unexpired and signed by the name's owner."""
        u = self.latest.get(name)
        if u is None or u.expires <= self.clock() or self._owner(name) != hash160(u.pubkey):
            return None
        return u

    def submit(self, data: bytes) -> EKeyUpdate:
        """Check and keep an update; raises EKeyError with a stable reason."""
        u = EKeyUpdate.from_bytes(data)
        now = self.clock()
        if u.expires <= now:
            raise EKeyError("ekey-expired", "the update has expired")
        if u.expires > now + MAX_LIFETIME:
            raise EKeyError("ekey-too-long", f"expiry more than {MAX_LIFETIME}s ahead")
        owner = self._owner(u.name)
        if owner is None:
            raise EKeyError("ekey-no-name", "the name is not registered or has expired")
        if hash160(u.pubkey) != owner:
            raise EKeyError("ekey-wrong-signer", "the signing key does not own the name")
        if not verify_digest(u.pubkey, u.sig, u.digest):
            raise EKeyError("ekey-bad-signature", "signature does not verify")
        prev = self.latest.get(u.name)
        # A previous owner's sequence numbers do not bind the new owner after a transfer.
        if prev is not None and hash160(prev.pubkey) == owner and u.seq <= prev.seq:
            raise EKeyError("ekey-old-seq", f"seq {u.seq} is not above {prev.seq}")
        with self.db.write_batch() as b:
            b.put(L.ekey_key(u.name), u.to_bytes())
        self.latest[u.name] = u
        for fn in self.listeners:
            try:
                fn(data, u)
            except Exception:
                log.exception("ekey listener failed")
        return u
