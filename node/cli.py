"""`dotbit-node`: run a node, or maintain its database (reindex, checkdb)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from node.chain.errors import StoreError
from node.params import NETWORKS, get_params


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dotbit-node", description="dotbit full node")
    p.add_argument("command", nargs="?", default="run", choices=["run", "reindex", "checkdb", "call", "dnssec-anchor", "ca"],
                   help="run the node (default); rebuild every projection from the stored blocks "
                        "(reindex); verify the projections against a replay (checkdb); or call "
                        "a running node's JSON-RPC (call METHOD [PARAM...], params as JSON or text); "
                        "or print the resolver's bit. trust anchor (dnssec-anchor); "
                        "or create the resolver's issuing CA (ca init)")
    p.add_argument("params", nargs="*", help="for call: the method and its parameters")
    p.add_argument("--network", default="main", choices=sorted(NETWORKS))
    p.add_argument("--regtest", action="store_const", const="regtest", dest="network",
                   help="shorthand for --network regtest")
    p.add_argument("--datadir", help="data directory (default: ~/.local/share/dotbit/NETWORK)")
    p.add_argument("--rpc-port", type=int, help="JSON-RPC port (default per network)")
    p.add_argument("--rpc-bind", default="127.0.0.1", help="JSON-RPC address (default 127.0.0.1)")
    p.add_argument("--mine", action="store_true", help="mine blocks continuously")
    p.add_argument("--mine-address", help="address for mined coins (default: the node's own key)")
    p.add_argument("--mine-interval", type=float, default=5.0,
                   help="seconds between mined blocks with --mine (default 5)")
    p.add_argument("--miner-processes", type=int, help="hashing processes (default: all cores)")
    p.add_argument("--p2p-port", type=int, help="p2p port (default per network)")
    p.add_argument("--p2p-bind", default="127.0.0.1", help="p2p listen address (default 127.0.0.1)")
    p.add_argument("--listen", action=argparse.BooleanOptionalAction, default=True,
                   help="accept inbound p2p connections (default: yes)")
    p.add_argument("--connect", action="append", default=[], metavar="HOST:PORT",
                   help="connect only to this peer (repeatable)")
    p.add_argument("--addnode", action="append", default=[], metavar="HOST:PORT",
                   help="keep a connection to this peer besides others (repeatable)")
    p.add_argument("--maxpeers", type=int, default=32, help="maximum peer connections (default 32)")
    p.add_argument("--dns-port", type=int, help="serve DNS for bit. on this UDP+TCP port (default: off)")
    p.add_argument("--http-port", type=int, help="serve the signed HTTP resolver API on this port (default: off)")
    p.add_argument("--resolver", action="store_true",
                   help="serve DNS and HTTP on the network's default resolver ports")
    p.add_argument("--resolver-key", help="resolver Ed25519 key file (default DATADIR/resolver_key, "
                                          "created on first start, mode 0600)")
    p.add_argument("--record-sources", default="chain,ca,dane", metavar="LIST",
                   help="who answers TLSA questions, first with records wins (default chain,ca,dane)")
    p.add_argument("--ca-passphrase-file", help="passphrase of the CA key in DATADIR/ca "
                                                "(or env DOTBIT_CA_PASSPHRASE)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    from node.resolver.ca.authority import CAError
    from node.resolver.sources import parse_order
    from node.service import Node, default_datadir, open_chain
    params = get_params(args.network)
    datadir = os.path.abspath(args.datadir or default_datadir(params.name))
    try:
        if args.command == "reindex":
            return _reindex(params, datadir)
        if args.command == "checkdb":
            return _checkdb(params, datadir)
        if args.command == "call":
            return _call(params, datadir, args)
        if args.command == "dnssec-anchor":
            return _dnssec_anchor(datadir, args)
        if args.command == "ca":
            return _ca(params, datadir, args)
        record_sources = parse_order(args.record_sources)
        dns_port = args.dns_port if args.dns_port is not None else (params.dns_port if args.resolver else None)
        http_port = args.http_port if args.http_port is not None else (params.http_port if args.resolver else None)
        node = Node(params, datadir, rpc_host=args.rpc_bind, rpc_port=args.rpc_port, mine=args.mine,
                    mine_address=args.mine_address, mine_interval=args.mine_interval,
                    miner_processes=args.miner_processes, p2p=_p2p_config(args, params),
                    dns_port=dns_port, http_port=http_port, resolver_key=args.resolver_key,
                    record_sources=record_sources, ca_passphrase=_ca_passphrase(args))
    except (StoreError, ValueError, OSError, CAError) as e:
        print(f"dotbit-node: {e}", file=sys.stderr)
        return 1
    return asyncio.run(_run(node))


def _p2p_config(args, params):
    from p2p.network import P2PConfig, parse_hostport
    port = args.p2p_port if args.p2p_port is not None else params.p2p_port
    return P2PConfig(port=port, bind=args.p2p_bind, listen=args.listen, maxpeers=max(1, args.maxpeers),
                     connect=[parse_hostport(a, params.p2p_port) for a in args.connect],
                     addnode=[parse_hostport(a, params.p2p_port) for a in args.addnode])


async def _run(node) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, node.stopping.set)
    try:
        await node.start()
    except OSError as e:
        print(f"dotbit-node: cannot start: {e}", file=sys.stderr)
        await node.stop()
        return 1
    print(f"dotbit node ({node.params.name}) running; mining address {node.mining_address_text}",
          file=sys.stderr, flush=True)
    try:
        await node.stopping.wait()
    finally:
        await node.stop()
    return 0


def _reindex(params, datadir: str) -> int:
    from node.maintenance import reindex
    from node.service import open_chain
    chain = open_chain(params, datadir)
    try:
        reindex(chain, show_progress=True)
        print(f"reindex done: height {chain.height}, tip {chain.tip.hash.hex()}, "
              f"name_root {chain.tip.header.name_root.hex()}")
    finally:
        chain.db.close()
    return 0


def _checkdb(params, datadir: str) -> int:
    from node.maintenance import checkdb
    from node.service import open_chain
    chain = open_chain(params, datadir)
    try:
        problems = checkdb(chain, show_progress=sys.stderr.isatty())
    finally:
        chain.db.close()
    for p in problems:
        print(f"checkdb: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"checkdb: ok at height {chain.height} ({chain.tip.hash.hex()})")
    return 0


def _dnssec_anchor(datadir: str, args) -> int:
    """The DNSKEY and DS lines a validator needs as its trust anchor for bit."""
    from node.resolver.identity import load_or_create
    from node.resolver.service import default_key_path
    key = load_or_create(args.resolver_key or default_key_path(datadir))
    for line in key.anchor_lines():
        print(line)
    # A comment in zone-file syntax, so the output still works as a trust-anchor file.
    print(f"; resolver key fingerprint (dotbit-resolve --pin): {key.fingerprint}")
    return 0


def _ca_passphrase(args) -> str | None:
    if args.ca_passphrase_file:
        with open(args.ca_passphrase_file, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    return os.environ.get("DOTBIT_CA_PASSPHRASE")


def _ca(params, datadir: str, args) -> int:
    """`ca init`: the issuing CA in DATADIR/ca (key encrypted with the passphrase, mode 0600)."""
    import time

    from node.resolver.ca.authority import ca_dir, init_ca
    if args.params != ["init"]:
        print("dotbit-node: ca takes one subcommand: init", file=sys.stderr)
        return 2
    passphrase = _ca_passphrase(args)
    if not passphrase:
        print("dotbit-node: ca init needs a passphrase (--ca-passphrase-file or DOTBIT_CA_PASSPHRASE)",
              file=sys.stderr)
        return 1
    directory = ca_dir(datadir)
    ca = init_ca(directory, passphrase, params.name, time.time())
    print(f"CA created in {directory}: {ca.cert.subject.rfc4514_string()}")
    print(f"certificate {os.path.join(directory, 'ca_cert.pem')} (serve it to clients; "
          f"the resolver also does at /v1/ca/cert)")
    return 0


def _call(params, datadir: str, args) -> int:
    import json

    from node.rpcclient import RPCClient, RPCClientError
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
    client = RPCClient(f"http://127.0.0.1:{args.rpc_port or params.rpc_port}",
                       os.path.join(datadir, ".cookie"))
    try:
        result = client.call(method, *values)
    except RPCClientError as e:
        print(f"dotbit-node: {e}", file=sys.stderr)
        return 1
    print(result if isinstance(result, str) else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
