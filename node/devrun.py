"""`make run`: a regtest node in ./data/regtest that mines a block every few seconds, with
everything on loopback, and a banner telling the user how to talk to it."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from core.params import REGTEST
from node.service import Node

BANNER = """
dotbit regtest node is running (Ctrl-C stops it)
  data dir      {datadir}
  JSON-RPC      http://127.0.0.1:{rpc}   (cookie auth: {datadir}/.cookie)
  mining to     {addr}, one block every {interval:g}s
  DNS (bit.)    127.0.0.1 port {dns}, UDP+TCP, DNSSEC-signed with DO
  signed HTTP   http://127.0.0.1:{http}/v1/resolver   (key fingerprint {fp})
  p2p           127.0.0.1 port {p2p} (another node: --connect 127.0.0.1:{p2p})

Try, in another terminal (after `. .venv/bin/activate`):
  dotbit-node --regtest --datadir {datadir} call getblockchaininfo
  dotbit-node --regtest --datadir {datadir} call generate 5
  curl -s --user "$(cat {datadir}/.cookie)" -d '{{"method":"getblockcount","params":[],"id":1}}' http://127.0.0.1:{rpc}/

Register a name with the wallet (README.md, "Your first .bit name"):
  export DOTBIT_NETWORK=regtest DOTBIT_RPC_COOKIE={datadir}/.cookie DOTBIT_WALLET={datadir}/wallet.json
  dotbit-wallet create
  dotbit-node --regtest --datadir {datadir} call generatetoaddress 101 "$(dotbit-wallet address)"
  dotbit-wallet name register d/example --value '{{"ip":"192.0.2.1"}}' --wait
  dig @127.0.0.1 -p {dns} +dnssec +norecurse example.bit A
  dotbit-resolve --network regtest --pin {fp} example.bit A
  dotbit-node --regtest --datadir {datadir} dnssec-anchor      # trust anchor for a validating resolver
"""


async def main_async(args) -> int:
    from p2p.network import P2PConfig
    node = Node(REGTEST, args.datadir, rpc_port=args.rpc_port, mine=True, mine_interval=args.interval,
                dns_port=args.dns_port, http_port=args.http_port, p2p=P2PConfig(port=args.p2p_port))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, node.stopping.set)
    await node.start()
    print(BANNER.format(datadir=args.datadir, rpc=node.rpc_port, addr=node.mining_address_text,
                        interval=args.interval, dns=node.resolver.dns_port, http=node.resolver.http_port,
                        fp=node.resolver.key.fingerprint, p2p=args.p2p_port), flush=True)
    try:
        await node.stopping.wait()
    finally:
        await node.stop()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m node.devrun")
    p.add_argument("--datadir", default="data/regtest")
    p.add_argument("--rpc-port", type=int, default=REGTEST.rpc_port)
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--dns-port", type=int, default=REGTEST.dns_port)
    p.add_argument("--http-port", type=int, default=REGTEST.http_port)
    p.add_argument("--p2p-port", type=int, default=REGTEST.p2p_port)
    args = p.parse_args()
    args.datadir = os.path.abspath(args.datadir)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
