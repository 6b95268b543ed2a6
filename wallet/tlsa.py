"""`dotbit-wallet tlsa`: a certificate's TLSA association (RFC 6698) written both ways it is
published — the `tls` item of a d/ value and a zone-file TLSA line — with RFC 7671's advice
as defaults (3 1 1: DANE-EE, the public key, SHA-256, so a renewed certificate with the same
key keeps matching). Needs no node and no wallet file.
"""
from __future__ import annotations

import base64
import json
import re

from wallet import values as V
from wallet.errors import WalletError

_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_PROTO = re.compile(r"[a-z][a-z0-9-]{0,14}")


def parse_number(text: str, what: str, low: int, high: int) -> int:
    """Numbers arrive as text so a bad one is one clear line, not argparse's usage dump."""
    try:
        n = int(text, 10)
    except (TypeError, ValueError):
        raise WalletError(f"{what} must be a number from {low} to {high}, not {text!r}") from None
    if not low <= n <= high:
        raise WalletError(f"{what} must be from {low} to {high}, not {n}")
    return n


def parse_host(text: str | None) -> str | None:
    if text is None:
        return None
    name = text.strip().lower().rstrip(".")
    labels = name.split(".")
    if not name or len(name) > 240 or not all(_LABEL.fullmatch(lb) for lb in labels):
        raise WalletError(f"--name must be a host name like www.example.bit, not {text!r}")
    return name


def d_name_of(host: str | None) -> tuple[str | None, list[str]]:
    """ "www.example.bit" -> ("d/example", ["www"]): the name whose value holds the item, and
    the map path below its apex; (None, []) for names outside .bit."""
    if host is None:
        return None, []
    labels = host.split(".")
    if len(labels) < 2 or labels[-1] != "bit":
        return None, []
    return "d/" + labels[-2], labels[:-2]


def tlsa(pem: bytes, usage: int, selector: int, mtype: int, port: int, proto: str,
         host: str | None) -> tuple[dict, list[str]]:
    """Everything `tlsa` prints, and advice (warnings) about the choice of parameters."""
    if not _PROTO.fullmatch(proto):
        raise WalletError(f"--proto must be a protocol name like tcp or udp, not {proto!r}")
    row = V.tls_row(pem, usage, selector, mtype)
    data = base64.b64decode(row[3])
    d_name, path = d_name_of(host)
    fragment = V.add_tls({}, row, port, proto)
    for label in path:                   # innermost first: www.shop -> map.shop.map.www
        fragment = {"map": {label: fragment}}
    owner = f"_{port}._{proto}" + (f".{host}." if host else "")
    advice = []
    if usage in (0, 1):
        advice.append("usages 0 and 1 (PKIX) also need a public CA chain; RFC 7671 advises 3 (DANE-EE) "
                      "or 2 (DANE-TA)")
    if usage == 3 and selector == 0:
        advice.append("3 0 x pins the whole certificate: every renewal needs a new record; 3 1 1 pins the key")
    if mtype == 0:
        advice.append("matching type 0 publishes the full data; a digest (1) is what RFC 7671 recommends")
    size = len(json.dumps(fragment, separators=(",", ":")))
    if size > 400:
        advice.append(f"the tls item alone is {size} bytes of the 520 a value may hold")
    return {"usage": usage, "selector": selector, "mtype": mtype, "association": data.hex().upper(),
            "tls": row, "d_name": d_name, "fragment": fragment, "owner": owner,
            "zone_line": f"{owner} IN TLSA {usage} {selector} {mtype} {data.hex().upper()}"}, advice


def render(res: dict) -> str:
    where = (f"; the d/ value of {res['d_name']}: merge this into it" if res["d_name"]
             else "; a d/ value: merge this into it (at the apex of the .bit name it is for)")
    return "\n".join([where, json.dumps(res["fragment"], separators=(",", ":")),
                      "; zone file:", res["zone_line"]])
