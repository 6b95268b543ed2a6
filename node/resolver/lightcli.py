"""`dotbit-resolve`: resolve a .bit name through a resolver's signed HTTP API and check the
answer as a light client (lightclient.py): pinned key, proof-of-work headers, name proofs,
and the d/ rules re-run on the proven values."""
from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from node.params import NETWORKS, get_params

from .envelope import EnvelopeError, open_envelope
from .lightclient import LightClientError, check_domain, fingerprint, verify_headers

CHUNK = 2000


def fetch(base: str, path: str) -> bytes:
    req = urllib.request.Request(base.rstrip("/") + path, headers={"Accept": "application/msgpack"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        return e.read()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="dotbit-resolve", description=__doc__.splitlines()[0])
    ap.add_argument("name", help="e.g. www.example.bit")
    ap.add_argument("type", nargs="?", default="A")
    ap.add_argument("--network", default="main", choices=sorted(NETWORKS))
    ap.add_argument("--server", help="resolver HTTP base URL (default: 127.0.0.1 on the network's port)")
    ap.add_argument("--fingerprint", help="the resolver key's SHA-256 fingerprint (hex) to pin")
    args = ap.parse_args(argv)
    params = get_params(args.network)
    base = args.server or f"http://127.0.0.1:{params.http_port}"
    try:
        # The key is only trusted if pinned; unpinned, the user is told what they would pin.
        raw = fetch(base, "/v1/resolver")
        import msgpack
        body = msgpack.unpackb(msgpack.unpackb(raw)[1], raw=False)
        pubkey = body["answer"]["public_key"]
        if args.fingerprint and fingerprint(pubkey) != args.fingerprint.lower():
            print("dotbit-resolve: the resolver's key does not match the pinned fingerprint", file=sys.stderr)
            return 2
        open_envelope(raw, pubkey)
        headers_raw = []
        while True:
            env = open_envelope(fetch(base, f"/v1/headers?from={len(headers_raw)}&count={CHUNK}"), pubkey)
            got = env["answer"]["headers"] if env["kind"] == "headers" else []
            headers_raw += got
            if len(got) < CHUNK:
                break
        headers = verify_headers(headers_raw, params)
        fqdn = args.name.lower().rstrip(".") + "."
        body = check_domain(fetch(base, f"/v1/domain/{fqdn}?type={args.type.upper()}"), pubkey, headers, params)
    except (LightClientError, EnvelopeError, OSError, ValueError, KeyError) as e:
        print(f"dotbit-resolve: {e}", file=sys.stderr)
        return 1
    if body["kind"] == "error":
        print(f"{fqdn} does not exist (proven absent)")
    for owner, rtype, rdata in body["answer"]["records"] if body["answer"] else []:
        print(f"{owner}\tIN\t{rtype}\t{rdata}")
    for m in (body["answer"] or {}).get("minimalt", []):
        print(f"; MinimaLT at {m['owner']}: port {m['port']}, eph_key {m['eph_key'].hex()}"
              + (" (off-chain update, owner-signed)" if m["eph_update"] else ""))
    pinned = "pinned" if args.fingerprint else "NOT pinned: pass --fingerprint to trust it"
    print(f"; verified: resolver key {fingerprint(pubkey)[:16]}... ({pinned}); tip height {body['tip']['height']} "
          f"in {len(headers)} PoW-checked headers; {len(body['proofs'])} name proof(s) re-interpreted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
