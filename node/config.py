"""The node's side of core/config.py: the real environment, files and working directory."""
from __future__ import annotations

import os

from core import config as _core
from core.config import FILE_NAME, SCHEMA, Config, ConfigError, env_name  # noqa: F401  (the node's names)


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


def load(conf: str | None, network_flag: str | None, datadir_flag: str | None,
         environ=None) -> tuple[Config, str, str]:
    return _core.load(conf, network_flag, datadir_flag, os.environ if environ is None else environ,
                      read, os.getcwd())
