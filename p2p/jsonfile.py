"""Small JSON files in the data dir (the address book, the ban list), rewritten whole.

Write to .tmp, fsync, rename: a crash leaves the old or the new file, never half of one.
"""
from __future__ import annotations

import json
import logging
import os

log = logging.getLogger("dotbit.p2p")


def load(path: str, default):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable %s: %s", path, e)
        return default


def save(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
