"""Issued certificates in the node's LevelDB (keys X, x, Y of node/chain/layout.py).

Off-chain and not projections: reindex leaves them alone. A record is written once at
issuance (in one batch with its name index entry) and rewritten once if revoked, so a crash
leaves either state, never half of one. The CRL is derived from the records (the service
re-makes it after a start and after revocations), so it is stored on its own. The records of a
name are also held in memory: TLSA answers read them on every query that misses the caches.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from node.chain import layout as L
from core.encoding import expect_bytes, expect_list, expect_uint, pack, unpack

from core.ca_proof import SERIAL_LEN

MAX_RECORD = 16_384


@dataclass(frozen=True, slots=True)
class CertRecord:
    serial: bytes             # 16 bytes, the certificate's serial number big-endian
    name: bytes               # d/example
    der: bytes                # the leaf certificate
    issued_at: int
    not_after: int
    owner: bytes              # address20 that proved control when it was issued
    revoked_at: int = 0       # 0: not revoked
    reason: str = ""          # why revoked: transferred, expired, owner-request, reorg

    @property
    def revoked(self) -> bool:
        return self.revoked_at != 0

    def to_bytes(self) -> bytes:
        return pack([self.serial, self.name, self.der, self.issued_at, self.not_after, self.owner,
                     self.revoked_at, self.reason])

    @staticmethod
    def from_bytes(data: bytes) -> "CertRecord":
        o = expect_list(unpack(data, MAX_RECORD), 8, "cert record")
        if not isinstance(o[7], str):
            raise ValueError("cert record: reason must be text")
        return CertRecord(expect_bytes(o[0], SERIAL_LEN, "serial"), expect_bytes(o[1], max_len=255, what="name"),
                          expect_bytes(o[2], max_len=MAX_RECORD, what="der"), expect_uint(o[3], 64),
                          expect_uint(o[4], 64), expect_bytes(o[5], 20, "owner"), expect_uint(o[6], 64), o[7])


class CertStore:
    def __init__(self, db, now: float = 0):
        """Only leaves still valid at `now` are held in memory (an expired one answers no TLSA,
        needs no revocation and leaves the CRL); `get` still finds every record in the DB."""
        self.db = db
        self.by_name: dict[bytes, dict[bytes, CertRecord]] = {}
        for _, raw in db.iterator(prefix=L.CA_CERT):
            rec = CertRecord.from_bytes(raw)
            if rec.not_after > now:
                self.by_name.setdefault(rec.name, {})[rec.serial] = rec

    def forget_expired(self, name: bytes, now: float) -> list[bytes]:
        """Drops a name's expired leaves from memory; returns their serials."""
        recs = self.by_name.get(name, {})
        gone = [s for s, r in recs.items() if r.not_after <= now]
        for s in gone:
            del recs[s]
        if not recs:
            self.by_name.pop(name, None)
        return gone

    def get(self, serial: bytes) -> CertRecord | None:
        raw = self.db.get(L.ca_cert_key(serial))
        return CertRecord.from_bytes(raw) if raw is not None else None

    def of_name(self, name: bytes) -> list[CertRecord]:
        return list(self.by_name.get(name, {}).values())

    def add(self, rec: CertRecord) -> None:
        with self.db.write_batch() as b:
            b.put(L.ca_cert_key(rec.serial), rec.to_bytes())
            b.put(L.ca_name_key(rec.name, rec.serial), b"")
        self.by_name.setdefault(rec.name, {})[rec.serial] = rec

    def revoke(self, recs: list[CertRecord], at: int, reason: str) -> list[CertRecord]:
        """Marks `recs` revoked, in one batch: the cost is that of `recs`, not of history."""
        done = [replace(r, revoked_at=at, reason=reason) for r in recs]
        with self.db.write_batch() as b:
            for r in done:
                b.put(L.ca_cert_key(r.serial), r.to_bytes())
        for r in done:
            self.by_name.setdefault(r.name, {})[r.serial] = r
        return done

    def revoked(self, now: float) -> list[CertRecord]:
        """Revoked leaves not yet expired at `now`: an entry may leave the CRL once its
        certificate has expired (RFC 5280 §3.3), so the CRL holds at most 90 days of them."""
        return sorted((r for recs in self.by_name.values() for r in recs.values() if r.revoked and r.not_after > now),
                      key=lambda r: (r.revoked_at, r.serial))

    def counts(self, name: bytes, now: float, owner: bytes) -> tuple[int, int]:
        """(live, unexpired) leaves of a name issued to `owner`: unrevoked ones, and all that
        have not expired (revoked ones included: they are on the CRL until they expire)."""
        mine = [r for r in self.by_name.get(name, {}).values() if r.not_after > now and r.owner == owner]
        return sum(1 for r in mine if not r.revoked), len(mine)

    def crl(self) -> tuple[int, bytes] | None:
        raw = self.db.get(L.CA_CRL)
        if raw is None:
            return None
        number, der = expect_list(unpack(raw, 64 * 1024 * 1024), 2, "crl")
        return number, der

    def put_crl(self, number: int, der: bytes) -> None:
        with self.db.write_batch() as b:
            b.put(L.CA_CRL, pack([number, der]))
