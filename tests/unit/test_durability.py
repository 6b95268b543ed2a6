"""Files whose loss a crash must not cause are synced to disk, not only renamed into place: the
wallet file (wallet/storage.py) and the node's own keys (node/secretfile.py: the mining key and
the resolver key; the CA's key and certificate). A rename is durable only once its directory is synced, and the renamed file
holds its bytes only if it was synced before the rename. The cookie is not among them: the
node writes a fresh one at every start, so a cookie lost to a crash costs nothing.

os.fsync and os.replace are wrapped to record, in order, what each synced descriptor was
(resolved through /proc/self/fd) and each rename: the point is to observe those syscalls."""
from __future__ import annotations

import os
import stat

import pytest

from node.resolver.ca.authority import init_ca
from node.resolver.identity import load_or_create
from node.secretfile import read_or_create
from node.service import load_mining_key
from wallet import storage


@pytest.fixture
def syscalls(monkeypatch):
    """A list of ("fsync", path, inode, is_dir) and ("replace", src, dst) in call order."""
    events: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"), st.st_ino, stat.S_ISDIR(st.st_mode)))
        return real_fsync(fd)

    def replace(src, dst, **kw):
        events.append(("replace", os.path.abspath(src), os.path.abspath(dst)))
        return real_replace(src, dst, **kw)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def assert_durable(events: list[tuple], path: str) -> None:
    """`path` was put in place by one rename; the file renamed was synced before it (the same
    inode `path` has now) and `path`'s directory was synced after it."""
    path = os.path.abspath(path)
    renames = [i for i, e in enumerate(events) if e[0] == "replace" and e[2] == path]
    assert len(renames) == 1, events
    r = renames[0]
    inode = os.stat(path).st_ino
    assert any(e[0] == "fsync" and not e[3] and e[2] == inode for e in events[:r]), \
        f"{path}'s data was not fsynced before the rename: {events}"
    assert any(e[0] == "fsync" and e[3] and e[1] == os.path.dirname(path) for e in events[r + 1:]), \
        f"{path}'s directory was not fsynced after the rename: {events}"


def test_wallet_save_syncs_the_file_then_its_directory(tmp_path, syscalls):
    path = str(tmp_path / "wallet.json")
    storage.save(path, {"version": storage.VERSION, "network": "regtest", "seed": "00" * 32, "used": {},
                        "pending": {}, "ekeys": {}, "values": {}}, storage.Sealer("pass"))
    assert_durable(syscalls, path)
    syscalls.clear()
    storage.write_atomic(path, b"second save")   # a replace over an existing file, too
    assert_durable(syscalls, path)


def test_node_key_files_are_synced_on_creation(tmp_path, syscalls):
    datadir = tmp_path / "datadir"
    secret, _ = load_mining_key(str(datadir))
    assert_durable(syscalls, str(datadir / "mining_key"))
    syscalls.clear()
    load_or_create(str(datadir / "resolver_key"))
    assert_durable(syscalls, str(datadir / "resolver_key"))
    syscalls.clear()
    assert read_or_create(str(datadir / "mining_key"), lambda: b"\x09" * 32) == secret    # read, not rewritten
    assert not syscalls


def test_ca_key_and_certificate_are_synced_on_init(tmp_path, syscalls):
    ca = tmp_path / "ca"
    init_ca(str(ca), "ca passphrase", "regtest", 1_800_000_000)
    files = sorted(os.listdir(ca))
    assert len(files) == 2, files
    for name in files:
        assert_durable(syscalls, str(ca / name))
