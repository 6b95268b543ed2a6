"""The resolver's one identity key (DESIGN §5): an Ed25519 key that signs HTTP envelopes and
is the `bit.` DNSKEY (algorithm 15), so a client is configured with an address and a key
fingerprint, the DNSNMC way."""
from __future__ import annotations

import hashlib
import os

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.bindings import crypto_sign, crypto_sign_seed_keypair
from nacl.signing import SigningKey

from node.secretfile import read_or_create

ZONE = dns.name.from_text("bit.")
DNSKEY_FLAGS = 257          # zone key + SEP: the only key, so it is its own KSK
ALGORITHM = 15              # Ed25519 (RFC 8080)
# Ed25519 is deterministic, so libsodium and OpenSSL make the same signature; which is faster
# depends on size (measured: 150 B, libsodium 33 us vs OpenSSL 59 us; 1.5 MB, libsodium 22 ms
# vs OpenSSL 11 ms, its SHA-512 being the faster). Big answers are /v1/headers batches.
LARGE_MESSAGE = 64 * 1024


class ResolverKey:
    def __init__(self, seed: bytes):
        self.seed = seed
        self.signing_key = SigningKey(seed)
        self._sk = crypto_sign_seed_keypair(seed)[1]    # seed | public key, as libsodium takes it
        self.public_key = bytes(self.signing_key.verify_key)
        self.crypto_key = Ed25519PrivateKey.from_private_bytes(seed)   # what dnspython signs with
        self.dnskey = dns.rdata.from_wire(
            dns.rdataclass.IN, dns.rdatatype.DNSKEY,
            bytes([DNSKEY_FLAGS >> 8, DNSKEY_FLAGS & 0xFF, 3, ALGORITHM]) + self.public_key, 0, 36)
        self.key_tag = dns.dnssec.key_id(self.dnskey)
        self.ds = dns.dnssec.make_ds(ZONE, self.dnskey, "SHA256")

    @property
    def fingerprint(self) -> str:
        """What a user pins: SHA-256 of the raw public key, hex."""
        return hashlib.sha256(self.public_key).hexdigest()

    def sign(self, message: bytes) -> bytes:
        if len(message) >= LARGE_MESSAGE:
            return self.crypto_key.sign(message)
        # libsodium's combined form is signature | message: the binding straight, without
        # SigningKey.sign's SignedMessage and encoder around it (every signed answer signs here).
        return crypto_sign(message, self._sk)[:64]

    def anchor_lines(self) -> tuple[str, str]:
        return (f"bit. 3600 IN DNSKEY {self.dnskey.to_text()}", f"bit. 3600 IN DS {self.ds.to_text()}")


def load_or_create(path: str) -> ResolverKey:
    """The key file holds the 32-byte seed in hex; created on first start with mode 0600."""
    return ResolverKey(read_or_create(path, lambda: os.urandom(32), "resolver key"))
