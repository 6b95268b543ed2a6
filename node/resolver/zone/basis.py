"""What a zone version is made from: the names as they stand at a height (with a block's
changes laid over the store before its batch commits), the serial arithmetic and the window of
its signatures."""
from __future__ import annotations

from core.names.rules import is_expired
from node.resolver.zone.signed import ZONE_SKEW, ZONE_VALIDITY

SERIAL_MASK = 0xFFFFFFFF


def next_serial(serial: int) -> int:
    """RFC 1982: s + 1 (mod 2^32) is always greater than s, across the wrap too."""
    return (serial + 1) & SERIAL_MASK


def chain_value(names, params, height: int, overlay: dict | None = None):
    """value(name) as NameSource gives it at `height`; `overlay` holds records as they will be
    once the block's batch commits (None: gone)."""
    overlay = overlay or {}

    def value(name: str):
        b = name.encode("utf-8", "surrogateescape")
        return live_text(overlay[b] if b in overlay else names.get(b), params, height)
    return value


def live_text(rec, params, height: int) -> str | None:
    """A record's value as chain_value gives it (None: absent, expired or not UTF-8)."""
    if rec is None or is_expired(rec, height, params):
        return None
    try:
        return rec.value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def signing_window(tip_time: int) -> tuple[int, int]:
    return max(0, tip_time - ZONE_SKEW), tip_time + ZONE_VALIDITY
