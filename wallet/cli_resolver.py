"""`dotbit-wallet` commands that talk to a resolver's signed HTTP API rather than (only) the
node: certificates from a resolver's CA (`cert request`, `cert revoke`), MinimaLT ephemeral
keys (`ekey rotate`, `ekey show`), and `tlsa`, which needs neither. They register themselves in
cliutil's command table when cli.py imports this module."""
from __future__ import annotations

import os

from wallet import certs as C
from wallet import ekeys as E
from wallet.errors import WalletError
from wallet.cliutil import NAME, arg, command, note, open_wallet, out, read_input, utc


@command("tlsa", "print a certificate's TLSA: the d/ value tls item and the zone-file line (no node)",
          arg("--cert", required=True, help="PEM certificate file"),
          arg("--usage", default="3", help="3 DANE-EE (default), 2 DANE-TA, 1 PKIX-EE, 0 PKIX-TA"),
          arg("--selector", default="1", help="1 public key (default), 0 full certificate"),
          arg("--mtype", default="1", help="1 SHA-256 (default), 2 SHA-512, 0 exact"),
          arg("--port", default="443"), arg("--proto", default="tcp"),
          arg("--name", help="the host, e.g. www.example.bit (default: the apex, owner left relative)"))
def cmd_tlsa(args, params):
    from wallet import tlsa as T
    usage = T.parse_number(args.usage, "--usage", 0, 3)
    selector = T.parse_number(args.selector, "--selector", 0, 1)
    mtype = T.parse_number(args.mtype, "--mtype", 0, 2)
    port = T.parse_number(args.port, "--port", 1, 65535)
    host = T.parse_host(args.name)
    pem = read_input(args.cert, "certificate")
    res, advice = T.tlsa(pem, usage, selector, mtype, port, args.proto.lower(), host)
    for a in advice:
        note(f"note: {a}")
    out(args, res, T.render(res))


RESOLVER = arg("--resolver", help="resolver HTTP API with the CA (env DOTBIT_RESOLVER_URL; "
                                  "default http://127.0.0.1:<network's resolver port>)")


def resolver_url(args, params) -> str:
    # The node's own resolver port when its config sets one ([resolver] http_port, or env
    # DOTBIT_RESOLVER_HTTP_PORT), so a wallet beside a node finds it without flags.
    port = args.cfg.get("resolver", "http_port", None, params.http_port)
    return args.resolver or os.environ.get("DOTBIT_RESOLVER_URL") or f"http://127.0.0.1:{port}"


@command("cert request", "get a certificate for a name you own from a resolver's CA", NAME,
          arg("--csr", required=True, help="PEM certificate request (its key becomes the certificate's)"),
          arg("--out", required=True, help="where to write the certificate (PEM)"), RESOLVER)
def cmd_cert_request(args, params):
    csr = read_input(args.csr, "CSR")
    w = open_wallet(args, params, True)
    w.save()
    res = C.request(w, args.name, csr, resolver_url(args, params))
    try:
        with open(args.out, "w") as f:
            f.write(res["cert"])
    except OSError as e:
        raise WalletError(f"cannot write {args.out}: {e.strerror}") from None
    out(args, res, f"{args.name}: certificate {res['serial']} for {res['name']} until {utc(res['not_after'])} "
                   f"written to {args.out}; TLSA {res['tlsa']}")


@command("cert revoke", "revoke a certificate a resolver's CA issued for your name", NAME,
          arg("--serial", required=True, help="the certificate's serial (hex)"), RESOLVER)
def cmd_cert_revoke(args, params):
    w = open_wallet(args, params, True)
    w.save()
    res = C.revoke(w, args.name, args.serial, resolver_url(args, params))
    out(args, res, f"{args.name}: certificate {res['serial']} revoked")


EKEY_RESOLVER = arg("--resolver", help="resolver HTTP API to post to and read from (env DOTBIT_RESOLVER_URL; "
                                       "default http://127.0.0.1:<[resolver] http_port or the network's>)")


@command("ekey rotate", "sign a fresh MinimaLT ephemeral key for a name you own and post it to a resolver",
          NAME, EKEY_RESOLVER,
          arg("--eph-key", help="base64 Curve25519 public key made elsewhere (default: generate one and "
                                "keep its secret, encrypted, in the wallet file)"),
          arg("--ttl", "--expires", dest="ttl", type=int, default=E.DEFAULT_TTL,
              help=f"seconds the key is served (default {E.DEFAULT_TTL}, at most {E.MAX_LIFETIME})"),
          arg("--seq", type=int, help="sequence number (default: above both the time now and the last one "
                                      "the resolver or this wallet knows)"))
def cmd_ekey_rotate(args, params):
    w = open_wallet(args, params, True)
    w.save()
    res = E.rotate(w, args.name, resolver_url(args, params), args.ttl, args.eph_key, args.seq)
    if not res["served_item"]:
        note(f"warning: {args.name} has no minimalT item, so the key is not served until its value has one "
             "(`dotbit-wallet minimalt`)")
    out(args, res, f"{args.name}: eph_key {res['eph_key']} seq {res['seq']} "
                   f"expires {utc(res['expires'])}")


@command("ekey show", "the MinimaLT keys a resolver serves for a name, and whether this wallet holds the "
                      "ephemeral key's secret", NAME, EKEY_RESOLVER,
          arg("--show-secret", action="store_true", help="also print the ephemeral secret key (base64)"))
def cmd_ekey_show(args, params):
    w = open_wallet(args, params, True)
    w.save()
    res = E.show(w, args.name, resolver_url(args, params), args.show_secret)
    if res.get("warning"):
        note(f"warning: {res['warning']}")
    if res["source"] == "update":
        fresh = f"update seq {res['seq']}, expires {utc(res['expires'])}"
    else:
        fresh = "from the chain: no fresher update served"
    lines = [f"{args.name} at {res['owner']} port {res['port']}" + (f" ip {res['ip']}" if res["ip"] else ""),
             f"id_key:  {res['id_key']}", f"eph_key: {res['eph_key']} ({fresh})",
             "secret:  " + ("held by this wallet" if res["secret_held"] else "not in this wallet")]
    if "eph_secret" in res:
        lines.append(f"eph_secret: {res['eph_secret']}")
    out(args, res, "\n".join(lines))
