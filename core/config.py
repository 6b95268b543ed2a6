"""One configuration file for the node, the resolver and the wallet (stdlib only, no I/O).

A TOML file, by default DATADIR/dotbit.toml (or `--conf FILE`), with the sections and keys of
SCHEMA. Every setting is looked up in one order: command-line flag > environment variable
DOTBIT_<SECTION>_<KEY> (e.g. DOTBIT_RPC_PORT) > file > built-in default.

Why in core/: the node and the wallet read the very same schema and precedence, and the
wallet imports only core/ (DESIGN §1). Like the rest of core/ it does no I/O of its own: the
caller passes the environment and a `read(path) -> bytes | None` (None: no such file);
node/config.py and wallet/config.py pass the real ones.

Unknown sections or keys and values of the wrong type are a ConfigError with one line of
text naming the file and the key, which the CLIs print as their one error line.
"""
from __future__ import annotations

import os.path
import tomllib
from dataclasses import dataclass
from typing import Callable, Mapping

Reader = Callable[[str], "bytes | None"]

FILE_NAME = "dotbit.toml"

# section -> key -> type. Types: str, int, float, bool, list (of str).
SCHEMA: dict[str, dict[str, type]] = {
    "node": {"network": str, "datadir": str, "log_level": str, "log_format": str, "metrics_port": int,
             "par": int},
    "rpc": {"port": int, "bind": str, "url": str, "cookie": str, "allow_remote": bool,
            "name_encoding": str, "value_encoding": str, "allow_expired": bool},
    "p2p": {"port": int, "bind": str, "listen": bool, "connect": list, "addnode": list, "maxpeers": int,
            "addr_rate": float, "feeler_interval": float},
    "mempool": {"max_bytes": int},
    "mining": {"enabled": bool, "address": str, "interval": float, "processes": int},
    "resolver": {"enabled": bool, "dns_port": int, "http_port": int, "key": str, "dane_zones": list,
                 "dane_anchors": str, "axfr_allow": list, "record_sources": str,
                 "ca_passphrase_file": str, "axfr_tsig": list, "axfr_tsig_file": str, "notify": list,
                 "ixfr_history": int,
                 "dns_rate_limit": float, "dns_rate_limit_exempt": list, "bind": str,
                 "conns_per_addr": int, "conns_per_net": int, "conns_exempt": list, "dns_workers": int},
    "wallet": {"file": str, "passphrase_file": str, "fee_rate": int},
}

# Variables that predate the DOTBIT_<SECTION>_<KEY> scheme; still honoured, after the new name.
LEGACY_ENV = {("node", "network"): "DOTBIT_NETWORK", ("wallet", "file"): "DOTBIT_WALLET"}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    pass


def env_name(section: str, key: str) -> str:
    return f"DOTBIT_{section.upper()}_{key.upper()}"


def _check(where: str, kind: type, value):
    """A file value of the schema's type (TOML already typed it); ints are fine as floats."""
    if kind is float and type(value) is int:
        return float(value)
    if kind is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError(f"{where}: expected a list of strings")
    if type(value) is not kind:
        raise ConfigError(f"{where}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _from_env(name: str, kind: type, text: str):
    """Environment values are text: parse them to the schema's type."""
    try:
        if kind is bool:
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if kind is list:
            return [t.strip() for t in text.split(",") if t.strip()]
        return kind(text)
    except ValueError:
        raise ConfigError(f"environment {name}={text!r}: expected {kind.__name__}") from None


def read_file(path: str, read: Reader) -> dict[str, dict]:
    """The file's settings, checked against SCHEMA; {} when the file does not exist."""
    try:
        raw = read(path)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    if raw is None:
        return {}
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    out: dict[str, dict] = {}
    for section, table in data.items():
        keys = SCHEMA.get(section)
        if keys is None:
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(SCHEMA)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} must be a [section] table")
        for key, value in table.items():
            kind = keys.get(key)
            if kind is None:
                raise ConfigError(f"{path}: unknown key {key!r} in [{section}] (known: {', '.join(keys)})")
            out.setdefault(section, {})[key] = _check(f"{path}: [{section}] {key}", kind, value)
    return out


@dataclass
class Config:
    """Settings from a file and an environment; `get` applies the precedence."""
    values: dict
    environ: dict
    path: str | None = None

    def get(self, section: str, key: str, flag=None, default=None):
        kind = SCHEMA[section][key]           # a KeyError here is a programming error
        if flag is not None:
            return flag
        for name in (env_name(section, key), LEGACY_ENV.get((section, key))):
            if name is not None and name in self.environ:
                return _from_env(name, kind, self.environ[name])
        if key in self.values.get(section, {}):
            return self.values[section][key]
        return default

    def source(self, section: str, key: str, flag=None) -> str:
        """Where a setting came from ("flag", "env", "file", "default"), for operators' messages."""
        if flag is not None:
            return "flag"
        if any(n and n in self.environ for n in (env_name(section, key), LEGACY_ENV.get((section, key)))):
            return "env"
        return "file" if key in self.values.get(section, {}) else "default"


def default_datadir(network: str, environ: Mapping[str, str]) -> str:
    base = environ.get("XDG_DATA_HOME") or os.path.join(environ.get("HOME", "/"), ".local", "share")
    return os.path.join(base, "dotbit", network)


def _absolute(path: str, environ: Mapping[str, str], cwd: str) -> str:
    """`~` from the given environment, relative paths from the given working directory."""
    if path == "~" or path.startswith("~/"):
        path = environ.get("HOME", "/") + path[1:]
    return os.path.normpath(os.path.join(cwd, path))


# The file in a data dir naming the network of the chain stored there (the node writes it).
NETWORK_MARKER = "network"


def marker_network(datadir: str, read: Reader) -> str | None:
    """The network DATADIR/network names, None without one (or with an unreadable one)."""
    try:
        raw = read(os.path.join(datadir, NETWORK_MARKER))
    except OSError:
        return None
    if raw is None:
        return None
    return raw.decode("utf-8", "replace").strip() or None


def _settle_network(cfg: Config, network_flag: str | None, datadir: str | None,
                    recorded: Callable[[str], "str | None"]) -> str:
    """The network: as given (flag, environment, file), else the one the data dir records,
    else main. Given and recorded must agree: a command on another network's chain would
    fail later with a less clear error, or worse, start a second chain in the wrong place."""
    given = cfg.get("node", "network", network_flag)
    found = recorded(datadir) if datadir is not None else None
    if given is not None and found is not None and given != found:
        where = "--network" if network_flag is not None else cfg.source("node", "network")
        raise ConfigError(f"{datadir} holds a {found} chain, not {given} (from {where}): "
                          f"drop the network setting or use another --datadir")
    return given or found or "main"


def load(conf: str | None, network_flag: str | None, datadir_flag: str | None,
         environ: Mapping[str, str], read: Reader, cwd: str,
         recorded: Callable[[str], "str | None"] | None = None) -> tuple[Config, str, str]:
    """Find and read the file, and settle the two settings that locate it.

    With `--conf FILE` the file may set [node] network and datadir. Without it the file is
    DATADIR/dotbit.toml, found from the network and datadir given by flag, environment or
    default; a network in that file must then agree (the file already lives in one network's
    data dir), and a datadir in it would be circular, so both are errors there.
    A data dir given without a network is read for the network its chain belongs to
    (`recorded(datadir)`, by default its marker file).
    Returns (config, network, absolute datadir)."""
    environ = dict(environ)
    if recorded is None:
        recorded = lambda d: marker_network(d, read)      # noqa: E731
    if conf is not None:
        values = read_file(conf, read)
        if not values and read(conf) is None:
            raise ConfigError(f"config file {conf} does not exist")
        cfg = Config(values, environ, conf)
        given_dir = cfg.get("node", "datadir", datadir_flag)
        given_dir = _absolute(given_dir, environ, cwd) if given_dir else None
        network = _settle_network(cfg, network_flag, given_dir, recorded)
        return cfg, network, given_dir or _absolute(default_datadir(network, environ), environ, cwd)
    bare = Config({}, environ)
    given_dir = bare.get("node", "datadir", datadir_flag)
    given_dir = _absolute(given_dir, environ, cwd) if given_dir else None
    network = _settle_network(bare, network_flag, given_dir, recorded)
    datadir = given_dir or _absolute(default_datadir(network, environ), environ, cwd)
    path = os.path.join(datadir, FILE_NAME)
    values = read_file(path, read)
    node = values.get("node", {})
    if "datadir" in node:
        raise ConfigError(f"{path}: [node] datadir cannot be set in the data dir's own file (use --conf)")
    if "network" in node and node["network"] != network:
        raise ConfigError(f"{path}: [node] network = {node['network']!r} but this is the {network} data dir")
    return Config(values, environ, path), network, datadir
