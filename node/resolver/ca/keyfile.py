"""The CA key at rest: standard encrypted PKCS#8 (RFC 8018 PBES2), with a KDF worth the name.

cryptography writes encrypted PKCS#8 with PBKDF2 at 2,048 rounds and offers no knob for it
(its encryption builder covers only PKCS#12 and OpenSSH); a passphrase behind 2,048 rounds
is cheap to brute-force. So the EncryptedPrivateKeyInfo is assembled here — PBKDF2-HMAC-SHA256
at 600,000 rounds (OWASP 2023), AES-256-CBC — around cryptography's unencrypted PKCS#8 DER.
The result is the ordinary `ENCRYPTED PRIVATE KEY` PEM: cryptography and `openssl pkey`
load it with the passphrase, so operators keep their usual tools.
"""
from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

KDF_ROUNDS = 600_000
# DER-encoded OIDs (tag, length, value): PBES2, PBKDF2, hmacWithSHA256, aes256-CBC
PBES2 = bytes.fromhex("06092a864886f70d01050d")
PBKDF2 = bytes.fromhex("06092a864886f70d01050c")
HMAC_SHA256 = bytes.fromhex("06082a864886f70d0209")
AES256_CBC = bytes.fromhex("060960864801650304012a")


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        head = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + head + body


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _octets(b: bytes) -> bytes:
    return _tlv(0x04, b)


def _int(n: int) -> bytes:
    return _tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def encrypt_pem(key, passphrase: str, rounds: int = KDF_ROUNDS) -> bytes:
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    salt, iv = os.urandom(16), os.urandom(16)
    kek = PBKDF2HMAC(hashes.SHA256(), 32, salt, rounds).derive(passphrase.encode("utf-8"))
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(kek), modes.CBC(iv)).encryptor()
    data = enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()
    params = _seq(_seq(PBKDF2, _seq(_octets(salt), _int(rounds), _seq(HMAC_SHA256, b"\x05\x00"))),
                  _seq(AES256_CBC, _octets(iv)))
    der = _seq(_seq(PBES2, params), _octets(data))
    b64 = base64.encodebytes(der).decode().replace("\n", "")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return ("-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + "\n".join(lines)
            + "\n-----END ENCRYPTED PRIVATE KEY-----\n").encode()
