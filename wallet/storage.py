"""The wallet file: an encrypted, versioned JSON document, replaced atomically on every save.

On disk (JSON, mode 0600):
  {"format": "dotbit-wallet", "kdf": {"alg": "argon2id", "opslimit", "memlimit", "salt"},
   "aead_box": base64(nonce24 | XChaCha20-Poly1305(document, ad = header))}
The plaintext is the wallet document, which carries its own "version"; upgrades run one step
per version after decryption (the Electrum habit), so old files open in new wallets. The KDF
parameters sit outside the box so they can be raised without a format change, but they are
its associated data (`header_ad`): a header changed in any value does not open. Before any
key is derived they must lie within libsodium's range up to its SENSITIVE limits, so an
altered header cannot make the wallet hang (opslimit 2^31) or fail to allocate (memlimit 2^36).
Files written before the header was authenticated carry "nonce_box" (SecretBox, no
associated data): they still open (bounds checked the same way) and the next save rewrites
them in the authenticated form.

Atomic replace: write a temp file in the same directory, fsync it, rename over the old file,
fsync the directory. A crash at any point leaves the old or the new file, never a torn one.
"""
from __future__ import annotations

import base64
import fcntl
import glob
import json
import os
import time

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

FORMAT = "dotbit-wallet"
VERSION = 4
# Interactive Argon2id limits (libsodium's choice for a login prompt: ~0.1 s, 64 MiB): the CLI
# derives the key once per command, and each command should feel instant.
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
# What a header may ask for: up to libsodium's SENSITIVE limits (4 passes, 1 GiB, a few
# seconds); beyond them the file was altered or made by something else.
OPS_RANGE = (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE)
MEM_RANGE = (nacl.pwhash.argon2id.MEMLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE)


class StorageError(Exception):
    """A wallet file problem meant for the user (one line)."""


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


# --- versions --------------------------------------------------------------------------------
# v1: {"version": 1, "network", "seed" (hex), "used": {"0": n, "1": n, "2": n}}
# v2: + "pending": {name: registration state} — registrations in progress survive a restart
#     (they can also be recovered from the chain, see names.py, but the file is the fast path).
# v3: + "ekeys": {name: [MinimaLT ephemeral keys this wallet published, with their secrets]}
#     (wallet/ekeys.py): unlike every other secret here they cannot be re-derived from the seed
#     (forward secrecy wants them random and destroyed after use), so the file must hold them.
# v4: + "values": {name: value hex this wallet last signed into it} — what `name renew` and
#     `name transfer` compare the chain's value with before signing it again (names.py).

def _upgrade_1_to_2(doc: dict) -> dict:
    doc = dict(doc)
    doc["pending"] = {}
    doc["version"] = 2
    return doc


def _upgrade_2_to_3(doc: dict) -> dict:
    doc = dict(doc)
    doc["ekeys"] = {}
    doc["version"] = 3
    return doc


def _upgrade_3_to_4(doc: dict) -> dict:
    doc = dict(doc)
    doc["values"] = {}
    doc["version"] = 4
    return doc


UPGRADES = {1: _upgrade_1_to_2, 2: _upgrade_2_to_3, 3: _upgrade_3_to_4}


def upgrade(doc: dict) -> dict:
    v = doc.get("version")
    if not isinstance(v, int) or v < 1:
        raise StorageError("wallet file has no valid version")
    if v > VERSION:
        raise StorageError(f"wallet file version {v} is newer than this wallet (knows up to {VERSION})")
    while doc["version"] < VERSION:
        doc = UPGRADES[doc["version"]](doc)
    return doc


# --- encryption --------------------------------------------------------------------------------

def header_ad(envelope: dict) -> bytes:
    """The associated data of the box: the header as read, in one canonical form, so that any
    change to a value (2 -> 2.0 too) fails the tag; JSON spacing is not part of it."""
    return json.dumps({"format": envelope.get("format"), "kdf": envelope.get("kdf")}, sort_keys=True,
                      separators=(",", ":")).encode()


def check_kdf(opslimit, memlimit) -> None:
    for what, v, (lo, hi) in (("opslimit", opslimit, OPS_RANGE), ("memlimit", memlimit, MEM_RANGE)):
        if type(v) is not int or not lo <= v <= hi:
            raise StorageError(f"the wallet file asks for Argon2id {what} {str(v)[:20]}, outside {lo}..{hi} "
                               "(libsodium's SENSITIVE limit): the file was altered")


class Sealer:
    """A passphrase-derived key bound to one KDF salt. Deriving is the slow part, so a process
    derives once and then seals every save with a fresh random nonce."""

    def __init__(self, passphrase: str, salt: bytes | None = None, opslimit: int = OPSLIMIT,
                 memlimit: int = MEMLIMIT):
        check_kdf(opslimit, memlimit)
        self.salt = salt if salt is not None else nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        self.opslimit, self.memlimit = opslimit, memlimit
        try:
            self._key = nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode("utf-8"),
                                                 self.salt, opslimit=opslimit, memlimit=memlimit)
        except (nacl.exceptions.RuntimeError, MemoryError):
            raise StorageError(f"cannot derive the wallet key: Argon2id needs {memlimit >> 20} MiB") from None

    def seal(self, doc: dict) -> bytes:
        plaintext = json.dumps(doc, sort_keys=True).encode()
        envelope = {"format": FORMAT,
                    "kdf": {"alg": "argon2id", "opslimit": self.opslimit, "memlimit": self.memlimit,
                            "salt": _b64(self.salt)}}
        nonce = nacl.utils.random(nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
        box = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, header_ad(envelope), nonce,
                                                                        self._key)
        envelope["aead_box"] = _b64(nonce + box)
        return (json.dumps(envelope, indent=1) + "\n").encode()

    def open(self, envelope: dict) -> dict:
        try:
            if "aead_box" in envelope:
                raw = _unb64(envelope["aead_box"])
                n = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
                plaintext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                    raw[n:], header_ad(envelope), raw[:n], self._key)
            else:                                    # written before the header was authenticated
                plaintext = nacl.secret.SecretBox(self._key).decrypt(_unb64(envelope["nonce_box"]))
        except nacl.exceptions.CryptoError:
            raise StorageError("wrong passphrase (or the wallet file was altered)") from None
        except (KeyError, TypeError, ValueError):
            raise StorageError("the wallet file is damaged: its box is missing or not base64") from None
        return json.loads(plaintext)


def read_optional(path: str) -> bytes | None:
    """A file's bytes, None when it does not exist (how core/config.py reads the config file)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def read_envelope(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            env = json.loads(f.read())
    except FileNotFoundError:
        raise StorageError(f"no wallet file at {path} (create one with `dotbit-wallet create`)") from None
    except (OSError, ValueError) as e:
        raise StorageError(f"cannot read wallet file {path}: {e}") from None
    if not isinstance(env, dict) or env.get("format") != FORMAT:
        raise StorageError(f"{path} is not a dotbit wallet file")
    return env


def load(path: str, passphrase: str) -> tuple[dict, Sealer]:
    env = read_envelope(path)
    try:
        kdf = env["kdf"]
        if kdf.get("alg") != "argon2id":
            raise StorageError(f"unknown key derivation {kdf.get('alg')!r}")
        sealer = Sealer(passphrase, _unb64(kdf["salt"]), kdf["opslimit"], kdf["memlimit"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise StorageError(f"wallet file {path} is damaged: {e}") from None
    return upgrade(sealer.open(env)), sealer


def reload(path: str, sealer: Sealer) -> dict:
    """Re-read the file with the key already derived (after another process may have saved)."""
    return upgrade(sealer.open(read_envelope(path)))


class FileLock:
    """One wallet process at a time per file (flock on FILE.lock): two commands saving the same
    document would otherwise lose each other's changes. The lock dies with its process."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path) + ".lock"
        self.fd: int | None = None

    def acquire(self, timeout: float = 30.0) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    self.fd = None
                    raise StorageError(f"wallet {self.path[:-5]} is in use by another dotbit-wallet process")
                time.sleep(0.05)
        # Holding the lock, no writer is mid-save: temp files left by a killed process are stale.
        for tmp in glob.glob(glob.escape(self.path[:-5]) + ".tmp-*"):
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def save(path: str, doc: dict, sealer: Sealer) -> None:
    write_atomic(path, sealer.seal(doc))


def write_atomic(path: str, data: bytes) -> None:
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)    # a left-over temp file keeps its old mode through O_CREAT
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
