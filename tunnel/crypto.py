"""Tunnel keys, per-packet sealing, puzzles and the open replay cache (docs/protocol.md "Tunnel").

Pure: no sockets, no clock (times are passed in). Primitives from libsodium via PyNaCl:
X25519, ChaCha20-Poly1305 (IETF), BLAKE2b.

Key agreement for an open: the client makes a fresh pair (c, C) and computes
  keys = BLAKE2b-512(person "dotbit-tun-open", X25519(c, E) | X25519(c, I) | C | E | I | tid)
with E the server's ephemeral and I its long-term id public key; client->server key =
keys[:32], server->client key = keys[32:]. Only the holder of both E's and I's secrets can
read the open or seal a reply, so the first authenticated reply proves the server's id key
too. A rekey hashes both keys into the next pair (person "dotbit-tun-next") without a DH,
as MinimaLT does; the old pair is then dropped.

Nonces: 4 zero bytes | packet number (8, big-endian). Each direction has its own key and
counts its packet numbers up from 0 under each key, so a (key, nonce) pair is never used twice.
"""
from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass

from nacl.bindings import (crypto_aead_chacha20poly1305_ietf_decrypt, crypto_aead_chacha20poly1305_ietf_encrypt,
                           crypto_scalarmult, crypto_scalarmult_base)
from nacl.exceptions import CryptoError
from nacl.exceptions import RuntimeError as NaclRuntimeError

from tunnel.packet import CHALLENGE_LEN, KEY_ID_LEN, SOLUTION_LEN

MAX_PN = 2 ** 64 - 1


class TunnelCryptoError(Exception):
    """A packet that does not authenticate, or a key agreement with a degenerate key."""


@dataclass(frozen=True, slots=True)
class Keys:
    send: bytes
    recv: bytes


def public_of(secret: bytes) -> bytes:
    return crypto_scalarmult_base(secret)


def key_id(eph_pub: bytes) -> bytes:
    """Which of the server's ephemeral keys an open was sealed to (several live during an overlap)."""
    return hashlib.sha256(b"dotbit-tun-keyid" + eph_pub).digest()[:KEY_ID_LEN]


def _dh(secret: bytes, public: bytes) -> bytes:
    # A low-order point would make the "shared" secret public; libsodium refuses it (an
    # error, not a value), and the all-zero check stands in case a build does not.
    try:
        shared = crypto_scalarmult(secret, public)
    except NaclRuntimeError:
        shared = bytes(32)
    if not any(shared):
        raise TunnelCryptoError("degenerate public key")
    return shared


def _derive(dh_eph: bytes, dh_id: bytes, client_pub: bytes, eph_pub: bytes, id_pub: bytes,
            tid: bytes) -> tuple[bytes, bytes]:
    k = hashlib.blake2b(dh_eph + dh_id + client_pub + eph_pub + id_pub + tid, digest_size=64,
                        person=b"dotbit-tun-open").digest()
    return k[:32], k[32:]


def client_keys(client_secret: bytes, eph_pub: bytes, id_pub: bytes, tid: bytes) -> Keys:
    c2s, s2c = _derive(_dh(client_secret, eph_pub), _dh(client_secret, id_pub), public_of(client_secret),
                       eph_pub, id_pub, tid)
    return Keys(c2s, s2c)


def server_keys(eph_secret: bytes, id_secret: bytes, client_pub: bytes, tid: bytes) -> Keys:
    c2s, s2c = _derive(_dh(eph_secret, client_pub), _dh(id_secret, client_pub), client_pub,
                       public_of(eph_secret), public_of(id_secret), tid)
    return Keys(s2c, c2s)


def next_keys(keys: Keys, is_client: bool) -> Keys:
    """The keys after a rekey: both old keys hashed, no DH (seed 004 §4.3.5)."""
    c2s, s2c = (keys.send, keys.recv) if is_client else (keys.recv, keys.send)
    k = hashlib.blake2b(c2s + s2c, digest_size=64, person=b"dotbit-tun-next").digest()
    return Keys(k[:32], k[32:]) if is_client else Keys(k[32:], k[:32])


def _nonce(pn: int) -> bytes:
    return b"\x00\x00\x00\x00" + pn.to_bytes(8, "big")


def seal(key: bytes, pn: int, header: bytes, plaintext: bytes) -> bytes:
    if not 0 <= pn <= MAX_PN:
        raise ValueError("packet number out of range")
    return crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, header, _nonce(pn), key)


def unseal(key: bytes, pn: int, header: bytes, sealed: bytes) -> bytes:
    try:
        return crypto_aead_chacha20poly1305_ietf_decrypt(sealed, header, _nonce(pn), key)
    except CryptoError:
        raise TunnelCryptoError("packet does not authenticate") from None


# --- puzzles ---------------------------------------------------------------------------------
# A challenge is `epoch 4 | difficulty 1 | mac 11`, the mac an HMAC of the rest under a
# server secret: the server checks a solved open without having kept any state. A solution
# s is good when SHA-256(challenge | tid | client_pub | s) starts with `difficulty` zero bits;
# binding tid and client_pub means one solution buys one open.

def make_challenge(secret: bytes, epoch: int, difficulty: int) -> bytes:
    head = epoch.to_bytes(4, "big") + bytes([difficulty])
    return head + hmac.new(secret, head, "sha256").digest()[:CHALLENGE_LEN - 5]


def challenge_fields(secret: bytes, challenge: bytes) -> tuple[int, int] | None:
    """(epoch, difficulty) of a challenge this server made, else None."""
    if len(challenge) != CHALLENGE_LEN:
        return None
    epoch, difficulty = int.from_bytes(challenge[:4], "big"), challenge[4]
    return (epoch, difficulty) if hmac.compare_digest(make_challenge(secret, epoch, difficulty), challenge) else None


def _zero_bits(digest: bytes) -> int:
    n = int.from_bytes(digest, "big")
    return len(digest) * 8 - n.bit_length()


def puzzle_ok(challenge: bytes, tid: bytes, client_pub: bytes, solution: bytes) -> bool:
    return _zero_bits(hashlib.sha256(challenge + tid + client_pub + solution).digest()) >= challenge[4]


def solve(challenge: bytes, tid: bytes, client_pub: bytes, limit: int = 1 << 28) -> bytes:
    prefix = hashlib.sha256(challenge + tid + client_pub)
    want = challenge[4]
    for i in range(limit):
        s = i.to_bytes(SOLUTION_LEN, "big")
        h = prefix.copy()
        h.update(s)
        if _zero_bits(h.digest()) >= want:
            return s
    raise TunnelCryptoError("puzzle too hard")


# --- replay cache ----------------------------------------------------------------------------

class ReplayCache:
    """The client keys of the opens accepted under one ephemeral key whose time is within
    `window` seconds of now: an open outside the window is refused by its time, so a key is
    remembered exactly as long as its open could be replayed. At most `limit` are held; when
    full it refuses new opens rather than forget one that is still replayable."""

    def __init__(self, limit: int, window: float):
        self.limit = limit
        self.window = window
        self.seen: OrderedDict[bytes, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self.seen)

    def full(self, now: float) -> bool:
        # Forget from the oldest on what no longer passes the time check. Arrival order is
        # nearly time order; an entry out of order is only kept a little longer.
        while self.seen:
            pub, when = next(iter(self.seen.items()))
            if when >= now - self.window:
                break
            del self.seen[pub]
        return len(self.seen) >= self.limit

    def check_and_add(self, client_pub: bytes, when: int, now: float) -> bool:
        """True if `client_pub` is new (and now remembered); False for a replay or when full."""
        if client_pub in self.seen or self.full(now):
            return False
        self.seen[client_pub] = when
        return True


class PacketWindow:
    """Packet numbers seen under one receive key: a duplicate (a replay inside the tunnel) is
    refused; numbers more than `span` below the highest are refused too, which bounds memory."""

    def __init__(self, span: int = 4096):
        self.span = span
        self.highest = -1
        self.seen: set[int] = set()

    def accept(self, pn: int) -> bool:
        if pn <= self.highest - self.span or pn in self.seen:
            return False
        self.seen.add(pn)
        if pn > self.highest:
            self.highest = pn
            if len(self.seen) > 2 * self.span:
                floor = self.highest - self.span
                self.seen = {p for p in self.seen if p > floor}
        return True
