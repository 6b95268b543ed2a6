"""`dotbit-connect`: fetch an https:// URL under .bit, or forward a local port to it, with the
server's certificate checked against the name's TLSA rows as the light client verified them.

  dotbit-connect [options] https://NAME.bit[:PORT]/PATH      the response body on stdout
  dotbit-connect [options] --listen 127.0.0.1:P NAME.bit[:PORT]
                                                  plain TCP on P relayed over the checked TLS

The light-client options (--resolver, --pin, --network, --light-dir, --peer, --headers-from,
--checkpoint, --max-tip-age) mean what they mean for dotbit-resolve and are read from its
config file too. Each check prints ';; checked: ...' on stderr once it has passed.

Exit status: 0 a response was received (whatever its HTTP status), 2 a check failed or the
input is bad -- with ONE line on stderr naming the check (resolve, tlsa, connect, tls, http,
usage).
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from connect.target import CheckFailed, UsageError, parse_listen, parse_target
from light.cliboundary import run_command
from light.cli import default_config, default_light_dir, read_config
from light.cli import UsageError as ResolveUsageError
from core.params import get_params
from light.verify import TIP_AGE_BLOCKS

CONFIG_KEYS = ("resolver", "pin", "network", "light-dir", "max-tip-age")
MAX_BYTES = 16 * 1024 * 1024


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"dotbit-connect: usage: {message}", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dotbit-connect", description="TLS to .bit names, checked against the chain's TLSA rows.")
    p.add_argument("url", help="https://NAME.bit[:PORT]/PATH (forward mode: NAME.bit[:PORT])")
    p.add_argument("-i", "--include", action="store_true", help="print the status line and headers too")
    p.add_argument("--listen", metavar="127.0.0.1:PORT", help="forward mode: relay local plain TCP over the "
                                                              "checked TLS connection")
    p.add_argument("--max-connections", type=int, default=16, help="forward mode: at most this many at once "
                                                                   "(default 16)")
    p.add_argument("--max-bytes", type=int, default=MAX_BYTES, help="largest response body (default 16 MiB)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds for each TCP/TLS connect (default 10)")
    p.add_argument("--config", help="dotbit-resolve config file (default ~/.config/dotbit/resolve.conf)")
    p.add_argument("--network", help="main (default), testnet or regtest")
    p.add_argument("--resolver", help="resolver HTTP API URL (default http://127.0.0.1:<network port>)")
    p.add_argument("--pin", help="SHA-256 fingerprint (hex) of the resolver's key")
    p.add_argument("--light-dir", help="header store (default ~/.local/share/dotbit/NETWORK/light)")
    p.add_argument("--peer", action="append", metavar="HOST:PORT", help="full node to sync headers from (repeatable)")
    p.add_argument("--headers-from", action="append", help="another header source URL (repeatable)")
    p.add_argument("--ca-cert", action="append", help="PEM certificate of a .bit CA whose TLSA records are "
                                                      "accepted for names without their own (repeatable)")
    p.add_argument("--max-tip-age", help="refuse answers while our best header is older than this many seconds")
    return p


def settings(argv) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    try:
        conf = read_config(args.config or default_config(), args.config is not None)
    except ResolveUsageError as e:
        raise UsageError(str(e)) from None
    for key in CONFIG_KEYS:
        attr = key.replace("-", "_")
        if getattr(args, attr) is None and key in conf:
            value = conf[key]
            setattr(args, attr, value[0] if isinstance(value, list) else value)
    try:
        args.params = get_params(args.network or "main")
    except ValueError as e:
        raise UsageError(str(e)) from None
    args.target = parse_target(args.url)
    args.listen_at = parse_listen(args.listen) if args.listen else None
    args.light_dir = args.light_dir or default_light_dir(args.params.name)
    args.resolver = args.resolver or f"http://127.0.0.1:{args.params.http_port}"
    if not args.pin or len(args.pin) != 64 or any(c not in "0123456789abcdefABCDEF" for c in args.pin):
        raise UsageError("--pin must be the 64-hex-digit fingerprint of the resolver key")
    if not 0 < args.max_connections <= 1024 or args.max_bytes <= 0 or not 0 < args.timeout <= 300:
        raise UsageError("--max-connections 1..1024, --max-bytes > 0, --timeout 0..300 seconds")
    args.peers = [_peer(p) for p in args.peer or ()]
    args.ca_certs = [_ca_cert(path) for path in args.ca_cert or ()]
    try:
        args.max_tip_age = TIP_AGE_BLOCKS * args.params.spacing if args.max_tip_age is None \
            else float(args.max_tip_age)
    except ValueError:
        raise UsageError("--max-tip-age must be a number of seconds") from None
    return args


def _peer(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"peer {text!r:.80}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def _ca_cert(path: str):
    from cryptography import x509
    try:
        with open(path, "rb") as f:
            return x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read CA certificate {path}: {getattr(e, 'strerror', None) or e}") from None


def say(line: str) -> None:
    print(f";; checked: {line}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    def body() -> int:
        args = settings(sys.argv[1:] if argv is None else argv)
        return asyncio.run(_forward(args) if args.listen_at else _fetch(args))
    return run_command("dotbit-connect", body, [(UsageError, "usage: "), (CheckFailed, "")])


def _client(args):
    from light.client import LightClient
    return LightClient(args.params, args.light_dir, args.resolver, args.pin,
                       header_urls=tuple(args.headers_from or ()), peers=args.peers, max_tip_age=args.max_tip_age,
                       ca_certs=args.ca_certs)


def _notes(client) -> None:
    """Header sources that fed a lower-work chain or failed: said, not fatal (as dotbit-resolve)."""
    for line in client.notes:
        print(f"dotbit-connect: note: {line}", file=sys.stderr, flush=True)


async def _fetch(args) -> int:
    from connect.fetch import fetch
    from connect.lookup import lookup
    from connect.tls import connect_blocking
    async with _client(args) as client:
        found = await lookup(client, args.target, True, say)
        _notes(client)
    # Blocking from here: one connection, and http.client reads chunked and sized bodies.
    sock = connect_blocking(args.target, found, args.timeout, say)
    head, body = fetch(sock, args.target, args.max_bytes)
    say(f"http: {head.splitlines()[0]} from {args.target.authority}, {len(body)} body bytes")
    out = sys.stdout.buffer
    if args.include:
        out.write(head.encode("latin-1"))
    out.write(body)
    out.flush()
    return 0


async def _forward(args) -> int:
    from connect.forward import Forwarder
    from connect.lookup import lookup
    async with _client(args) as client:
        await lookup(client, args.target, True, say)      # refuse to start for a name we cannot check
        _notes(client)
        fwd = Forwarder(client, args.target, args.max_connections, args.timeout, say)
        port = await fwd.start(*args.listen_at)
        print(f"dotbit-connect: forwarding {args.listen_at[0]}:{port} -> {args.target.authority} "
              f"(TLS checked against its TLSA rows)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await fwd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
