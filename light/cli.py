"""`dotbit-resolve`: the light client's command line.

  dotbit-resolve [options] NAME.bit [TYPE]     one verified answer (TYPE: A default, AAAA, TXT,
                                               TLSA, SRV, MX, NS, DS, CNAME, minimalt, tls, all)
  dotbit-resolve [options] HOST.OTHER [TYPE]   a name outside bit., from the resolver's DANE zones
                                               (TYPE: A, AAAA, TLSA, CNAME, all; TLSA on a host
                                               name asks for _443._tcp.HOST), DNSSEC-validated
                                               here from --dane-anchors (refused without)
  dotbit-resolve [options] sync                sync headers only
  dotbit-resolve [options] serve --port P      local DNS stub for .bit on 127.0.0.1

Options may also come from a config file (`--config`, default ~/.config/dotbit/resolve.conf):
`key = value` lines using the long option names (resolver, pin, network, light-dir, trust,
max-behind, headers-from, checkpoint, dane-anchors, peer, max-tip-age), `#` comments.
Command-line options win.

Header sources: every --resolver (repeatable, the first answers, each with its own --pin in
the same order), every --headers-from URL and every --peer HOST:PORT (a full node, over p2p);
the most-work valid chain of them all is ours, and an answer must sit on it.

Exit status: 0 records found, 1 the name or type is proven absent (or expired), 2 a check
failed or the input is bad -- always with ONE line on stderr naming what failed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time

from core.names.dnsname import is_domain_label
from core.params import get_params
from light.cliboundary import run_command
from light.headers import StoreError
from light.output import as_json, as_text, found, print_notes
from light.verdict import VerifyError
from light.verify import QTYPES, TIP_AGE_BLOCKS

SPECIAL = {"MINIMALT": "TXT", "TLS": "TLSA", "ALL": "ANY"}
CONFIG_KEYS = ("resolver", "pin", "network", "light-dir", "trust", "max-behind", "headers-from", "checkpoint",
               "dane-anchors", "peer", "max-tip-age")
LIST_KEYS = ("headers-from", "checkpoint", "peer", "resolver", "pin")
DANE_TYPES = ("A", "AAAA", "TLSA", "CNAME", "ANY")


class UsageError(Exception):
    pass


def default_config() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "dotbit", "resolve.conf")


def default_light_dir(network: str) -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "dotbit", network, "light")


def read_config(path: str, explicit: bool) -> dict:
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        if explicit:
            raise UsageError(f"config file {path} not found") from None
        return {}
    except OSError as e:
        raise UsageError(f"config file {path}: {e.strerror}") from None
    conf: dict = {}
    for n, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = (p.strip() for p in line.partition("="))
        if not sep or key not in CONFIG_KEYS:
            raise UsageError(f"{path}:{n}: expected `key = value` with key one of {', '.join(CONFIG_KEYS)}")
        if key in LIST_KEYS:
            conf.setdefault(key, []).append(value)
        else:
            conf[key] = value
    return conf


class _Parser(argparse.ArgumentParser):
    def error(self, message):          # one line and exit 2, like every other failure
        print(f"dotbit-resolve: usage: {message}", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dotbit-resolve", description="Verified .bit lookups for light clients.")
    p.add_argument("target", help="NAME.bit, or `sync`, or `serve`")
    p.add_argument("qtype", nargs="?", default="A", help="A (default), AAAA, TXT, TLSA, SRV, MX, NS, DS, "
                                                         "CNAME, minimalt, tls, all")
    p.add_argument("--config", help="config file (default ~/.config/dotbit/resolve.conf)")
    p.add_argument("--network", help="main (default), testnet or regtest")
    p.add_argument("--resolver", action="append", help="resolver HTTP API URL (default http://127.0.0.1:<network "
                                                       "port>; repeatable: the first answers, all give headers)")
    p.add_argument("--pin", action="append", help="SHA-256 fingerprint (hex) of the resolver's key (one per "
                                                  "--resolver, in order)")
    p.add_argument("--peer", action="append", metavar="HOST:PORT",
                   help="a full node to sync headers from over p2p (repeatable)")
    p.add_argument("--max-tip-age", help="refuse answers while our best header is older than this many seconds "
                                         "(default 18 block intervals: 3 hours on main)")
    p.add_argument("--accept-stale", action="store_true", help="answer this once even if our best header is "
                                                               "older than --max-tip-age")
    p.add_argument("--light-dir", help="header store (default ~/.local/share/dotbit/NETWORK/light)")
    p.add_argument("--trust", choices=("proofs", "pinned"),
                   help="proofs (default): check name proofs against our headers; pinned: trust the "
                        "resolver's signature alone")
    p.add_argument("--max-behind", type=int, help="refuse answers more than this many blocks behind our tip "
                                                  "(default 6)")
    p.add_argument("--headers-from", action="append", help="another header source URL (repeatable)")
    p.add_argument("--checkpoint", action="append", help="HEIGHT:HASH our chain must contain (repeatable)")
    p.add_argument("--json", action="store_true", help="print the verified answer as JSON")
    p.add_argument("--progress", action="store_true", help="show header sync progress (default on a tty)")
    p.add_argument("--port", type=int, help="serve: DNS port on 127.0.0.1 (default 5353)")
    p.add_argument("--ca-cert", action="append", help="PEM certificate of a .bit CA whose TLSA records are "
                                                      "checked against it (repeatable; without it CA records "
                                                      "are refused)")
    p.add_argument("--dane-anchors", metavar="FILE", help="DS/DNSKEY trust anchors (zone-file lines, as for "
                                                         "the node's --dane-anchors) that names outside bit. "
                                                         "are DNSSEC-validated from")
    return p


def settings(argv) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    conf = read_config(args.config or default_config(), args.config is not None)
    for key in CONFIG_KEYS:
        attr = key.replace("-", "_")
        if getattr(args, attr) is None and key in conf:
            setattr(args, attr, conf[key])
    try:
        args.params = get_params(args.network or "main")
    except ValueError as e:
        raise UsageError(str(e)) from None
    args.light_dir = args.light_dir or default_light_dir(args.params.name)
    args.trust = args.trust or "proofs"
    if args.trust not in ("proofs", "pinned"):
        raise UsageError("trust must be proofs or pinned")
    try:
        args.max_behind = 6 if args.max_behind is None else int(args.max_behind)
    except ValueError:
        raise UsageError("max-behind must be an integer") from None
    if args.max_behind < 0:
        raise UsageError("max-behind must be >= 0")
    args.checkpoints = {}
    for cp in args.checkpoint or ():
        height, _, digest = cp.partition(":")
        try:
            args.checkpoints[int(height)] = bytes.fromhex(digest)
            assert len(args.checkpoints[int(height)]) == 32 and int(height) >= 0
        except (ValueError, AssertionError):
            raise UsageError(f"checkpoint {cp!r}: expected HEIGHT:64-hex-digit-hash") from None
    _sources(args)
    _tip_age(args)
    return args


def _sources(args) -> None:
    """args.resolver/args.pin: the answering resolver; args.resolvers: the further (url, pin);
    args.peers: (host, port) of the --peer nodes."""
    urls = args.resolver or [f"http://127.0.0.1:{args.params.http_port}"]
    pins = args.pin or []
    for pin in pins:
        if len(pin) != 64 or any(c not in "0123456789abcdefABCDEF" for c in pin):
            raise UsageError("pin must be 64 hex digits (SHA-256 of the resolver key)")
    if len(pins) > len(urls) or (len(urls) > 1 and len(pins) != len(urls)):
        raise UsageError(f"{len(urls)} resolvers and {len(pins)} pins: give one --pin per --resolver, in order")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise UsageError("resolver must be an http:// or https:// URL")
    args.resolver, args.pin = urls[0], (pins[0] if pins else None)
    args.resolvers = list(zip(urls[1:], pins[1:]))
    args.peers = []
    for peer in args.peer or ():
        host, _, port = peer.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"peer {peer!r:.80}: expected HOST:PORT")
        args.peers.append((host.strip("[]"), int(port)))


def _tip_age(args) -> None:
    try:
        age = TIP_AGE_BLOCKS * args.params.spacing if args.max_tip_age is None else float(args.max_tip_age)
    except ValueError:
        raise UsageError("max-tip-age must be a number of seconds") from None
    if not age > 0:
        raise UsageError("max-tip-age must be > 0")
    args.max_tip_age = None if args.accept_stale else age


def question(target: str, qtype: str) -> tuple[str, str, str]:
    """(fqdn, wire type, shown type) for a NAME.bit (or a DANE name) and TYPE from the command line."""
    fqdn = target.lower().rstrip(".") + "."
    labels = fqdn[:-1].split(".")
    shown = qtype.upper()
    if labels[-1] != "bit":
        return _dane_question(target, fqdn, labels, shown)
    if len(fqdn) > 254 or len(labels) < 2 or labels[-1] != "bit" or not is_domain_label(labels[-2]) \
            or any(not lab or len(lab) > 63 for lab in labels):
        raise UsageError(f"{target!r:.80} is not a name under .bit")
    wire = SPECIAL.get(shown, shown)
    if wire not in QTYPES:
        raise UsageError(f"unknown type {qtype!r:.20} (A, AAAA, TXT, TLSA, SRV, MX, NS, DS, CNAME, "
                         f"minimalt, tls, all)")
    return fqdn, wire, shown


def _dane_question(target: str, fqdn: str, labels: list, shown: str) -> tuple[str, str, str]:
    """A name outside bit.: only what the DANE source serves. A TLSA question on a host name
    means its HTTPS port (RFC 6698 §3: the TLSA owner is _port._proto.host), as
    `dotbit-wallet tlsa` defaults to."""
    wire = {"ALL": "ANY", "TLS": "TLSA"}.get(shown, shown)
    if len(labels) < 2 or len(fqdn) > 254 or not fqdn.isascii() \
            or any(not lab or len(lab) > 63 or not all(c.isalnum() or c in "-_" for c in lab) for lab in labels):
        raise UsageError(f"{target!r:.80} is not a domain name")
    if wire not in DANE_TYPES:
        raise UsageError(f"type {shown!r:.20} for a name outside bit.: only A, AAAA, TLSA, CNAME or all")
    if wire == "TLSA" and not labels[0].startswith("_"):
        fqdn = "_443._tcp." + fqdn
    return fqdn, wire, "TLSA" if shown == "TLS" else shown


def main(argv=None) -> int:
    return run_command("dotbit-resolve", lambda: _main(argv), [
        (UsageError, "usage: "), (VerifyError, "verification failed: "), (StoreError, "header store: ")])


def _main(argv=None) -> int:
    args = settings(sys.argv[1:] if argv is None else argv)
    if args.target not in ("sync", "serve"):
        q = question(args.target, args.qtype)
    if args.pin is None:
        raise UsageError(f"no --pin given: pin the fingerprint of the resolver at {args.resolver} "
                         f"(its operator prints it; `dotbit-node dnssec-anchor` on the node)")
    if args.target == "serve":
        return asyncio.run(_serve(args))
    if args.target == "sync":
        return asyncio.run(_sync(args))
    return asyncio.run(_resolve(args, *q))


def _client(args):
    from light.client import LightClient
    show = args.progress or sys.stderr.isatty()
    return LightClient(args.params, args.light_dir, args.resolver, args.pin,
                       header_urls=tuple(args.headers_from or ()), trust=args.trust,
                       max_behind=args.max_behind, checkpoints=args.checkpoints,
                       progress=_Progress() if show else None, ca_certs=_ca_certs(args.ca_cert or ()),
                       dane_anchors=_dane_anchors(args.dane_anchors), peers=args.peers,
                       resolvers=args.resolvers, max_tip_age=args.max_tip_age)


def _dane_anchors(path) -> dict:
    if not path:
        return {}
    from core.dane_evidence import DANEConfigError, parse_anchors
    try:
        with open(path, encoding="utf-8") as f:
            return parse_anchors(f.read(), path)
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read trust anchors {path}: {getattr(e, 'strerror', None) or e}") from None
    except DANEConfigError as e:
        raise UsageError(str(e)) from None


def _ca_certs(paths) -> list:
    if not paths:
        return []
    from cryptography import x509
    out = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                out.append(x509.load_pem_x509_certificate(f.read()))
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot read CA certificate {path}: {e}") from None
    return out


class _Progress:
    """Header-sync progress on stderr, at most once a second, ended with a newline."""

    def __init__(self):
        self.last = 0.0
        self.shown = False

    def __call__(self, height: int) -> None:
        now = time.monotonic()
        if now - self.last >= 1.0:
            self.last = now
            self.shown = True
            print(f"\rsyncing headers: height {height}", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.shown:
            print(file=sys.stderr, flush=True)
            self.shown = False


async def _sync(args) -> int:
    async with _client(args) as client:
        try:
            await client.resolver.identify(args.pin, args.params.name)
            height = await client.sync()
        finally:
            if client.progress:
                client.progress.done()
        print_notes(client)
        print(f"headers synced to height {height}, tip {client.store.hash(height).hex()}")
    return 0


async def _resolve(args, fqdn: str, wire: str, shown: str) -> int:
    async with _client(args) as client:
        try:
            v = await client.resolve(fqdn, wire)
        finally:
            if client.progress:
                client.progress.done()
        tip = client.store.height if client.store else None
        print_notes(client)
    if args.json:
        print(json.dumps(as_json(v, shown, tip), indent=1, sort_keys=True))
    else:
        print(as_text(v, shown, tip))
    return 0 if found(v, shown) and v.status == "NOERROR" else 1


async def _serve(args) -> int:
    from light.stub import Stub
    async with _client(args) as client:
        await client.resolver.identify(args.pin, args.params.name)
        if args.trust == "proofs":
            await client.sync()
            if client.progress:
                client.progress.done()
        stub = Stub(client, "127.0.0.1", 5353 if args.port is None else args.port)
        await stub.start()
        print(f"dotbit-resolve: serving verified .bit on 127.0.0.1:{stub.port} (UDP+TCP), trust {args.trust}",
              flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await stub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
