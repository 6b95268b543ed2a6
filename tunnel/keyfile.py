"""The server's key file: its long-term id secret and its ephemeral secrets, JSON, mode 0600.

    {"id_secret": B64, "eph": [{"secret": B64, "expires": UNIX_TIME}, ...]}

`dotbit-tunnel keygen` makes it; `dotbit-tunnel ekey-new` adds an ephemeral key (printing its
public half for `dotbit-wallet ekey rotate NAME --eph-key ...`, which signs and publishes it
with the name's owner key: the tunnel server never holds the owner key) and destroys secrets
whose keys expired more than the overlap ago (forward secrecy). A running server re-reads
the file when it changes and accepts opens to every key until its expiry plus the overlap,
so clients that resolved a slightly old key are still served.
"""
from __future__ import annotations

import base64
import binascii
import json
import os

from nacl.bindings import crypto_box_keypair

from tunnel.crypto import public_of

DEFAULT_TTL = 86400
DEFAULT_OVERLAP = 3600       # a client's answer may be this old and its key still work


class KeyFileError(Exception):
    pass


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _secret(text, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raw = b""
    if len(raw) != 32:
        raise KeyFileError(f"{what}: not a base64 32-byte secret")
    return raw


def read(path: str) -> tuple[bytes, list[tuple[bytes, int]]]:
    """(id_secret, [(eph_secret, expires)])."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        eph = [(_secret(e["secret"], "eph secret"), int(e["expires"])) for e in doc["eph"]]
        return _secret(doc["id_secret"], "id_secret"), eph
    except OSError as e:
        raise KeyFileError(f"cannot read {path}: {e.strerror}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise KeyFileError(f"{path}: malformed key file ({type(e).__name__})") from None


def _write(path: str, id_secret: bytes, eph: list) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"id_secret": _b64(id_secret),
                   "eph": [{"secret": _b64(s), "expires": exp} for s, exp in eph]}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)          # a running server never reads half a file


def keygen(path: str, now: int, ttl: int = DEFAULT_TTL) -> dict:
    if os.path.exists(path):
        raise KeyFileError(f"{path} exists: refusing to replace a server's identity")
    _, id_secret = crypto_box_keypair()
    _, eph = crypto_box_keypair()
    _write(path, id_secret, [(eph, now + ttl)])
    return {"id_key": _b64(public_of(id_secret)), "eph_key": _b64(public_of(eph)), "expires": now + ttl}


def new_eph(path: str, now: int, ttl: int = DEFAULT_TTL, overlap: int = DEFAULT_OVERLAP) -> dict:
    id_secret, eph = read(path)
    _, secret = crypto_box_keypair()
    kept = [(s, exp) for s, exp in eph if exp + overlap > now]
    _write(path, id_secret, kept + [(secret, now + ttl)])
    return {"eph_key": _b64(public_of(secret)), "expires": now + ttl, "destroyed": len(eph) - len(kept)}


def public_keys(path: str) -> dict:
    id_secret, eph = read(path)
    return {"id_key": _b64(public_of(id_secret)),
            "eph_keys": [{"eph_key": _b64(public_of(s)), "expires": exp} for s, exp in eph]}
