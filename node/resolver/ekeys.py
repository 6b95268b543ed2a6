"""MinimaLT ephemeral-key updates, kept off-chain (seed 004 §4.2, DESIGN §5).

An update (core/ekey.py: the message, shared with the wallet that signs it) is accepted
when signed by the key that owns the name: HASH160(pubkey33) must be the name record's
address. The store keeps the latest valid update per name in the node's LevelDB (one key per
name, so it survives restarts and is untouched by reindex) and tells listeners (p2p gossip)
about each accepted update.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from node.chain import layout as L
from core.crypto import hash160, verify_digest
# The message itself (wire form, digest, signing) is shared with the wallet, so it lives with
# the primitives; re-exported here for the node side and the tests that import it from here.
from core.ekey import (MAX_LIFETIME, MAX_UPDATE_SIZE, TAG, EKeyError, EKeyUpdate, make_update,
                             signing_digest)
from core.names.rules import is_expired
from node.events import Event

__all__ = ["EKeyStore", "EKeyError", "EKeyUpdate", "MAX_LIFETIME", "MAX_UPDATE_SIZE", "TAG", "make_update",
           "signing_digest"]

log = logging.getLogger("dotbit.resolver.ekeys")


class EKeyStore:
    def __init__(self, db, names, height: Callable[[], int], params, clock: Callable[[], float] = time.time):
        self.db = db
        self.names = names
        self.height = height
        self.params = params
        self.clock = clock
        # fn(update_bytes, EKeyUpdate), after acceptance
        self.listeners: Event[[bytes, EKeyUpdate]] = Event(log, "ekey listener failed")
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
        self.listeners.emit(data, u)
        return u
