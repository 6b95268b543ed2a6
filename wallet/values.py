"""Name values: checked before they cost a fee, and the d/ items the wallet writes for users
(`tls` from a real certificate, `minimalT`).

A d/ value is run through the resolver's own interpreter (core.names.dvalue): items it
would skip as invalid (an "ip" of 999.1.1.1) are errors the wallet refuses, since a fee
spent on them buys nothing; what it skips harmlessly (an import of a missing name) and
keys it does not interpret at all (a typo such as "ip4") are warnings.

Names follow Namecoin's policy for the d/ namespace: "d/" and one lower-case domain label.
Anything else (`example.bit`, `d/Bad Name`, `d/`) is refused with the form that would work;
`--force` registers it anyway.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Callable

from core.names.dnsname import is_domain_label
from core.names.dvalue import lookup_records
from core.names.rules import WALLET_MAX_VALUE

from wallet.errors import WalletError

# Keys core/names/dvalue_tree.py interprets, and those it deliberately ignores (metadata).
D_ITEMS = {"ip", "ip6", "ns", "dns", "alias", "translate", "ds", "tls", "txt", "srv", "service",
           "mx", "sshfp", "minimalT", "map", "import", "delegate"}
D_METADATA = {"info", "email"}


def parse_value(text: str) -> dict:
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise WalletError(f"value is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise WalletError("value must be a JSON object, like {\"ip\": \"1.2.3.4\"}")
    return obj


def value_bytes(text: str, encoding: str) -> bytes:
    """A value argument as bytes: UTF-8 text, or hex for bytes that are not text."""
    if encoding == "hex":
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise WalletError("value is not valid hex") from None
    return text.encode("utf-8", "surrogateescape")


def check_length(data: bytes) -> bytes:
    if len(data) > WALLET_MAX_VALUE:
        raise WalletError(f"value too long: {len(data)} bytes, at most {WALLET_MAX_VALUE}")
    return data


def encode_value(obj: dict) -> bytes:
    """Compact JSON: every byte counts against the 520-byte limit."""
    return check_length(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def name_problem(name: str) -> str | None:
    """Why no resolver would ever serve `name` as a .bit domain, with the form that would
    work; None if it is fine. Names in other namespaces ("id/alice") are not DNS names."""
    namespace, sep, label = name.partition("/")
    if sep and namespace != "d":
        return None
    if not sep:
        return f"{name} has no namespace, so no resolver serves it: {_domain_hint(name)}"
    if not label:
        return "d/ needs a domain label after it, like d/example"
    if is_domain_label(label):
        return None
    rule = "one lower-case label: letters, digits, inner hyphens, at most 63"
    return f"{name} is not a .bit name resolvers serve ({rule}): {_domain_hint(label)}"


def _domain_hint(text: str) -> str:
    labels = [x for x in text.lower().strip().removesuffix(".bit").split(".") if x]
    guess = [re.sub(r"[\s_]+", "-", x).strip("-") for x in labels]
    if not guess or not is_domain_label(guess[-1]):
        return "use d/ and a label such as d/example for example.bit"
    if len(guess) > 1:      # www.example.bit: the subdomain lives in d/example's map
        return f"register d/{guess[-1]} and put {'.'.join(guess[:-1])} in its value's map"
    return f"did you mean d/{guess[-1]}?"


def check_value(name: str, obj: dict, lookup_other: Callable[[str], str | None]
                ) -> tuple[bytes, list[str], list[str]]:
    """The encoded value, the errors (items a resolver would skip as invalid) and the
    warnings (what it ignores harmlessly, and keys it does not know)."""
    data = encode_value(obj)
    if not name.startswith("d/"):
        return data, [], []
    try:
        result = lookup_records(name, lambda n: data.decode() if n == name else lookup_other(n))
    except ValueError:
        return data, [], [f"{name} does not map to a .bit domain; resolvers will not serve it"]
    errors = [n.removeprefix("error: ") for n in result.notes if n.startswith("error: ")]
    warnings = [n.removeprefix("warning: ") for n in result.notes if not n.startswith("error: ")]
    warnings += [f"unknown item {k!r} is ignored by resolvers" for k in _unknown_keys(obj)]
    return data, errors, warnings


def _unknown_keys(obj: dict, depth: int = 0) -> list[str]:
    out = [k for k in obj if k not in D_ITEMS and k not in D_METADATA]
    m = obj.get("map")
    if isinstance(m, dict) and depth < 16:
        for sub in m.values():
            if isinstance(sub, dict):
                out += _unknown_keys(sub, depth + 1)
    return out


# --- tls (TLSA-style) --------------------------------------------------------------------------

def tlsa_association(cert_pem: bytes, selector: int, mtype: int) -> bytes:
    """The certificate association data of RFC 6698 §2.1: the full certificate (selector 0)
    or its SubjectPublicKeyInfo (1), as is (matching type 0) or hashed (1 SHA-256, 2 SHA-512)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        raise WalletError(f"not a PEM X.509 certificate: {e}") from None
    if selector == 0:
        data = cert.public_bytes(serialization.Encoding.DER)
    elif selector == 1:
        data = cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        raise WalletError("--selector must be 0 (full certificate) or 1 (public key)")
    if mtype == 0:
        return data
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    raise WalletError("--mtype must be 0 (exact), 1 (SHA-256) or 2 (SHA-512)")


def add_tls(obj: dict, row: list, port: int, proto: str = "tcp") -> dict:
    """The value with a current-form tls row [usage, selector, mtype, base64] placed under
    map._PROTO.map._PORT (where the resolver looks for TLSA of _PORT._PROTO.domain)."""
    obj = json.loads(json.dumps(obj))
    proto_node = obj.setdefault("map", {}).setdefault(f"_{proto}", {})
    port_node = proto_node.setdefault("map", {}).setdefault(f"_{port}", {})
    rows = port_node.setdefault("tls", [])
    if row not in rows:
        rows.append(row)
    return obj


def tls_row(cert_pem: bytes, usage: int, selector: int, mtype: int) -> list:
    if usage not in (0, 1, 2, 3):
        raise WalletError("--usage must be 0..3 (3 = DANE-EE, the usual choice for .bit)")
    data = tlsa_association(cert_pem, selector, mtype)
    return [usage, selector, mtype, base64.b64encode(data).decode()]


# --- minimalT ------------------------------------------------------------------------------------

def minimalt_item(port: int, id_key_b64: str, eph_key_b64: str, ip: str | None = None) -> dict:
    for what, text in (("--id-key", id_key_b64), ("--eph-key", eph_key_b64)):
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise WalletError(f"{what} is not base64") from None
        if len(raw) != 32:
            raise WalletError(f"{what} must be a 32-byte Curve25519 public key (got {len(raw)} bytes)")
    if not 1 <= port <= 65535:
        raise WalletError("--port must be 1..65535")
    item = {"port": port, "id_key": id_key_b64, "eph_key": eph_key_b64}
    if ip:
        item["ip"] = ip
    return item
