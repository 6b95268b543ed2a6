"""The node's side of core/config.py: the real environment, files and working directory."""
from __future__ import annotations

import os

from core import config as _core
from core.config import FILE_NAME, SCHEMA, Config, ConfigError, env_name
from core.config import NETWORK_MARKER, marker_network
from node.chain.chaindb import ChainDB
from node.chain.storage import LevelDB

# core's config names are re-exported: the node's callers import them from here.
__all__ = ["FILE_NAME", "SCHEMA", "Config", "ConfigError", "env_name", "read", "read_file", "default_datadir",
           "recorded_network", "write_network_marker", "load"]


def read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None     # the same reader as wallet/storage.read_optional (the wallet imports only core/)


def read_file(path: str) -> dict[str, dict]:
    return _core.read_file(path, read)


def default_datadir(network: str, environ=None) -> str:
    return _core.default_datadir(network, os.environ if environ is None else environ)


def recorded_network(datadir: str) -> str | None:
    """The network of the chain in `datadir`: its marker file, or for a data dir from before
    the marker, the store's own stamp (unless a running node holds the store's lock)."""
    network = marker_network(datadir, read)
    chain = os.path.join(datadir, "chain")
    if network is not None or not os.path.isdir(chain):
        return network
    try:
        db = LevelDB(chain)
    except Exception:            # plyvel's lock error is its own class, not an OSError
        return None
    try:
        return ChainDB(db).stored_network()
    finally:
        db.close()


def write_network_marker(datadir: str, network: str) -> None:
    """Record which network's chain the data dir holds, for commands given only --datadir."""
    path = os.path.join(datadir, NETWORK_MARKER)
    if marker_network(datadir, read) != network:
        with open(path, "w", encoding="utf-8") as f:
            f.write(network + "\n")


def load(conf: str | None, network_flag: str | None, datadir_flag: str | None,
         environ=None) -> tuple[Config, str, str]:
    return _core.load(conf, network_flag, datadir_flag, os.environ if environ is None else environ,
                      read, os.getcwd(), recorded_network)
