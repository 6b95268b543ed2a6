"""The in-memory index of every known header, loaded from the `h` table on open."""
from __future__ import annotations

from dataclasses import dataclass

from core.consensus import block_work, median_time_past
from core.encoding import pack
from core.primitives import Header

HAVE_DATA = 1     # the block body is stored
VALID = 2         # connected successfully at least once
FAILED = 4        # the block itself broke a rule
FAILED_CHILD = 8  # an ancestor broke a rule


@dataclass(slots=True, eq=False)
class Entry:
    hash: bytes
    header: Header
    height: int
    work: int                     # cumulative chain work up to and including this block
    status: int
    prev: "Entry | None"

    @property
    def invalid(self) -> bool:
        return bool(self.status & (FAILED | FAILED_CHILD))

    def encode(self) -> bytes:
        return pack([self.header.to_wire(), self.height, self.work.to_bytes(32, "big"), self.status])

    def ancestor(self, height: int, main_chain: list["Entry"] | None = None) -> "Entry":
        """The ancestor at `height`; O(1) when this entry is on the given main chain."""
        if main_chain is not None and self.height < len(main_chain) and main_chain[self.height] is self:
            return main_chain[height]
        e = self
        while e.height > height:
            # Jump to the main chain as soon as the walk reaches it.
            if main_chain is not None and e.height < len(main_chain) and main_chain[e.height] is e:
                return main_chain[height]
            e = e.prev
        return e

    def median_time_past(self) -> int:
        times, e = [], self
        while e is not None and len(times) < 11:
            times.append(e.header.time)
            e = e.prev
        return median_time_past(times)


def new_entry(header: Header, block_hash: bytes, prev: Entry | None) -> Entry:
    height = prev.height + 1 if prev else 0
    work = (prev.work if prev else 0) + block_work(header.bits)
    return Entry(block_hash, header, height, work, 0, prev)


def fork_point(a: Entry, b: Entry) -> Entry:
    while a.height > b.height:
        a = a.prev
    while b.height > a.height:
        b = b.prev
    while a is not b:
        a, b = a.prev, b.prev
    return a


def failure_reason(entry, reasons: dict[bytes, str]) -> str:
    """Why `entry` is invalid: the reason recorded for it or its first failed ancestor."""
    e = entry
    while e is not None and not e.status & FAILED:
        e = e.prev
    return reasons.get(e.hash, "bad-block") if e is not None else "bad-block"
