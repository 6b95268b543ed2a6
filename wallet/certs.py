"""Certificates from a resolver's CA for names this wallet owns (node/resolver/ca/).

The proof of control is a signature by the name's owner key over the network, the name, the
CSR and the node's current best block (core/ca_proof.py: the same digest the CA checks), so
only the wallet holding the name can get a certificate for it, for that name only, and only
for a few blocks' time.
The CA's reply is an envelope signed by the resolver; what matters in it is the certificate,
which anyone can check against the CA certificate, so the wallet reads its body.
"""
from __future__ import annotations

import json

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.ca_proof import sign_issue, sign_revoke

from wallet import names as N
from wallet.errors import WalletError
from wallet.resolverapi import resolver_call


def _owner_key(w, name: str):
    rec = N.show(w, name)
    if rec is None:
        raise WalletError(f"unknown name: {name} was never registered")
    if rec["expired"]:
        raise WalletError(f"name expired: {name}")
    key = w.owns(w.parse_address(rec["address"]))
    if key is None:
        raise WalletError(f"not your name: {name} belongs to {rec['address']}")
    return key


def _best_block(w) -> bytes:
    return bytes.fromhex(w.call("getbestblockhash"))


def request(w, name: str, csr_pem: bytes, resolver_url: str) -> dict:
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        raise WalletError("the CSR file is not a PEM certificate request") from None
    key = _owner_key(w, name)
    block = _best_block(w)
    sig = sign_issue(key.secret, w.params.magic, name, csr.public_bytes(serialization.Encoding.DER), block)
    return post(resolver_url, "/v1/ca/issue", {"name": name, "csr": csr_pem.decode("ascii"), "block_hash": block.hex(),
                                                "pubkey33": key.pubkey.hex(), "sig64": sig.hex()})


def revoke(w, name: str, serial_hex: str, resolver_url: str) -> dict:
    try:
        serial = bytes.fromhex(serial_hex)
    except ValueError:
        raise WalletError("the serial is hex (as `cert request` printed it)") from None
    key = _owner_key(w, name)
    block = _best_block(w)
    sig = sign_revoke(key.secret, w.params.magic, name, serial, block)
    return post(resolver_url, "/v1/ca/revoke", {"name": name, "serial": serial.hex(), "block_hash": block.hex(),
                                                 "pubkey33": key.pubkey.hex(), "sig64": sig.hex()})


def post(url: str, path: str, obj: dict, timeout: float = 30) -> dict:
    """POSTs JSON to the resolver and returns the answer of its envelope; a refusal becomes
    a WalletError carrying the CA's stable reason."""
    status, view = resolver_call(url, "POST", path, json.dumps(obj).encode(), timeout)
    if view.get("error") or status != 200:
        raise WalletError(f"the CA refused: {str(view.get('error') or status)[:300]}")
    return view["answer"]
