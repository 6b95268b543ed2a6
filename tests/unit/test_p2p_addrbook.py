"""Address book (new/tried tables bucketed by a secret key, p2p/addrbook.py and
p2p/addrpolicy.py) and ban list: persisted across reloads, old files migrated, bans expire,
only IP literals kept, one source cannot push out what others told us."""
from __future__ import annotations

import json
import random

from hypothesis import given, settings, strategies as st

from p2p import addrpolicy as P
from p2p.addrbook import MAX_ADDRESSES, AddressBook, Entry
from p2p.banlist import BanList

NOW = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = NOW):
        self.now = now

    def __call__(self):
        return self.now


def book_at(path, clock=None, seed: int = 1) -> AddressBook:
    """A book whose picks are seeded; a new file gets a fixed bucket key (the tests that
    need a node's random key say so), so where entries land is the same on every run."""
    fresh = not path.exists()
    book = AddressBook(str(path), clock or Clock(), random.Random(seed))
    if fresh:
        book.key = bytes(range(seed, seed + 32))
    return book


def flood(book: AddressBook, source: str, n: int, seed: int = 7) -> int:
    """n random public-looking addresses from one source, timestamps in the future; returns
    how many the book took."""
    rng = random.Random(seed)
    return sum(book.add(f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                        18600, NOW + 86400, source) for _ in range(n))


def test_bans_persist_and_expire(tmp_path):
    clock = Clock(1_000_000.0)
    path = str(tmp_path / "banlist.json")
    bans = BanList(path, clock)
    bans.ban("127.0.0.2", 60, "bad-magic")
    bans.ban("10.0.0.1", 3600, "flood")
    again = BanList(path, clock)
    assert again.is_banned("127.0.0.2") and again.is_banned("10.0.0.1")
    assert [e["ban_reason"] for e in again.entries()] == ["flood", "bad-magic"]
    clock.now += 61
    assert not again.is_banned("127.0.0.2") and again.is_banned("10.0.0.1")
    assert again.unban("10.0.0.1") and not again.unban("10.0.0.1")
    assert BanList(path, clock).entries() == []


def test_address_book_persists_tables_key_and_anchors(tmp_path):
    path = tmp_path / "peers.json"
    book = book_at(path)
    assert book.add("127.0.0.1", 18600, NOW - 50)
    assert not book.add("evil.example", 18600)            # a name from a peer is never resolved
    assert not book.add("127.0.0.1", 0)
    assert book.add("::1", 18600, NOW - 70)
    book.good("::1", 18600)
    book.save([("::1", 18600), ("127.0.0.1", 18600), ("127.0.0.2", 1)])
    again = book_at(path)
    assert again.key == book.key and len(again.key) == 32
    assert again.counts() == {"new": 1, "tried": 1}
    assert again.anchors == [("::1", 18600), ("127.0.0.1", 18600)]      # at most two
    assert sorted(again.sample(10)) == [("127.0.0.1", 18600, NOW - 50), ("::1", 18600, NOW)]
    assert AddressBook(str(tmp_path / "other.json")).key != AddressBook(str(tmp_path / "o2.json")).key


def test_old_format_is_migrated_and_a_damaged_file_ignored(tmp_path):
    path = tmp_path / "peers.json"
    path.write_text(json.dumps({"127.0.0.1:18600": int(NOW) - 10, "10.0.0.1:1": int(NOW) + 999_999,
                                "junk": 5, "evil.example:1": 3}))
    book = book_at(path)
    assert "127.0.0.1:18600" in book and "10.0.0.1:1" in book and len(book) == 2
    assert book.entries["10.0.0.1:1"].seen < NOW               # a future time is not believed
    book.save()
    assert json.loads(path.read_text())["version"] == 2 and len(book_at(path)) == 2
    (tmp_path / "bad.json").write_text("{not json")
    assert len(book_at(tmp_path / "bad.json")) == 0
    (tmp_path / "rows.json").write_text(json.dumps({"version": 2, "key": "zz", "new": [[1, 2], None, "x"],
                                                    "tried": 5, "anchors": [["a", 1], 7]}))
    assert len(book_at(tmp_path / "rows.json")) == 0
    assert BanList(str(tmp_path / "bad.json")).entries() == []


def test_one_source_fills_only_its_share_and_never_pushes_out_others(tmp_path):
    book = book_at(tmp_path / "peers.json")
    book.add("127.0.0.1", 18600, NOW - 3600, "198.51.100.7")       # told by an honest peer
    book.add("127.0.0.1", 18601)
    book.good("127.0.0.1", 18601)
    took = flood(book, "203.0.113.66", 12_000)
    bound = P.NEW_BUCKETS_PER_SOURCE_GROUP * P.BUCKET_SIZE
    assert took <= bound and len(book) <= bound + 2, took
    assert "127.0.0.1:18600" in book and "127.0.0.1:18601" in book
    assert book.refused >= 12_000 - bound
    # its timestamps were in the future: believed as five days old, so never the freshest
    assert max(e.seen for e in book.entries.values() if e.source == "203.0.113.0/24") < NOW - 86400
    assert len(book) <= MAX_ADDRESSES


def test_failed_addresses_are_demoted_and_terrible_ones_replaced(tmp_path):
    clock = Clock()
    book = book_at(tmp_path / "peers.json", clock)
    dead = [f"192.0.2.{i}" for i in range(1, 9)]
    for host in dead:
        book.add(host, 18600, NOW, "203.0.113.66")
    book.add("127.0.0.1", 18600, NOW - 3600, "198.51.100.7")
    for host in dead:
        book.attempt(host, 18600)
    picks = [book.select() for _ in range(200)]
    assert picks.count(("127.0.0.1", 18600)) > 100, picks      # 1 live in 9, yet picked most
    clock.now += 3600
    for _ in range(2):
        for host in dead:
            book.attempt(host, 18600)
    clock.now += 120
    # three failures and never a success: terrible, so a newcomer for its slot replaces it
    # (found by searching for an address the keyed hash puts there)
    e = book.entries[f"{dead[0]}:18600"]
    assert P.is_terrible(e.seen, e.attempts, e.last_try, e.last_success, clock.now)
    bucket, slot = book._new_pos(e)
    evicted = book.evicted
    for i in range(20_000):
        host = f"192.0.2.{i % 250 + 1}" if i < 250 else f"10.{i >> 8 & 255}.{i & 255}.1"
        src = "203.0.113.66"
        pos = book._new_pos(Entry(host, 18600, 0, P.addr_group(src)))
        if pos == (bucket, slot) and f"{host}:18600" not in book:
            assert book.add(host, 18600, NOW, src)
            break
    assert f"{dead[0]}:18600" not in book and book.evicted == evicted + 1


def test_good_moves_to_tried_and_a_displaced_tried_entry_goes_back_to_new(tmp_path):
    clock = Clock()
    book = book_at(tmp_path / "peers.json", clock)
    book.add("198.51.100.1", 1, NOW)
    book.good("198.51.100.1", 1)
    assert book.counts() == {"new": 0, "tried": 1} and book.entries["198.51.100.1:1"].tried
    # fill the tried table from one network: its 8 buckets x 32 slots bound it; within 4 hours
    # of their success the holders keep their slots (newcomers stay in new)
    def tried():
        return {e.key for e in book.entries.values() if e.tried}
    for i in range(2, 1000):
        book.good("198.51.100.1", i)
    early = tried()
    for i in range(1000, 2000):
        book.good("198.51.100.1", i)
    per_group = P.TRIED_BUCKETS_PER_GROUP * P.BUCKET_SIZE
    assert early <= tried() and len(tried()) <= per_group and book.refused > 0
    # later, a new success takes the slot and the older entry goes back to new
    clock.now += P.REPLACEMENT + 1
    before = tried()
    port = next(i for i in range(2000, 3000) if book._tried_pos(Entry("198.51.100.1", i, 0, "")) in book.tried)
    book.good("198.51.100.1", port)
    displaced = before - tried()
    assert f"198.51.100.1:{port}" in tried() and len(displaced) == 1
    assert not book.entries[displaced.pop()].tried
    assert book.select(new_only=True) is not None


@settings(max_examples=60, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), src=st.ip_addresses(v=4).map(str),
       hosts=st.lists(st.ip_addresses().map(str), min_size=1, max_size=300))
def test_one_source_group_reaches_at_most_its_buckets(key, src, hosts):
    src_group = P.addr_group(src)
    buckets = {P.new_bucket(key, P.addr_group(h), src_group) for h in hosts}
    assert len(buckets) <= P.NEW_BUCKETS_PER_SOURCE_GROUP
    assert all(0 <= b < P.NEW_BUCKETS for b in buckets)
    for h in hosts:
        b = P.tried_bucket(key, f"{h}:1", P.addr_group(h))
        assert 0 <= b < P.TRIED_BUCKETS and 0 <= P.slot(key, "tried", b, f"{h}:1") < P.BUCKET_SIZE


@settings(max_examples=40, deadline=None)
@given(keys=st.lists(st.binary(min_size=32, max_size=32), min_size=2, max_size=2, unique=True),
       src=st.ip_addresses(v=4).map(str))
def test_the_key_decides_the_buckets(keys, src):
    # Under another key the same source's buckets differ: an attacker cannot aim at them.
    g = P.addr_group(src)
    sets = [{P.new_bucket(k, f"10.{i}.0.0/24", g) for i in range(64)} for k in keys]
    assert sets[0] != sets[1]


@settings(max_examples=100, deadline=None)
@given(seen=st.integers(min_value=0, max_value=2 ** 64 - 1), relayed=st.booleans())
def test_timestamps_are_never_in_the_future(seen, relayed):
    t = P.believed_time(seen, NOW, relayed)
    assert 0 <= t <= NOW
    if seen > NOW + P.FUTURE_SLACK:
        assert t <= NOW - P.UNBELIEVED_AGE


OPS = st.lists(st.tuples(st.sampled_from(["add", "good", "attempt", "tick"]),
                         st.integers(0, 40), st.integers(0, 5), st.integers(-10 ** 6, 10 ** 6)),
               max_size=200)


@settings(max_examples=60, deadline=None)
@given(ops=OPS)
def test_the_tables_stay_consistent_whatever_happens(tmp_path_factory, ops):
    # Few networks and sources, so slots collide often: every entry sits in exactly one table,
    # at the slot its keyed hash gives, and a reload rebuilds the same book.
    clock = Clock()
    path = tmp_path_factory.mktemp("book") / "peers.json"
    book = book_at(path, clock)
    for op, a, s, t in ops:
        host, src = f"10.{a % 3}.{a}.1", f"192.0.2.{s}"
        if op == "add":
            book.add(host, 1 + a % 2, clock.now + t, src)
        elif op == "good":
            book.good(host, 1 + a % 2)
        elif op == "attempt":
            book.attempt(host, 1 + a % 2)
        else:
            clock.now += abs(t)
    placed = {k: ("new", pos) for pos, k in book.new.items()}
    placed.update({k: ("tried", pos) for pos, k in book.tried.items()})
    assert set(placed) == set(book.entries) and len(book.new) + len(book.tried) == len(book.entries)
    for k, (table, pos) in placed.items():
        e = book.entries[k]
        assert e.tried == (table == "tried")
        assert pos == (book._tried_pos(e) if e.tried else book._new_pos(e))
        assert e.seen <= clock.now
    book.save()
    again = book_at(path, clock)
    assert set(again.entries) == set(book.entries) and again.counts() == book.counts()
