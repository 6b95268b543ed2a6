"""Address book and ban list: persisted across reloads, bans expire, only IP literals kept."""
from __future__ import annotations

from p2p.addrbook import MAX_ADDRESSES, AddressBook, BanList


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_bans_persist_and_expire(tmp_path):
    clock = Clock()
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


def test_address_book(tmp_path):
    path = str(tmp_path / "peers.json")
    book = AddressBook(path)
    book.add("127.0.0.1", 18600, 5)
    book.add("evil.example", 18600)            # a name from a peer is never resolved
    book.add("127.0.0.1", 0)
    book.add("::1", 18600, 7)
    book.save()
    again = AddressBook(path)
    assert again.sample(10) == [("::1", 18600, 7), ("127.0.0.1", 18600, 5)]
    for i in range(MAX_ADDRESSES + 5):
        again.add(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1, 100 + i)
    assert len(again.addrs) <= MAX_ADDRESSES and "::1:18600" not in again.addrs


def test_unreadable_files_are_ignored(tmp_path):
    (tmp_path / "peers.json").write_text("{not json")
    (tmp_path / "banlist.json").write_text("[1, 2]")
    assert AddressBook(str(tmp_path / "peers.json")).addrs == {}
    assert BanList(str(tmp_path / "banlist.json")).entries() == []
