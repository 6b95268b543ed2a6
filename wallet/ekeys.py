"""MinimaLT ephemeral keys for names this wallet owns (DESIGN §5, core/ekey.py).

A name's `minimalT` item puts a long-term id_key on chain; its ephemeral key rotates
off-chain by an update signed with the name's owner key, posted to a resolver (`POST
/v1/ekey`), gossiped to the other nodes and served as the freshest key in the name's TXT.

The wallet generates the Curve25519 pair itself (PyNaCl) and writes the secret into the
encrypted wallet file BEFORE the update leaves the process: once a key may be served, its
secret must already be safe, or clients would encrypt to a key nobody holds. Such secrets
cannot be re-derived from the seed (that would defeat forward secrecy), so the file is where
they live; a secret whose key expired more than KEEP_EXPIRED ago is destroyed on the next
rotation, which is the forward secrecy MinimaLT rotates keys for.

seq: a node accepts an update only with a seq above the last one it holds from the same
owner, and it keeps that one after it expires, when it is no longer served. So seq is the
largest of: the time now (monotonic across wallets restored from the same seed), the served
seq + 1 and the last seq this wallet signed + 1.
"""
from __future__ import annotations

import base64
import binascii
import json
import time
import urllib.parse

import nacl.public

from core.crypto import hash160, verify_digest
from core.ekey import EPH_KEY_LEN, MAX_LIFETIME, EKeyError, EKeyUpdate, make_update

from wallet import names as N
from wallet.errors import WalletError
from wallet.resolverapi import resolver_call

DEFAULT_TTL = 86400            # a day: rotate daily (cron) and a leaked key is short-lived
KEEP_EXPIRED = 86400           # clients may still hold a just-expired key for a while


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def fqdn_of(name: str) -> str:
    """"d/example" -> "example.bit." (the resolver serves a d/ name's keys at its apex)."""
    label = name[2:] if name.startswith("d/") else ""
    if not label or "." in label or "/" in label:
        raise WalletError(f"{name}: MinimaLT keys belong to d/ names such as d/example")
    return label + ".bit."


def parse_eph_key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise WalletError("--eph-key is not base64") from None
    if len(raw) != EPH_KEY_LEN:
        raise WalletError(f"--eph-key must be a {EPH_KEY_LEN}-byte Curve25519 public key (got {len(raw)} bytes)")
    return raw


def live_record(w, name: str) -> dict:
    rec = N.show(w, name)
    if rec is None:
        raise WalletError(f"unknown name: {name} was never registered")
    if rec["expired"]:
        raise WalletError(f"name expired: {name} (register it again with `name register`)")
    return rec


# --- the resolver ----------------------------------------------------------------------------------

def served(url: str, name: str) -> dict | None:
    """The minimalT entry the resolver serves at the name's apex, or None if it has none."""
    fqdn = fqdn_of(name)
    status, view = resolver_call(url, "GET", "/v1/domain/" + urllib.parse.quote(fqdn) + "?type=TXT")
    if status == 404:
        return None
    if status != 200 or view.get("error"):
        raise WalletError(f"the resolver refused the lookup of {fqdn}: {str(view.get('error') or status)[:300]}")
    try:
        for m in view["answer"]["minimalt"]:
            if m["owner"] == fqdn:
                return m
    except (KeyError, TypeError):
        raise WalletError(f"the resolver's answer for {fqdn} is not understood") from None
    return None


def check_update(raw_hex: str | None, name: str, owner_address: bytes) -> EKeyUpdate | None:
    """The served update, if it is a well-formed one for NAME signed by its current owner."""
    if not raw_hex:
        return None
    try:
        u = EKeyUpdate.from_bytes(bytes.fromhex(raw_hex))
    except (ValueError, EKeyError):
        return None
    if u.name != name.encode() or hash160(u.pubkey) != owner_address or not verify_digest(u.pubkey, u.sig, u.digest):
        return None
    return u


def _key_of(entry: dict) -> bytes:
    return base64.b64decode(entry["eph_key"])


# --- commands -----------------------------------------------------------------------------------------

def rotate(w, name: str, url: str, ttl: int = DEFAULT_TTL, eph_key_b64: str | None = None,
           seq: int | None = None, now: float | None = None) -> dict:
    """Signs a new ephemeral key for NAME with its owner key and posts it to the resolver."""
    nb = N.name_bytes(name)
    fqdn_of(name)
    if not 60 <= ttl <= MAX_LIFETIME:
        raise WalletError(f"--ttl must be 60..{MAX_LIFETIME} seconds (a node refuses longer-lived keys)")
    given = parse_eph_key(eph_key_b64) if eph_key_b64 is not None else None
    rec = live_record(w, name)
    key = w.owns(w.parse_address(rec["address"]))
    if key is None:
        raise WalletError(f"not your name: {name} belongs to {rec['address']}")
    current = served(url, name)           # before any key exists: a dead resolver costs nothing
    served_update = check_update(current.get("eph_update") if current else None, name, key.address)
    entries = w.doc["ekeys"].setdefault(name, [])
    now = int(time.time() if now is None else now)
    if seq is None:
        seq = max([now] + [u.seq + 1 for u in (served_update,) if u] + [e["seq"] + 1 for e in entries])
    if given is None:
        pair = nacl.public.PrivateKey.generate()
        eph, secret = bytes(pair.public_key), _b64(bytes(pair))
    else:
        eph = given      # made elsewhere; if this wallet made it before, it keeps its secret
        secret = next((e["secret"] for e in entries if e["secret"] and _key_of(e) == eph), None)
    update = make_update(nb, eph, seq, now + ttl, key.secret, key.pubkey)
    entry = {"eph_key": _b64(eph), "secret": secret, "seq": seq, "expires": now + ttl, "created": now,
             "update": update.to_bytes().hex(), "state": "signed"}
    entries[:] = [e for e in entries if e["expires"] > now - KEEP_EXPIRED] + [entry]
    w.save()                              # the secret is safe before the key can be served
    status, view = resolver_call(url, "POST", "/v1/ekey", json.dumps({"update": entry["update"]}).encode())
    if status != 200 or view.get("error"):
        reason = str(view.get("error") or f"HTTP {status}")[:300]
        entry["state"] = "refused: " + reason
        w.save()
        raise WalletError(f"the resolver refused the update: {reason}")
    entry["state"] = "published"
    w.save()
    return {"name": name, "eph_key": entry["eph_key"], "seq": seq, "expires": entry["expires"],
            "secret_held": secret is not None, "served_item": current is not None}


def show(w, name: str, url: str, show_secret: bool = False, now: float | None = None) -> dict:
    """What the resolver serves for NAME's MinimaLT service, and whether this wallet holds
    the secret of the ephemeral key served."""
    fqdn = fqdn_of(name)
    rec = live_record(w, name)
    owner = w.parse_address(rec["address"])
    current = served(url, name)
    if current is None:
        raise WalletError(f"{name} has no minimalT item at {fqdn} (publish one with `dotbit-wallet minimalt`)")
    eph = base64.b64decode(current["eph_key"])        # the envelope's view shows MinimaLT keys in base64
    update = check_update(current.get("eph_update"), name, owner)
    res = {"name": name, "owner": fqdn, "port": current.get("port"), "ip": current.get("ip"),
           "id_key": current["id_key"], "eph_key": _b64(eph),
           "source": "update" if update else "chain", "seq": update.seq if update else None,
           "expires": update.expires if update else None, "mine": w.owns(owner) is not None}
    if current.get("eph_update") and update is None:
        res["warning"] = "the served update is not signed by the name's owner"
    held = next((e for e in w.doc["ekeys"].get(name, []) if e["secret"] and _key_of(e) == eph), None)
    res["secret_held"] = held is not None
    if show_secret and held is not None:
        res["eph_secret"] = held["secret"]
    now = int(time.time() if now is None else now)
    if update is not None:
        res["expires_in"] = update.expires - now
    return res
