"""Light-client checks of resolver answers (DESIGN §4-5): trust the resolver's key only for
who answered, and proof of work for what is true.

A client pins the resolver key (fingerprint), links the headers it fetched back to the
network's genesis checking each one's proof of work, then for a /v1/domain envelope checks:
the signature; that the envelope's tip is one of its headers and carries that header's
name_root; every name-tree proof against that root; and that interpreting the proven
values with the shared d/ rules gives exactly the records the resolver returned. A resolver
that signs a false answer is caught by the last two steps. Ephemeral MinimaLT keys are
off-chain: each is checked to be signed by the proven owner of the name and unexpired.
"""
from __future__ import annotations

import hashlib
import time

from node.chain.consensus import bits_to_target
from node.chain.crypto import hash160, sha256d, verify_digest
from node.chain.encoding import unpack
from node.chain.primitives import Header
from node.names.dvalue import records_for_qname
from node.names.proof import ProofError, verify_proof
from node.names.rules import NameRecord, is_expired, record_hash, tree_key

from .ekeys import EKeyError, EKeyUpdate
from .envelope import EnvelopeError, open_envelope

MINIMALT_TXT = '"v=minimalt1"'


class LightClientError(Exception):
    pass


def select(records, fqdn: str, qtype: str) -> list:
    """The records a /v1/domain answer carries for (fqdn, qtype): all of them for ANY, else
    those of the type (or a CNAME/DNAME) at the name, and any cut or DNAME above it."""
    return [r for r in records
            if qtype == "ANY" or (r.owner == fqdn and r.rtype in (qtype, "CNAME", "DNAME"))
            or r.rtype in ("NS", "DNAME") and fqdn.endswith("." + r.owner)]


def verify_headers(raw: list[bytes], params) -> dict[bytes, tuple[int, Header]]:
    """hash -> (height, header) for a chain starting at the network's genesis, each header
    linked to the previous one and meeting the target its bits claim (within the network's
    limit). Difficulty retargeting is not re-checked here."""
    out = {}
    prev = None
    for height, data in enumerate(raw):
        try:
            h = Header.from_bytes(bytes(data))
        except Exception as e:
            raise LightClientError(f"header {height}: {e}") from None
        digest = sha256d(h.to_bytes())
        if height == 0:
            if digest != params.genesis_hash:
                raise LightClientError("headers do not start at this network's genesis")
        else:
            target = bits_to_target(h.bits)
            if h.prev_hash != prev or target == 0 or target > params.pow_limit:
                raise LightClientError(f"header {height}: does not link or bad bits")
            if int.from_bytes(digest, "big") > target:
                raise LightClientError(f"header {height}: proof of work too weak")
        out[digest] = (height, h)
        prev = digest
    return out


def proven_names(body: dict, headers: dict, params) -> tuple[dict, int]:
    """name -> NameRecord | None (proven absent) from the envelope's proofs; and the tip height."""
    tip = body.get("tip") or {}
    entry = headers.get(tip.get("hash"))
    if entry is None or entry[0] != tip.get("height") or entry[1].name_root != tip.get("name_root"):
        raise LightClientError("the answer's tip is not in the verified header chain")
    root = entry[1].name_root
    proven = {}
    for p in body.get("proofs", []):
        name = p["name"]
        try:
            value_hash = verify_proof(root, tree_key(name), p["proof"])
        except ProofError as e:
            raise LightClientError(f"proof for {name!r}: {e}") from None
        if p["record"] is None:
            if value_hash is not None:
                raise LightClientError(f"{name!r} is registered but the resolver says it is not")
            proven[name] = None
            continue
        if value_hash != record_hash(p["record"]):
            raise LightClientError(f"record of {name!r} does not match its proof")
        rec = NameRecord.from_obj(unpack(p["record"], 4096))
        if rec.name != name:
            raise LightClientError("a proof carries another name's record")
        proven[name] = rec
    return proven, entry[0]


def check_domain(envelope: bytes, pubkey: bytes, headers: dict, params, now: float | None = None) -> dict:
    """The verified body of a /v1/domain envelope, or LightClientError."""
    now = time.time() if now is None else now
    try:
        body = open_envelope(envelope, pubkey, now=now)
    except EnvelopeError as e:
        raise LightClientError(f"envelope: {e}") from None
    if body.get("kind") not in ("domain", "error"):
        raise LightClientError("not a domain answer")
    proven, height = proven_names(body, headers, params)
    fqdn, qtype = body["question"]["name"], body["question"]["type"]

    def lookup(name: str):
        key = name.encode()
        if key not in proven:
            raise LightClientError(f"the answer needs {name} but carries no proof for it")
        rec = proven[key]
        if rec is None or is_expired(rec, height, params):
            return None
        try:
            return rec.value.decode("utf-8")
        except UnicodeDecodeError:
            return None

    result = records_for_qname(fqdn, lookup)
    if body["kind"] == "error":
        if result.records:
            raise LightClientError("the resolver denies a domain that the proven values define")
        return body
    expected = {(r.owner, r.rtype, r.rdata) for r in select(result.records, fqdn, qtype)
                if not (r.rtype == "TXT" and r.rdata.startswith(MINIMALT_TXT))}
    answered = {tuple(r) for r in body["answer"]["records"]
                if not (r[1] == "TXT" and r[2].startswith(MINIMALT_TXT))}
    if expected != answered:
        raise LightClientError(f"records differ from what the proven values give: {sorted(answered ^ expected)[:4]}")
    for m in body["answer"]["minimalt"]:
        item = result.minimalt.get(m["owner"])
        if item is None or (m["id_key"], m["port"]) != (item.id_key, item.port):
            raise LightClientError(f"MinimaLT data at {m['owner']} is not what the chain says")
        if m["eph_update"] is None:
            if m["eph_key"] != item.eph_key:
                raise LightClientError("an ephemeral key without its signed update")
            continue
        try:
            u = EKeyUpdate.from_bytes(m["eph_update"])
        except EKeyError as e:
            raise LightClientError(f"ephemeral-key update: {e}") from None
        owner = proven.get(u.name)
        if (owner is None or hash160(u.pubkey) != owner.address or u.expires <= now or u.eph_key != m["eph_key"]
                or not verify_digest(u.pubkey, u.sig, u.digest)):
            raise LightClientError("ephemeral-key update not valid for the name's owner")
    return body


def fingerprint(pubkey: bytes) -> str:
    return hashlib.sha256(pubkey).hexdigest()
