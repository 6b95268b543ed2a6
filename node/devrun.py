"""`make run`: a regtest node in ./data/regtest that mines a block every few seconds, with
everything on loopback, and a banner telling the user how to talk to it."""
from __future__ import annotations

import argparse
import asyncio
import sys

from node import cli
from node.service import Node
from node.settings import node_settings

BANNER = """
dotbit regtest node is running (Ctrl-C stops it)
  data dir      {datadir}
  JSON-RPC      http://127.0.0.1:{rpc}   (cookie auth: {datadir}/.cookie)
  mining to     {addr}, one block every {interval:g}s
  DNS (bit.)    127.0.0.1 port {dns}, UDP+TCP, DNSSEC-signed with DO
  signed HTTP   http://127.0.0.1:{http}/v1/resolver   (key fingerprint {fp})
  p2p           127.0.0.1 port {p2p} (another node: --connect 127.0.0.1:{p2p})
  config        {datadir}/dotbit.toml, read at start like dotbit-node's (docs/operator.md)

Try, in another terminal (after `. .venv/bin/activate`):
  dotbit-node --regtest --datadir {datadir} call getblockchaininfo
  dotbit-node --regtest --datadir {datadir} call generate 5
  curl -s --user "$(cat {datadir}/.cookie)" -d '{{"method":"getblockcount","params":[],"id":1}}' http://127.0.0.1:{rpc}/

Register a name with the wallet (README.md, "Your first .bit name"):
  export DOTBIT_NODE_NETWORK=regtest DOTBIT_RPC_COOKIE={datadir}/.cookie DOTBIT_WALLET_FILE={datadir}/wallet.json
  dotbit-wallet create
  dotbit-node --regtest --datadir {datadir} call generatetoaddress 101 "$(dotbit-wallet address)"
  dotbit-wallet name register d/example --value '{{"ip":"192.0.2.1"}}' --wait
  dig @127.0.0.1 -p {dns} +dnssec +norecurse example.bit A
  dotbit-resolve --network regtest --pin {fp} example.bit A
  dotbit-node --regtest --datadir {datadir} dnssec-anchor      # trust anchor for a validating resolver
"""


def node_argv(args) -> list[str]:
    """`make run` is `dotbit-node --regtest --mine --resolver` plus the ports it was given, so
    DATADIR/dotbit.toml and DOTBIT_* variables count exactly as they do for dotbit-node."""
    argv = ["--regtest", "--datadir", args.datadir, "--mine", "--resolver"]
    for flag, value in (("--rpc-port", args.rpc_port), ("--mine-interval", args.interval),
                        ("--dns-port", args.dns_port), ("--http-port", args.http_port),
                        ("--p2p-port", args.p2p_port)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


async def main_async(node) -> int:
    if not await cli.start(node):
        return 1
    r = node.resolver
    print(BANNER.format(datadir=node.datadir, rpc=node.rpc_port, addr=node.mining_address_text,
                        interval=node.mine_interval, dns=r.dns_port, http=r.http_port,
                        fp=r.key.fingerprint, p2p=node.p2p_config.port), flush=True)
    try:
        await node.stopping.wait()
    finally:
        await node.stop()
    return 0


def main(argv=None) -> int:
    # Defaults None: an unset port comes from the environment, the file or the network.
    p = argparse.ArgumentParser(prog="python -m node.devrun")
    p.add_argument("--datadir", default="data/regtest")
    p.add_argument("--rpc-port", type=int)
    p.add_argument("--interval", type=float, help="seconds between blocks (default 5)")
    p.add_argument("--dns-port", type=int)
    p.add_argument("--http-port", type=int)
    p.add_argument("--p2p-port", type=int)
    args = cli.build_parser().parse_args(node_argv(p.parse_args(argv)))
    try:
        cfg, params, datadir = cli.load(args)
        node = Node(params, datadir, node_settings(cfg, params, args))
    except cli.STARTUP_ERRORS as e:
        print(f"dotbit-node: {e}", file=sys.stderr)
        return 1
    return asyncio.run(main_async(node))


if __name__ == "__main__":
    sys.exit(main())
