"""The rules of the address book, pure: which network an address belongs to, where a keyed
hash puts it, how stale or failed an entry must be before it may go, and how likely a pick is.

Bitcoin Core's addrman is the model (its constants scaled to a 10,240-entry book): an entry's
"new" bucket depends on the network of whoever told us (the source group) and its own network,
so one source reaches only NEW_BUCKETS_PER_SOURCE_GROUP of the buckets; within a bucket the
slot is a hash of the address, and a slot's occupant is replaced only when it is terrible.
The hash is keyed by a secret per-node key, so an attacker cannot choose addresses that land
on the slots honest entries hold.
"""
from __future__ import annotations

import hashlib
import ipaddress

from core.connlimit import source_group

NEW_BUCKETS = 256
TRIED_BUCKETS = 64
BUCKET_SIZE = 32
NEW_BUCKETS_PER_SOURCE_GROUP = 16      # one source network fills at most 16 x 32 = 512 entries
TRIED_BUCKETS_PER_GROUP = 8            # one address network holds at most 8 x 32 tried entries
MAX_ADDRESSES = (NEW_BUCKETS + TRIED_BUCKETS) * BUCKET_SIZE

HORIZON = 30 * 86400                   # not seen for this long: may be replaced
RETRIES = 3                            # failures of an address that never worked: terrible
MAX_FAILURES = 10                      # ... of one that worked, but not in MIN_FAIL
MIN_FAIL = 7 * 86400
FUTURE_SLACK = 600                     # a timestamp further ahead than this is not believed
UNBELIEVED_AGE = 5 * 86400             # what such a timestamp becomes (Bitcoin Core's choice)
RELAY_PENALTY = 2 * 3600               # an address heard from someone else is older than claimed
RECENT_TRY = 600                       # tried this recently: rarely picked again
REPLACEMENT = 4 * 3600                 # a tried entry good this recently keeps its slot


def addr_group(host: str) -> str:
    """The network an address counts towards (/24, /56), shared with the connection caps."""
    return source_group(host)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bucket_hash(key: bytes, *parts: str) -> int:
    # BLAKE2b in keyed mode is a MAC: without the key, where an address lands is unpredictable.
    m = hashlib.blake2b(key=key, digest_size=8)
    for p in parts:
        m.update(p.encode() + b"\0")
    return int.from_bytes(m.digest(), "big")


def new_bucket(key: bytes, group: str, src_group: str) -> int:
    inner = bucket_hash(key, "new1", group, src_group) % NEW_BUCKETS_PER_SOURCE_GROUP
    return bucket_hash(key, "new2", src_group, str(inner)) % NEW_BUCKETS


def tried_bucket(key: bytes, addr: str, group: str) -> int:
    inner = bucket_hash(key, "tried1", addr) % TRIED_BUCKETS_PER_GROUP
    return bucket_hash(key, "tried2", group, str(inner)) % TRIED_BUCKETS


def slot(key: bytes, table: str, bucket: int, addr: str) -> int:
    return bucket_hash(key, "slot", table, str(bucket), addr) % BUCKET_SIZE


def believed_time(seen: float | None, now: float, relayed: bool) -> int:
    """The last-seen time an entry gets: never in the future (an attacker's entries must not
    always look freshest), and a little older when relayed by someone else."""
    if seen is None:
        seen = now
    if seen > now + FUTURE_SLACK or seen < 100_000_000:
        seen = now - UNBELIEVED_AGE
    if relayed:
        seen -= RELAY_PENALTY
    return int(max(0, min(seen, now)))


def is_terrible(seen: int, attempts: int, last_try: float, last_success: int, now: float) -> bool:
    """May this entry be replaced by a newcomer for its slot?"""
    if now - last_try < 60:
        return False                  # being tried right now: let the try finish
    if seen > now + FUTURE_SLACK or seen == 0 or now - seen > HORIZON:
        return True
    if last_success == 0 and attempts >= RETRIES:
        return True
    return now - last_success > MIN_FAIL and attempts >= MAX_FAILURES


def chance(attempts: int, last_try: float, now: float) -> float:
    """Relative odds of picking an entry: failures demote it, 0.66 per failure."""
    c = 1.0
    if now - last_try < RECENT_TRY:
        c *= 0.01
    return c * 0.66 ** min(attempts, 8)
