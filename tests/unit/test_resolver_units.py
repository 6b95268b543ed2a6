"""Unit tests of the resolver's pure parts: the online signer's cache and refresh, the
white-lie NSEC name arithmetic (canonical order), and the ephemeral-key store's rules on
both stores (ownership, sequence, expiry, transfer, restart)."""
from __future__ import annotations

import random

import dns.dnssec
import dns.name
import dns.rrset
import pytest

from support.chain import Key
from core.names.rules import NameRecord
from core.params import REGTEST
from node.resolver.dnssec import REFRESH, VALIDITY, OnlineSigner, predecessor, successor, successor_after_subtree
from node.resolver.ekeys import EKeyError, EKeyStore, make_update
from node.resolver.identity import ResolverKey, ZONE


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def test_signatures_cached_until_shortly_before_expiry():
    key = ResolverKey(bytes(range(32)))
    clock = Clock(1_800_000_000)
    signer = OnlineSigner(key, clock)
    rrset = dns.rrset.from_text("www.example.bit.", 300, "IN", "A", "192.0.2.1")
    first = signer.sign(rrset)
    dns.dnssec.validate(rrset, first, {ZONE: signer.dnskey_rrset(300)}, now=clock.now)
    clock.now += VALIDITY - REFRESH - 10
    assert signer.sign(rrset) is first                       # still fresh enough: same signature
    clock.now += 20
    second = signer.sign(rrset)
    assert second is not first and second[0].expiration > first[0].expiration
    dns.dnssec.validate(rrset, second, {ZONE: signer.dnskey_rrset(300)}, now=clock.now)


def _random_name(rng):
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-_*"
    labels = [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(rng.randint(1, 3))]
    return dns.name.Name(tuple(labels) + ZONE.labels)


def test_white_lies_cover_only_the_denied_subtree():
    rng = random.Random(11)
    names = [_random_name(rng) for _ in range(3000)]
    for name in names:
        lo, hi, nxt = predecessor(name), successor_after_subtree(name), successor(name)
        assert lo < name < nxt <= hi
        child = dns.name.Name((b"zzz",) + name.labels)
        assert name < child < hi                               # the whole subtree is covered
        for other in names[:200]:                              # and no other real name is
            if other != name and not other.is_subdomain(name):
                assert not lo < other < hi, (name, other)


def _store(db, records, height=10, clock=None):
    return EKeyStore(db, type("N", (), {"get": staticmethod(records.get)}), lambda: height, REGTEST,
                     clock or Clock(1_800_000_000))


@pytest.mark.parametrize("db", ["memory", "leveldb"], indirect=True)
def test_ekey_rules(db):
    alice, bob = Key.from_seed(71), Key.from_seed(72)
    name = b"d/example"
    records = {name: NameRecord(name, b"{}", alice.address, 5, bytes(32), 0)}
    clock = Clock(1_800_000_000)
    store = _store(db, records, clock=clock)
    seen = []
    store.listeners.subscribe(lambda data, u: seen.append(u.seq))
    t = int(clock.now)

    def reason(update):
        with pytest.raises(EKeyError) as e:
            store.submit(update.to_bytes())
        return e.value.reason

    store.submit(make_update(name, b"\x01" * 32, 3, t + 60, alice.secret, alice.pubkey).to_bytes())
    assert store.current(name).eph_key == b"\x01" * 32 and seen == [3]
    assert reason(make_update(name, b"\x02" * 32, 4, t + 60, bob.secret, bob.pubkey)) == "ekey-wrong-signer"
    assert reason(make_update(name, b"\x02" * 32, 3, t + 60, alice.secret, alice.pubkey)) == "ekey-old-seq"
    assert reason(make_update(name, b"\x02" * 32, 2, t + 60, alice.secret, alice.pubkey)) == "ekey-old-seq"
    assert reason(make_update(name, b"\x02" * 32, 9, t, alice.secret, alice.pubkey)) == "ekey-expired"
    assert reason(make_update(name, b"\x02" * 32, 9, t + 10**8, alice.secret, alice.pubkey)) == "ekey-too-long"
    assert reason(make_update(b"d/other", b"\x02" * 32, 9, t + 60, alice.secret, alice.pubkey)) == "ekey-no-name"
    with pytest.raises(EKeyError):
        store.submit(b"\x93\x01\x02")
    # kept across a restart (a new store over the same database)
    assert _store(db, records, clock=clock).current(name).seq == 3
    # expired updates stop being served; transferred names drop the old owner's key and seq
    clock.now += 61
    assert store.current(name) is None
    records[name] = NameRecord(name, b"{}", bob.address, 8, bytes(32), 0)
    store.submit(make_update(name, b"\x03" * 32, 1, t + 600, bob.secret, bob.pubkey).to_bytes())
    assert store.current(name).eph_key == b"\x03" * 32
    # an expired name has no owner
    assert _store(db, records, height=8 + REGTEST.expiry_depth, clock=clock).current(name) is None
