"""A 32-byte secret kept in a file of its own (the mining key, the resolver key): hex text,
mode 0600, created atomically on first use so a crash never leaves a half-written key."""
from __future__ import annotations

import os
from typing import Callable


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
    return secret
