"""`dotbit-node`: run a node, or maintain its database (reindex, checkdb), or talk to a running
one (call, status, zone export), or set up its keys (dnssec-anchor, ca init).

This module only reads the command line: the flags, DATADIR/dotbit.toml and the environment
become one NodeSettings (node/settings.py), and node/service.py builds everything from it.
`make run` (node/devrun.py) goes through load() and start() here, so it reads the same.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time

from core.errors import StoreError
from core.params import NETWORKS, get_params
from node.compose import ca_passphrase
from node.config import Config
from node.config import load as load_config
from node.logs import FORMATS, LEVELS
from node.logs import configure as configure_logs
from node.ops.maintenance import checkdb, reindex
from node.ops.status import print_status
from node.ops.zone_export import rebuild_zone, zone_command
from node.resolver.ca.authority import CAError, ca_dir, init_ca
from node.resolver.identity import load_or_create
from node.resolver.zone.projection import forget_zone
from node.resolver.service import default_key_path
from node.rpc.name_encoding import ENCODINGS
from node.service import Node, open_chain
from node.settings import node_settings, par_setting
from wallet.nodeclient import NodeError, OperatorClient

# What building the node may raise for a bad setting, a locked or broken store, an unreadable
# file or a CA that will not open: each is one stderr line and exit 1, not a traceback.
STARTUP_ERRORS = (StoreError, ValueError, OSError, CAError, NodeError)   # NodeError: a bad [rpc] url
COMMANDS = ["run", "reindex", "checkdb", "call", "dnssec-anchor", "status", "zone", "ca"]


def build_parser() -> argparse.ArgumentParser:
    # Settings that the config file may also give default to None here: None means "not on the
    # command line", so node/config.py can fall back to environment, file, built-in default.
    p = argparse.ArgumentParser(prog="dotbit-node", description="dotbit full node",
                                epilog="Every setting can also come from DATADIR/dotbit.toml (or --conf) "
                                       "and from DOTBIT_<SECTION>_<KEY>; see docs/operator.md.")
    p.add_argument("command", nargs="?", default="run", choices=COMMANDS,
                   help="run the node (default); rebuild every projection from the stored blocks "
                        "(reindex); verify the projections against a replay (checkdb); or call "
                        "a running node's JSON-RPC (call METHOD [PARAM...], params as JSON or text); "
                        "or print the resolver's bit. trust anchor (dnssec-anchor); or summarise a "
                        "running node on one screen (status); or write the DNSSEC-signed bit. zone "
                        "(zone export FILE); or create the resolver's issuing CA (ca init)")
    p.add_argument("params", nargs="*", help="for call: the method and its parameters; for zone: export FILE")
    p.add_argument("--conf", help="config file (default: DATADIR/dotbit.toml if it exists)")
    p.add_argument("--network", choices=sorted(NETWORKS), help="main (default), testnet or regtest")
    p.add_argument("--regtest", action="store_const", const="regtest", dest="network",
                   help="shorthand for --network regtest")
    p.add_argument("--datadir", help="data directory (default: ~/.local/share/dotbit/NETWORK)")
    _node_flags(p)
    _resolver_flags(p)
    p.add_argument("--par", type=int, metavar="N",
                   help="block validation threads, this one included: N-1 worker processes check the "
                        "signatures of big blocks (0 = every core, up to 16; 1 = in line; default 0); "
                        "also for reindex and checkdb")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus GET /metrics on this port (default: off; "
                                                    "also on the resolver HTTP port when that is on)")
    p.add_argument("--json", action="store_true", help="status: print the node's status as one JSON object")
    p.add_argument("--log-level", choices=LEVELS, help="debug, info (default), warning or error")
    p.add_argument("--log-format", choices=FORMATS, help="text (default) or json: one object per line")
    return p


def _node_flags(p: argparse.ArgumentParser) -> None:
    """JSON-RPC, mining and p2p."""
    p.add_argument("--rpc-port", type=int, help="JSON-RPC port (default per network)")
    p.add_argument("--rpc-bind", help="JSON-RPC address (default 127.0.0.1)")
    p.add_argument("--rpc-allow-remote", action="store_true", default=None,
                   help="allow --rpc-bind on a non-loopback address (the cookie then crosses the network)")
    p.add_argument("--name-encoding", "--nameencoding", choices=ENCODINGS,
                   help="name RPCs: default encoding of names, as Namecoin's -nameencoding (default ascii)")
    p.add_argument("--value-encoding", "--valueencoding", choices=ENCODINGS,
                   help="name RPCs: default encoding of values, as Namecoin's -valueencoding (default ascii)")
    p.add_argument("--allow-expired", "--allowexpired", action=argparse.BooleanOptionalAction, default=None,
                   help="name_show: answer expired names by default, as Namecoin's -allowexpired (default off)")
    p.add_argument("--mine", action="store_true", default=None, help="mine blocks continuously")
    p.add_argument("--mine-address", help="address for mined coins (default: the node's own key)")
    p.add_argument("--mine-interval", type=float, help="seconds between mined blocks with --mine (default 5)")
    p.add_argument("--miner-processes", type=int, help="hashing processes (default: all cores)")
    p.add_argument("--p2p-port", type=int, help="p2p port (default per network)")
    p.add_argument("--p2p-bind", help="p2p listen address (default 127.0.0.1)")
    p.add_argument("--listen", action=argparse.BooleanOptionalAction, default=None,
                   help="accept inbound p2p connections (default: yes)")
    p.add_argument("--connect", action="append", metavar="HOST:PORT",
                   help="connect only to this peer (repeatable)")
    p.add_argument("--addnode", action="append", metavar="HOST:PORT",
                   help="keep a connection to this peer besides others (repeatable)")
    p.add_argument("--maxpeers", type=int, help="maximum peer connections (default 32)")
    p.add_argument("--addr-rate", type=float, metavar="N",
                   help="addresses per second one peer may send us in addr messages, saved up to "
                        "1,000 (plus 1,000 per getaddr we send); the rest are dropped; 0 turns the "
                        "limit off (default 0.1)")
    p.add_argument("--feeler-interval", type=float, metavar="SECONDS",
                   help="seconds between feeler connections testing an address heard of, once the "
                        "outbound slots are full; 0: none (default 120)")
    p.add_argument("--mempool-max-bytes", type=int, metavar="BYTES",
                   help="memory the mempool may hold, as it counts it (default 100,000,000; at least 10,000)")


def _resolver_flags(p: argparse.ArgumentParser) -> None:
    """DNS, the signed HTTP API, zone transfers and the record sources (CA, DANE)."""
    p.add_argument("--dns-port", type=int, help="serve DNS for bit. on this UDP+TCP port (default: off)")
    p.add_argument("--http-port", type=int, help="serve the signed HTTP resolver API on this port (default: off)")
    p.add_argument("--resolver", action="store_true", default=None,
                   help="serve DNS and HTTP on the network's default resolver ports")
    p.add_argument("--resolver-key", help="resolver Ed25519 key file (default DATADIR/resolver_key, "
                                          "created on first start, mode 0600)")
    p.add_argument("--axfr-allow", action="append", metavar="CIDR",
                   help="answer AXFR of bit. over TCP to these sources (repeatable; default: none)")
    p.add_argument("--axfr-tsig", action="append", metavar="NAME:ALGORITHM:BASE64SECRET",
                   help="also require a TSIG by this key for zone transfers, and sign answers and NOTIFYs "
                        "with it (repeatable; ALGORITHM defaults to hmac-sha256; the command line is "
                        "visible to other users: prefer --axfr-tsig-file)")
    p.add_argument("--axfr-tsig-file", metavar="FILE",
                   help="TSIG keys in BIND syntax (key \"NAME\" { algorithm ...; secret \"...\"; };), "
                        "as tsig-keygen writes them")
    p.add_argument("--ixfr-history", type=int, metavar="N",
                   help="keep the differences of the last N zone serials for IXFR (default 300, at most "
                        "100000; 0: IXFR is answered in AXFR form)")
    p.add_argument("--notify", action="append", metavar="IP:PORT",
                   help="send a NOTIFY for bit. to this secondary on each new tip (repeatable)")
    p.add_argument("--dane-zone", action="append", metavar="FILE",
                   help="serve TLSA/A/AAAA/CNAME of this DNSSEC-signed zone file (a name outside bit.) "
                        "over the HTTP API (repeatable; SIGHUP reloads)")
    p.add_argument("--dane-anchors", metavar="FILE",
                   help="DS/DNSKEY trust anchors for the --dane-zone files; a zone without one is served "
                        "marked insecure")
    p.add_argument("--record-sources", metavar="LIST",
                   help="who answers TLSA questions, first with records wins (default chain,ca,dane)")
    p.add_argument("--ca-passphrase-file", help="passphrase of the CA key in DATADIR/ca "
                                                "(or env DOTBIT_CA_PASSPHRASE)")
    p.add_argument("--resolver-bind", help="DNS and resolver HTTP address (default: the --rpc-bind address); "
                                           "serve DNS publicly without exposing JSON-RPC")
    p.add_argument("--dns-rate-limit", type=float, metavar="N",
                   help="UDP answers per second per /24 (IPv4) or /56 (IPv6) client network; "
                        "0 turns the limit off (default 100)")
    p.add_argument("--dns-rate-limit-exempt", action="append", metavar="CIDR",
                   help="a client network the DNS rate limit never applies to (repeatable; 'none' for "
                        "none; default loopback)")
    p.add_argument("--dns-workers", type=int, metavar="N",
                   help="DNS worker processes sharing the DNS port (SO_REUSEPORT); 1 (default) answers "
                        "in the node process itself")
    p.add_argument("--conns-per-addr", type=int, metavar="N",
                   help="connections one client address may hold to the resolver's HTTP and DNS-over-TCP "
                        "servers (default 1/16 of each server's total: 64 HTTP, 16 DNS)")
    p.add_argument("--conns-per-net", type=int, metavar="N",
                   help="the same per /24 (IPv4) or /56 (IPv6) network (default 1/4: 256 HTTP, 64 DNS)")
    p.add_argument("--conns-exempt", action="append", metavar="CIDR",
                   help="a client network exempt from the per-source connection caps (repeatable; "
                        "default none)")


def load(args) -> tuple[Config, object, str]:
    """The config (flags > env > file > defaults), the network's parameters and the data dir,
    with logging set up; ValueError (ConfigError is one) when they cannot be read."""
    cfg, network, datadir = load_config(args.conf, args.network, args.datadir)
    params = get_params(network)
    configure_logs(cfg.get("node", "log_level", args.log_level, "info"),
                   cfg.get("node", "log_format", args.log_format, "text"))
    return cfg, params, datadir


def main(argv=None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `dotbit-node call name_scan ... | head`: the reader has what it wanted; say nothing,
        # and keep Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141                       # 128 + SIGPIPE, as a shell reports a killed writer


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg, params, datadir = load(args)
    except ValueError as e:
        print(f"dotbit-node: {e}", file=sys.stderr)
        return 1
    try:
        if args.command != "run":
            return _command(args.command, params, datadir, args, cfg)
        node = Node(params, datadir, node_settings(cfg, params, args))
    except BrokenPipeError:
        raise                             # an OSError, but no error: main() ends quietly
    except STARTUP_ERRORS as e:
        print(f"dotbit-node: {e}", file=sys.stderr)
        return 1
    return asyncio.run(_run(node, cfg.get("node", "log_format", args.log_format, "text")))


def _command(command: str, params, datadir: str, args, cfg) -> int:
    """Every subcommand but `run`."""
    if command == "reindex":
        return _reindex(params, datadir, cfg.get("resolver", "key", args.resolver_key), par_setting(cfg, args))
    if command == "checkdb":
        return _checkdb(params, datadir, par_setting(cfg, args))
    if command == "call":
        return _call(params, datadir, args, cfg)
    if command == "status":
        return print_status(_client(params, datadir, args, cfg), sys.stdout, args.json)
    if command == "dnssec-anchor":
        return _dnssec_anchor(datadir, cfg.get("resolver", "key", args.resolver_key))
    if command == "zone":
        args.rpc_port = cfg.get("rpc", "port", args.rpc_port)
        args.resolver_key = cfg.get("resolver", "key", args.resolver_key)
        return zone_command(params, datadir, args)
    return _ca(params, datadir, args, cfg)


def install_signals(node) -> None:
    """SIGINT/SIGTERM stop the node; SIGHUP re-reads the DANE zones."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, node.stopping.set)
    if node.dane is not None:         # off the loop: a big zone takes seconds to re-validate
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, node.dane.reload))


async def start(node) -> bool:
    """Signals, then every server; False (after one stderr line) when one cannot start."""
    install_signals(node)
    try:
        await node.start()
    except OSError as e:
        print(f"dotbit-node: cannot start: {e}", file=sys.stderr)
        await node.stop()
        return False
    return True


async def _run(node, log_format: str = "text") -> int:
    if not await start(node):
        return 1
    if log_format == "json":             # stderr stays one JSON object per line
        logging.getLogger("dotbit.node").info("running", extra={"network": node.params.name,
                                                                "mining_address": node.mining_address_text})
    else:
        print(f"dotbit node ({node.params.name}) running; mining address {node.mining_address_text}",
              file=sys.stderr, flush=True)
    try:
        await node.stopping.wait()
    finally:
        await node.stop()
    return 0


def _reindex(params, datadir: str, resolver_key: str | None, par: int) -> int:
    chain = open_chain(params, datadir, par=par)
    try:
        forget_zone(chain.db)
        reindex(chain, show_progress=True)
        print(f"reindex done: height {chain.height}, tip {chain.tip.hash.hex()}, "
              f"name_root {chain.tip.header.name_root.hex()}")
        serial = rebuild_zone(chain, params, resolver_key or default_key_path(datadir))
        if serial is not None:
            print(f"zone bit. rebuilt: serial {serial}")
    finally:
        chain.sigpool.close()
        chain.db.close()
    return 0


def _checkdb(params, datadir: str, par: int) -> int:
    chain = open_chain(params, datadir, par=par)
    try:
        problems = checkdb(chain, show_progress=sys.stderr.isatty())
    finally:
        chain.sigpool.close()
        chain.db.close()
    for p in problems:
        print(f"checkdb: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"checkdb: ok at height {chain.height} ({chain.tip.hash.hex()})")
    return 0


def _dnssec_anchor(datadir: str, key_path: str | None) -> int:
    """The DNSKEY and DS lines a validator needs as its trust anchor for bit."""
    key = load_or_create(key_path or default_key_path(datadir))
    for line in key.anchor_lines():
        print(line)
    # A comment in zone-file syntax, so the output still works as a trust-anchor file.
    print(f"; resolver key fingerprint (dotbit-resolve --pin): {key.fingerprint}")
    return 0


def _ca(params, datadir: str, args, cfg) -> int:
    """`ca init`: the issuing CA in DATADIR/ca (key encrypted with the passphrase, mode 0600)."""
    if args.params != ["init"]:
        print("dotbit-node: ca takes one subcommand: init", file=sys.stderr)
        return 2
    passphrase = ca_passphrase(cfg.get("resolver", "ca_passphrase_file", args.ca_passphrase_file),
                               cfg.environ.get("DOTBIT_CA_PASSPHRASE"))
    if not passphrase:
        print("dotbit-node: ca init needs a passphrase (--ca-passphrase-file or DOTBIT_CA_PASSPHRASE)",
              file=sys.stderr)
        return 1
    directory = ca_dir(datadir)
    ca = init_ca(directory, passphrase, params.name, time.time())
    print(f"CA created in {directory}: {ca.cert.subject.rfc4514_string()}")
    print(f"certificate {os.path.join(directory, 'ca_cert.pem')} (serve it to clients; "
          f"the resolver also does at /v1/ca/cert)")
    # The CA only runs in a node that can unlock it: say how, or the next start runs without it.
    print("next: (re)start the node with the resolver on and the same passphrase, e.g.\n"
          f"  DOTBIT_CA_PASSPHRASE=... dotbit-node --network {params.name} --datadir {datadir} --resolver\n"
          "  (or --ca-passphrase-file FILE, or [resolver] ca_passphrase_file in dotbit.toml);\n"
          "  owners then get certificates with `dotbit-wallet cert request NAME`")
    return 0


def _client(params, datadir: str, args, cfg):
    """An RPC client for the node this config describes ([rpc] url/cookie, or port and datadir)."""
    port = cfg.get("rpc", "port", args.rpc_port, params.rpc_port)
    url = cfg.get("rpc", "url", None, f"http://127.0.0.1:{port}")
    return OperatorClient(url, cfg.get("rpc", "cookie", None, os.path.join(datadir, ".cookie")))


def _call(params, datadir: str, args, cfg) -> int:
    if not args.params:
        print("dotbit-node: call needs a METHOD", file=sys.stderr)
        return 2
    method, raw = args.params[0], args.params[1:]
    values = []
    for r in raw:
        try:
            values.append(json.loads(r))
        except ValueError:
            values.append(r)
    client = _client(params, datadir, args, cfg)
    try:
        result = client.call(method, *values)
    except NodeError as e:
        print(f"dotbit-node: {e}", file=sys.stderr)
        return 1
    print(result if isinstance(result, str) else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
