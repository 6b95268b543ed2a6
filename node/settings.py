"""The node's settings: one object, built once from flags > environment > file > defaults
(core/config.py's precedence, read through node/config.py), and handed to the service.

Only values live here (ports, paths, key specs as text); node/service.py and node/compose.py
turn them into parts (TSIG keyrings, DANE sources, rate limiters...). Settings errors are a
ValueError with one line of text, which the CLI prints as its one error line.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.config import Config
from core.connlimit import ConnCaps, parse_exempt
from core.sources import DEFAULT_ORDER, parse_order
from node.rpc.name_encoding import DEFAULT_NAME_ENCODING, DEFAULT_VALUE_ENCODING, check_setting
from node.chain.mempool import DEFAULT_MAX_BYTES, MIN_MAX_BYTES
from node.chain.sigpool import resolve_par
from node.exposure import DEFAULT_DNS_RATE_LIMIT, DEFAULT_EXEMPT, check_rpc_bind
from p2p.network import P2PConfig, parse_hostport

MAX_DNS_WORKERS = 64


@dataclass(frozen=True)
class ResolverSettings:
    """DNS and the signed HTTP API; a port of None leaves that server off."""
    dns_port: int | None = None
    http_port: int | None = None
    host: str | None = None                 # None: the JSON-RPC address
    key: str | None = None                  # None: DATADIR/resolver_key
    record_sources: tuple[str, ...] = DEFAULT_ORDER
    axfr_allow: tuple[str, ...] = ()        # CIDRs
    axfr_tsig: tuple[str, ...] = ()         # NAME:ALGORITHM:BASE64SECRET
    axfr_tsig_file: str | None = None
    notify: tuple[str, ...] = ()            # IP:PORT
    ixfr_history: int = 300                 # IXFR steps kept (projection.DEFAULT_HISTORY)
    dane_zones: tuple[str, ...] = ()
    dane_anchors: str | None = None
    ca_passphrase_file: str | None = None
    ca_passphrase: str | None = None        # from the environment, when no file is given
    dns_rate_limit: float = DEFAULT_DNS_RATE_LIMIT
    dns_rate_limit_exempt: tuple[str, ...] = tuple(DEFAULT_EXEMPT)
    conn_caps: ConnCaps = ConnCaps()        # per-source connection caps of HTTP and DNS over TCP
    dns_workers: int = 1                    # > 1: DNS answered by that many worker processes

    @property
    def enabled(self) -> bool:
        return self.dns_port is not None or self.http_port is not None


@dataclass(frozen=True)
class NodeSettings:
    rpc_host: str = "127.0.0.1"
    rpc_port: int | None = None             # None: the network's
    mine: bool = False
    mine_address: str | None = None         # None: the node's own key in the data dir
    mine_interval: float = 5.0
    miner_processes: int | None = None      # None: every core
    p2p: P2PConfig | None = None            # None: no networking
    metrics_port: int | None = None
    # Name RPCs' defaults, Namecoin's -nameencoding / -valueencoding / -allowexpired.
    name_encoding: str = DEFAULT_NAME_ENCODING
    value_encoding: str = DEFAULT_VALUE_ENCODING
    allow_expired: bool = False
    mempool_max_bytes: int = DEFAULT_MAX_BYTES   # memory, as node/chain/mempool_policy.py counts it
    par: int = 1                            # block validation threads, this one included (--par)
    resolver: ResolverSettings = field(default_factory=ResolverSettings)


def _flag(flags, name: str):
    """A flag's value, None when not given (or when this front end has no such flag)."""
    return getattr(flags, name, None)


def node_settings(cfg: Config, params, flags) -> NodeSettings:
    """The settings for `dotbit-node run` (and `make run`): `flags` is the parsed command line."""
    resolver = resolver_settings(cfg, params, flags)       # first: its errors were reported first
    rpc_bind = cfg.get("rpc", "bind", _flag(flags, "rpc_bind"), "127.0.0.1")
    check_rpc_bind(rpc_bind, cfg.get("rpc", "allow_remote", _flag(flags, "rpc_allow_remote"), False))
    mempool_max = cfg.get("mempool", "max_bytes", _flag(flags, "mempool_max_bytes"), DEFAULT_MAX_BYTES)
    if mempool_max < MIN_MAX_BYTES:
        raise ValueError(f"--mempool-max-bytes: {mempool_max} is below the minimum {MIN_MAX_BYTES:,}")
    return NodeSettings(
        rpc_host=rpc_bind, rpc_port=cfg.get("rpc", "port", _flag(flags, "rpc_port")),
        mine=cfg.get("mining", "enabled", _flag(flags, "mine"), False),
        mine_address=cfg.get("mining", "address", _flag(flags, "mine_address")),
        mine_interval=cfg.get("mining", "interval", _flag(flags, "mine_interval"), 5.0),
        miner_processes=cfg.get("mining", "processes", _flag(flags, "miner_processes")),
        p2p=p2p_settings(cfg, params, flags), resolver=resolver,
        name_encoding=_encoding(cfg, flags, "name_encoding", DEFAULT_NAME_ENCODING),
        value_encoding=_encoding(cfg, flags, "value_encoding", DEFAULT_VALUE_ENCODING),
        allow_expired=cfg.get("rpc", "allow_expired", _flag(flags, "allow_expired"), False),
        metrics_port=cfg.get("node", "metrics_port", _flag(flags, "metrics_port")),
        mempool_max_bytes=mempool_max, par=par_setting(cfg, flags))


def par_setting(cfg: Config, flags) -> int:
    """--par / [node] par as a thread count (0 or unset: every core, capped); also read by
    reindex and checkdb, which validate every block again."""
    return resolve_par(cfg.get("node", "par", _flag(flags, "par")))


def _encoding(cfg: Config, flags, key: str, default: str) -> str:
    flag = "--" + key.replace("_", "-")
    return check_setting(f"{key} ({flag})", cfg.get("rpc", key, _flag(flags, key), default))


def resolver_settings(cfg: Config, params, flags) -> ResolverSettings:
    def get(key: str, flag: str, default=None):
        return cfg.get("resolver", key, _flag(flags, flag), default)

    record_sources = parse_order(get("record_sources", "record_sources", "chain,ca,dane"))
    on = get("enabled", "resolver", False)
    dns_port = get("dns_port", "dns_port", params.dns_port if on else None)
    axfr_allow = tuple(get("axfr_allow", "axfr_allow", []))
    if axfr_allow and dns_port is None:
        raise ValueError("--axfr-allow needs DNS: add --dns-port N or --resolver")
    workers = get("dns_workers", "dns_workers", 1)
    if not 1 <= workers <= MAX_DNS_WORKERS:
        raise ValueError(f"--dns-workers must be 1 to {MAX_DNS_WORKERS}")
    if workers > 1 and (axfr_allow or get("axfr_tsig", "axfr_tsig") or get("axfr_tsig_file", "axfr_tsig_file")):
        # Zone transfers read the whole signed zone from the store, which workers cannot open.
        raise ValueError("--dns-workers above 1 cannot serve zone transfers: drop --axfr-allow/--axfr-tsig")
    history = get("ixfr_history", "ixfr_history", 300)
    if not 0 <= history <= 100_000:
        raise ValueError(f"--ixfr-history: expected 0 to 100000 serials, got {history}")
    exempt = tuple(get("conns_exempt", "conns_exempt", []))
    try:
        parse_exempt(exempt)
    except ValueError as e:
        raise ValueError(f"--conns-exempt: {e}") from None
    return ResolverSettings(
        dns_port=dns_port, http_port=get("http_port", "http_port", params.http_port if on else None),
        host=get("bind", "resolver_bind"), key=get("key", "resolver_key"), record_sources=record_sources,
        axfr_allow=axfr_allow, axfr_tsig=tuple(get("axfr_tsig", "axfr_tsig", [])),
        axfr_tsig_file=get("axfr_tsig_file", "axfr_tsig_file"), notify=tuple(get("notify", "notify", [])), ixfr_history=history,
        dane_zones=tuple(get("dane_zones", "dane_zone", [])), dane_anchors=get("dane_anchors", "dane_anchors"),
        ca_passphrase_file=get("ca_passphrase_file", "ca_passphrase_file"),
        ca_passphrase=cfg.environ.get("DOTBIT_CA_PASSPHRASE"),
        dns_rate_limit=get("dns_rate_limit", "dns_rate_limit", DEFAULT_DNS_RATE_LIMIT),
        dns_rate_limit_exempt=tuple(get("dns_rate_limit_exempt", "dns_rate_limit_exempt", DEFAULT_EXEMPT)),
        conn_caps=ConnCaps(max(0, get("conns_per_addr", "conns_per_addr", 0)),
                           max(0, get("conns_per_net", "conns_per_net", 0)),
                           exempt),
        dns_workers=workers)


def p2p_settings(cfg: Config, params, flags) -> P2PConfig:
    def get(key: str, flag: str, default=None):
        return cfg.get("p2p", key, _flag(flags, flag), default)

    addr_rate = get("addr_rate", "addr_rate", P2PConfig.addr_rate)
    feeler_interval = get("feeler_interval", "feeler_interval", P2PConfig.feeler_interval)
    if addr_rate < 0 or feeler_interval < 0:
        raise ValueError("--addr-rate and --feeler-interval must be 0 (off) or more")
    return P2PConfig(port=get("port", "p2p_port", params.p2p_port), bind=get("bind", "p2p_bind", "127.0.0.1"),
                     listen=get("listen", "listen", True), maxpeers=max(1, get("maxpeers", "maxpeers", 32)),
                     connect=[parse_hostport(a, params.p2p_port) for a in get("connect", "connect", [])],
                     addnode=[parse_hostport(a, params.p2p_port) for a in get("addnode", "addnode", [])],
                     addr_rate=addr_rate, feeler_interval=feeler_interval)
