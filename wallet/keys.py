"""Seed words and hierarchical keys (BIP39 words, BIP32 derivation on secp256k1).

The words are Trezor's BIP39 reference list (package `mnemonic`), so a seed written down is
checked word by word and by checksum on restore. BIP32 child derivation is done here with
HMAC-SHA512 and coincurve: it is short, and owning it keeps the wallet's key path exact.

Account layout (BIP44-shaped, coin type 7 as Namecoin): m/44'/7'/0'/CHAIN/i with
  CHAIN 0 receive addresses, 1 change, 2 name coins (name_new and name outputs).
Name coins get their own chain so a restore finds them (and recomputes registration salts)
without mixing them into payment coin scans.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import base58
import coincurve
from mnemonic import Mnemonic

from core.crypto import hash160

HARDENED = 0x80000000
CURVE_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
RECEIVE, CHANGE, NAMES = 0, 1, 2
CHAINS = (RECEIVE, CHANGE, NAMES)
ACCOUNT_PATH = (44 | HARDENED, 7 | HARDENED, 0 | HARDENED)
XPRV_VERSION, XPUB_VERSION = bytes.fromhex("0488ade4"), bytes.fromhex("0488b21e")

_WORDS = Mnemonic("english")


class SeedError(ValueError):
    pass


def new_words(strength_bits: int = 128) -> str:
    """12 words (128 bits of entropy plus a 4-bit checksum)."""
    return _WORDS.generate(strength_bits)


def seed_from_words(words: str) -> bytes:
    words = " ".join(words.lower().split())
    if not words:
        raise SeedError("no seed words given")
    unknown = [w for w in words.split() if w not in _WORDS.wordlist]
    if unknown:
        raise SeedError(f"not a seed word: {unknown[0]!r}")
    if not _WORDS.check(words):
        raise SeedError("seed words do not check out (a word is wrong or missing)")
    return Mnemonic.to_seed(words, passphrase="")


@dataclass(frozen=True, slots=True)
class ExtendedKey:
    """A BIP32 private node: secret, chain code and its place in the tree."""
    secret: bytes
    chain_code: bytes
    depth: int = 0
    parent_fingerprint: bytes = bytes(4)
    child_number: int = 0
    pubkey: bytes = b""          # compressed; filled in from the secret

    def __post_init__(self):
        if not self.pubkey:
            object.__setattr__(self, "pubkey",
                               coincurve.PrivateKey(self.secret).public_key.format(compressed=True))

    @staticmethod
    def from_seed(seed: bytes) -> "ExtendedKey":
        i = hmac.new(b"Bitcoin seed", seed, hashlib.sha512).digest()
        k = int.from_bytes(i[:32], "big")
        if not 0 < k < CURVE_N:
            raise SeedError("seed gives an invalid master key (probability 2^-127)")
        return ExtendedKey(i[:32], i[32:])

    @property
    def fingerprint(self) -> bytes:
        return hash160(self.pubkey)[:4]

    def child(self, index: int) -> "ExtendedKey":
        """CKDpriv. An invalid child (IL >= n or a zero key, ~2^-127) moves to the next index,
        as BIP32 prescribes."""
        while True:
            if index & HARDENED:
                data = b"\x00" + self.secret + index.to_bytes(4, "big")
            else:
                data = self.pubkey + index.to_bytes(4, "big")
            i = hmac.new(self.chain_code, data, hashlib.sha512).digest()
            il = int.from_bytes(i[:32], "big")
            k = (il + int.from_bytes(self.secret, "big")) % CURVE_N
            if il < CURVE_N and k:
                return ExtendedKey(k.to_bytes(32, "big"), i[32:], self.depth + 1, self.fingerprint, index)
            index += 1

    def derive(self, path) -> "ExtendedKey":
        key = self
        for index in path:
            key = key.child(index)
        return key

    def _serialize(self, version: bytes, keydata: bytes) -> str:
        raw = (version + bytes([self.depth]) + self.parent_fingerprint
               + self.child_number.to_bytes(4, "big") + self.chain_code + keydata)
        return base58.b58encode_check(raw).decode()

    def xprv(self) -> str:
        return self._serialize(XPRV_VERSION, b"\x00" + self.secret)

    def xpub(self) -> str:
        return self._serialize(XPUB_VERSION, self.pubkey)


def parse_path(text: str) -> list[int]:
    """"m/0'/1/2h" -> indices (hardened as ' or h or H)."""
    parts = text.strip().split("/")
    if parts[0] != "m":
        raise ValueError(f"path must start with m: {text!r}")
    out = []
    for p in parts[1:]:
        hard = p[-1:] in ("'", "h", "H")
        n = int(p[:-1] if hard else p)
        if not 0 <= n < HARDENED:
            raise ValueError(f"path index out of range: {p!r}")
        out.append(n | HARDENED if hard else n)
    return out


@dataclass(frozen=True, slots=True)
class WalletKey:
    chain: int
    index: int
    secret: bytes
    pubkey: bytes
    address: bytes          # HASH160(pubkey)


class Keychain:
    """The account's keys, derived on demand and cached for this process."""

    def __init__(self, seed: bytes):
        account = ExtendedKey.from_seed(seed).derive(ACCOUNT_PATH)
        self._chains = {c: account.child(c) for c in CHAINS}
        self._cache: dict[tuple[int, int], WalletKey] = {}
        self._by_address: dict[bytes, WalletKey] = {}

    def key(self, chain: int, index: int) -> WalletKey:
        k = self._cache.get((chain, index))
        if k is None:
            node = self._chains[chain].child(index)
            k = WalletKey(chain, index, node.secret, node.pubkey, hash160(node.pubkey))
            self._cache[(chain, index)] = k
            self._by_address[k.address] = k
        return k

    def keys(self, chain: int, count: int) -> list[WalletKey]:
        return [self.key(chain, i) for i in range(count)]

    def owner(self, address: bytes) -> WalletKey | None:
        """The key of an address among those derived so far."""
        return self._by_address.get(address)
