"""A 32-byte secret kept in a file of its own (the mining key, the resolver key): hex text,
mode 0600, created atomically on first use so a crash never leaves a half-written key.

Durable too: the temp file is fsynced before the rename and the directory after it. Without
the second sync a power loss can forget the rename, and a node that already mined to the key
(or published the resolver key) would come back with a new one."""
from __future__ import annotations

import logging
import os
import stat
from typing import Callable

log = logging.getLogger("dotbit.secretfile")


def read_or_create(path: str, generate: Callable[[], bytes], what: str = "key") -> bytes:
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        pass
    else:
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            secret = b""
        if len(secret) != 32:
            raise ValueError(f"{what} file {path}: expected 32 bytes of hex")
        _tighten(path, what)
        return secret
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    secret = generate()
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)        # a left-over temp file keeps its old mode through O_CREAT
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path)
    return secret


def fsync_dir(path: str) -> None:
    """Sync the directory holding `path`: what makes a rename to `path` survive a power loss."""
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _tighten(path: str, what: str) -> None:
    """A key file others can read (copied in, restored from a backup) is made 0600 again,
    loudly: the secret may already have been read, and the owner should know."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("%s file %s was mode %04o; now 0600 (consider a new key if others could read it)",
                    what, path, mode)
