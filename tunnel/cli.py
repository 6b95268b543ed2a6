"""`dotbit-tunnel`: MinimaLT-style tunnels to .bit names (docs/tunnel.md).

  dotbit-tunnel keygen --keys FILE              a server identity and a first ephemeral key
  dotbit-tunnel ekey-new --keys FILE            a new ephemeral key (publish it with
                                                `dotbit-wallet ekey rotate NAME --eph-key KEY`)
  dotbit-tunnel serve --name d/NAME --forward HOST:PORT --keys FILE [--listen HOST:PORT]
  dotbit-tunnel connect NAME.bit --listen HOST:PORT     like ssh -L: TCP in, tunnel out

serve and connect learn the name's keys through the light client's verified path (--resolver,
--pin, --network, --light-dir as for dotbit-resolve). Exit status: 0 stopped cleanly, 2 a
check failed or the input is bad, with ONE line on stderr naming the check.
"""
from __future__ import annotations

import argparse
import base64
import asyncio
import json
import os
import shlex
import signal
import sys
import time

from core.params import get_params
from light.cliboundary import run_command
from light.client import LightClient
from light.verdict import VerifyError
from tunnel import keyfile
from tunnel.client import Tunnel, TunnelError
from tunnel.conn import pipe
from tunnel.resolve import resolve_server
from tunnel.server import Server, ServerLimits

FIRST_WAIT = 0.2             # how long connect waits for a TCP client's first bytes, so they ride in the open


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dotbit-tunnel", description="MinimaLT-style encrypted tunnels to .bit names.")
    p.add_argument("command", choices=("keygen", "ekey-new", "serve", "connect"))
    p.add_argument("target", nargs="?", help="connect: NAME.bit")
    p.add_argument("--keys", help="the server's key file")
    p.add_argument("--ttl", type=int, default=keyfile.DEFAULT_TTL, help="ephemeral key lifetime, seconds")
    p.add_argument("--overlap", type=int, default=keyfile.DEFAULT_OVERLAP,
                   help="seconds an expired ephemeral key is still accepted (default 3600)")
    p.add_argument("--name", help="serve: the d/ name whose minimalT item this server answers for")
    p.add_argument("--forward", metavar="HOST:PORT", help="serve: the TCP service behind the tunnel")
    p.add_argument("--listen", metavar="HOST:PORT", help="serve: UDP address (default 127.0.0.1 and the "
                                                         "published port); connect: TCP address")
    p.add_argument("--puzzle-above", type=int, default=500, help="serve: open attempts/s above which opens "
                                                                 "must carry a solved puzzle")
    p.add_argument("--rotate-every", type=float, help="serve: make a new ephemeral key this often (seconds) and "
                                                     "publish it with --publish-cmd")
    p.add_argument("--publish-cmd", help="serve: a command run with the new eph_key (base64) and its expiry "
                                         "(unix time) appended, that signs and publishes it with the owner key")
    p.add_argument("--max-tunnels", type=int, default=1024, help="serve: tunnels held at once (each buffers "
                                                                 "at most 1 MiB of stream data)")
    p.add_argument("--network", default="main")
    p.add_argument("--resolver", help="resolver HTTP API URL (default http://127.0.0.1:<network port>)")
    p.add_argument("--pin", help="SHA-256 fingerprint (hex) of the resolver's key")
    p.add_argument("--light-dir", help="header store (default ~/.local/share/dotbit/NETWORK/light)")
    p.add_argument("--open-timeout", type=float, default=5.0, help="connect: seconds to wait for the server")
    p.add_argument("--dead-after", type=float, default=15.0, help="connect: a tunnel silent this long with data "
                                                                  "unacked is replaced by a new one")
    p.add_argument("--rekey-bytes", type=int, default=1 << 30, help="connect: rekey after this many bytes")
    p.add_argument("--rekey-interval", type=float, default=600.0, help="connect: rekey after this many seconds")
    return p


def hostport(text: str | None, what: str) -> tuple[str, int]:
    host, _, port = (text or "").rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"{what} {text!r:.80}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def main(argv=None) -> int:
    return run_command("dotbit-tunnel", lambda: _main(argv), [
        (UsageError, "usage: "), (ValueError, "usage: "), (VerifyError, "verification failed: "),
        (TunnelError, "tunnel failed: "), (keyfile.KeyFileError, "keys: ")])


def _main(argv) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command in ("keygen", "ekey-new"):
        return _keys(args)
    args.params = get_params(args.network)
    if args.pin is None:
        raise UsageError("no --pin given: pin the fingerprint of the resolver (as for dotbit-resolve)")
    return asyncio.run(_serve(args) if args.command == "serve" else _connect(args))


def _keys(args) -> int:
    if not args.keys:
        raise UsageError("--keys FILE is required")
    now = int(time.time())
    if args.command == "keygen":
        out = keyfile.keygen(args.keys, now, args.ttl)
    else:
        out = keyfile.new_eph(args.keys, now, args.ttl, args.overlap)
    print(json.dumps(out, indent=1))
    return 0


def _light(args) -> LightClient:
    url = args.resolver or f"http://127.0.0.1:{args.params.http_port}"
    light_dir = args.light_dir or os.path.join(os.path.expanduser("~/.local/share/dotbit"), args.params.name, "light")
    return LightClient(args.params, light_dir, url, args.pin)


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


# --- serve -----------------------------------------------------------------------------------

async def _serve(args) -> int:
    if not (args.name and args.name.startswith("d/") and args.keys):
        raise UsageError("serve needs --name d/NAME and --keys FILE")
    if args.rotate_every is not None and not (args.publish_cmd and 0 < args.rotate_every < args.ttl):
        raise UsageError("--rotate-every needs --publish-cmd and must be > 0 and below --ttl")
    fhost, fport = hostport(args.forward, "--forward")
    id_secret, eph = keyfile.read(args.keys)
    async with _light(args) as light:
        info = await resolve_server(light, args.name[2:] + ".bit")
    _check_published(info, args.keys)
    host, port = hostport(args.listen, "--listen") if args.listen else ("127.0.0.1", info.port)

    async def forward(conn):
        try:
            reader, writer = await asyncio.open_connection(fhost, fport)
        except OSError:
            conn.abort()
            return
        await pipe(conn, reader, writer)

    server = Server(id_secret, ServerLimits(max_tunnels=args.max_tunnels, puzzle_above=args.puzzle_above), forward)
    server.set_eph_keys([(s, exp + args.overlap) for s, exp in eph])
    bound = await server.start(host, port)
    print(f"dotbit-tunnel: serving {args.name} on udp {host}:{bound} -> tcp {fhost}:{fport}", flush=True)
    stop = _stop_event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, lambda: print(
        "dotbit-tunnel: stats " + " ".join(f"{k}={v}" for k, v in server.stats.items())
        + f" tunnels={len(server.tunnels)} load={server.load():.0f}/s", file=sys.stderr, flush=True))
    tasks = [asyncio.ensure_future(_reload_keys(server, args.keys, args.overlap))]
    if args.rotate_every:
        tasks.append(asyncio.ensure_future(_rotate(server, args)))
    await stop.wait()
    for task in tasks:
        task.cancel()
    server.close()
    return 0


def _check_published(info, path: str) -> None:
    """The name must publish our id key, or no client could ever reach us."""
    pub = keyfile.public_keys(path)
    if base64.b64encode(info.id_key).decode() != pub["id_key"]:
        raise VerifyError("published-keys", f"{info.name} publishes another id_key than {path} holds")
    if base64.b64encode(info.eph_key).decode() not in {e["eph_key"] for e in pub["eph_keys"]}:
        print(f"dotbit-tunnel: note: {info.name} publishes an eph_key {path} does not hold; clients "
              f"cannot open until a held key is published", file=sys.stderr, flush=True)


async def _reload_keys(server: Server, path: str, overlap: int) -> None:
    """New ephemeral keys (ekey-new) are taken up within a second, without a restart."""
    seen = os.stat(path).st_mtime_ns
    while True:
        await asyncio.sleep(1.0)
        try:
            mtime = os.stat(path).st_mtime_ns
            if mtime != seen:
                _, eph = keyfile.read(path)
                server.set_eph_keys([(s, exp + overlap) for s, exp in eph])
                seen = mtime
                print(f"dotbit-tunnel: note: key file re-read, {len(server.keys)} ephemeral keys accepted",
                      file=sys.stderr, flush=True)
        except (OSError, keyfile.KeyFileError) as e:
            print(f"dotbit-tunnel: note: keeping the keys held, {e}", file=sys.stderr, flush=True)


async def _rotate(server: Server, args) -> None:
    """--rotate-every: a new ephemeral key goes into the key file and is accepted at once,
    THEN it is published (a client must never get a key we cannot open); the signer is a
    separate program holding the owner key, so this process never does."""
    def note(line: str) -> None:
        print(f"dotbit-tunnel: note: {line}", file=sys.stderr, flush=True)
    while True:
        await asyncio.sleep(args.rotate_every)
        try:
            new = keyfile.new_eph(args.keys, int(time.time()), args.ttl, args.overlap)
            _, eph = keyfile.read(args.keys)
        except keyfile.KeyFileError as e:
            note(f"no rotation: {e}")
            continue
        server.set_eph_keys([(s, exp + args.overlap) for s, exp in eph])
        try:
            proc = await asyncio.create_subprocess_exec(*shlex.split(args.publish_cmd), new["eph_key"],
                                                        str(new["expires"]), stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.PIPE)
            _, err = await proc.communicate()
            failed = proc.returncode != 0 and f"exit {proc.returncode}: {err.decode(errors='replace').strip()[-200:]}"
        except OSError as e:
            failed = str(e)
        note(f"eph_key {new['eph_key']} not published ({failed}); the served key stays valid until it "
             f"expires" if failed else f"eph_key {new['eph_key']} made and published")


# --- connect ---------------------------------------------------------------------------------

async def _connect(args) -> int:
    if not args.target:
        raise UsageError("connect needs NAME.bit")
    host, port = hostport(args.listen, "--listen")
    stop = _stop_event()
    async with _light(args) as light:
        link = _Link(args, light, stop)
        info = await link.resolve()
        tcp = await asyncio.start_server(link.accepted, host, port)
        bound = tcp.sockets[0].getsockname()[1]
        print(f"dotbit-tunnel: {info.name} -> udp {info.host}:{info.port} (keys checked at height "
              f"{info.height}); listening on tcp {host}:{bound}", flush=True)
        await stop.wait()
        tcp.close()
        link.close()
    if link.failed:
        raise link.failed[0]
    return 0


class _Link:
    """connect's one tunnel, replaced by a fresh one (keys resolved again, verified) when the
    server closed it or has not answered for --dead-after seconds while we had data out (a
    restarted server, or rotated keys). A handshake that fails ends the program (exit 2)."""

    def __init__(self, args, light, stop: asyncio.Event):
        self.args, self.light, self.stop = args, light, stop
        self.tunnel: Tunnel | None = None
        self.failed: list[TunnelError] = []

    async def resolve(self):
        self.info = await resolve_server(self.light, self.args.target)
        return self.info

    async def current(self) -> Tunnel:
        t = self.tunnel
        s = t.session if t is not None else None
        if s is not None and not s.closed and not (
                s.confirmed and s.in_flight() and time.monotonic() - s.last_heard > self.args.dead_after):
            return t
        if t is not None:
            t.close()
            await self.resolve()
        self.tunnel = Tunnel(self.info, rekey_bytes=self.args.rekey_bytes, rekey_interval=self.args.rekey_interval,
                             open_timeout=self.args.open_timeout)
        return await self.tunnel.__aenter__()

    async def accepted(self, reader, writer) -> None:
        try:
            first = await asyncio.wait_for(reader.read(65536), FIRST_WAIT)
        except asyncio.TimeoutError:
            first = b""
        try:
            tunnel = await self.current()
        except VerifyError as e:
            self.failed.append(TunnelError("resolve", str(e)))
            self.stop.set()
            writer.close()
            return
        work = asyncio.ensure_future(pipe(tunnel.connection(), reader, writer, first))
        try:
            await tunnel.wait_open()
        except TunnelError as e:
            self.failed.append(e)
            self.stop.set()
            work.cancel()
            writer.close()

    def close(self) -> None:
        if self.tunnel is not None:
            self.tunnel.close()


if __name__ == "__main__":
    sys.exit(main())
