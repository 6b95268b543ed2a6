"""Everything a light client checks, in one module others can embed (DESIGN §4-5).

Headers: `extend_headers` checks headers in wire form on top of a chain the caller keeps
(linkage, proof of work, own or merge-mined (AuxPoW), the retarget rule, median-time-past,
the future-time bound) with the node's own pure consensus functions, so client and node can
never disagree on validity. The chain keeps only the 112 hashed bytes of each: an AuxPoW,
once checked, has told all it can.

Answers: `open_answer` checks the resolver's signature and that the envelope answers the
question asked; `verify_answer` then checks the answer's tip is a header of our own chain
(and not too far behind its tip), every proof against that header's name_root, rebuilds the
answer from the proven names alone with the resolver's own d/ interpreter (expiry applied at
the tip's height, MinimaLT ephemeral-key updates checked against the proven owner) and
requires the resolver's records to be exactly those. So a resolver holding a valid key still
cannot change a value, hide a name, or serve an old state beyond the staleness bound.

Names outside bit., and TLSA records from another source than the chain (the CA, DANE), are
checked in altrecords.py: under bit. the chain is authoritative, so another source only fills
a TLSA owner the proven chain leaves empty, and only with evidence checked here. The verdicts
(VerifyError, Verified) live in verdict.py and are importable from here too. The chain's own
records are checked exactly as before whatever the source.

Imports: primitives, consensus header rules, name rules and proofs, the envelope verifier, the
ekey wire format and the d/ interpreter only; no I/O, no clock (time is passed in).
"""
from __future__ import annotations

import reprlib
from typing import Callable

from core.consensus import block_work, check_header_context, check_pow
from core.crypto import hash160, sha256d, verify_digest
from core.encoding import unpack
from core.errors import DecodeError, ValidationError
from core.primitives import HEADER_SIZE, Header
from core.names.proof import ProofError, verify_proof
from core.names.rules import NameRecord, is_expired, record_hash, tree_key
from core.ekey import MAX_LIFETIME, EKeyError, EKeyUpdate
from core.envelope import EnvelopeError, open_envelope
from core.records import NameSource, domain_of, select
from light.altrecords import check_ca, take_alt, verify_dane
from light.verdict import Verified, VerifyError, text_record

DEFAULT_MAX_BEHIND = 6
# The default --max-tip-age, in block intervals: no block for 18 intervals happens with
# probability e^-18 (about once in 10^8 gaps; 3 hours on main), so a best header older than
# that means the network moved on without us far more likely than that miners paused.
TIP_AGE_BLOCKS = 18
QTYPES = ("A", "AAAA", "TXT", "TLSA", "SRV", "MX", "NS", "DS", "CNAME", "DNAME", "SSHFP", "ANY")


# --- headers ---------------------------------------------------------------------------------

# Field offsets in the 112-byte header (DESIGN §3): version 4 | prev 32 | merkle 32 | name_root 32
# | time 4 | bits 4 | nonce 4. Read in place, since a sync touches every header.
PREV, NAME_ROOT, TIME, BITS = slice(4, 36), slice(68, 100), slice(100, 104), slice(104, 108)
assert HEADER_SIZE == 112


def header_time(raw: bytes) -> int:
    return int.from_bytes(raw[TIME], "little")


def headers_work(raws) -> int:
    return sum(block_work(int.from_bytes(r[BITS], "little")) for r in raws)


def extend_headers(chain: list[bytes], new, params, now: int,
                   checkpoints: dict[int, bytes] | None = None) -> None:
    """Appends each header of `new` (wire form) to `chain` (112-byte headers by height, genesis
    first) after checking it; stops with VerifyError at the first bad one, the good ones kept
    appended."""
    height = len(chain) - 1
    prev_hash = sha256d(chain[-1])
    prev = Header.from_bytes(chain[-1])

    def time_at(h: int) -> int:          # read in place: chain[h] is below the checked height
        return header_time(chain[h])

    for raw in new:
        height += 1
        try:
            h = Header.from_wire(raw)
        except DecodeError as e:
            raise VerifyError("header", f"height {height}: {e}") from None
        if h.prev_hash != prev_hash:
            raise VerifyError("header", f"height {height}: does not link to the previous header")
        if len(raw) != HEADER_SIZE:
            raw = raw[:HEADER_SIZE]
        block_hash = sha256d(raw)
        try:
            check_pow(h, block_hash, params)
            check_header_context(h, height, prev.bits, time_at, params, now)
        except ValidationError as e:
            raise VerifyError("header", f"height {height}: {e.reason}") from None
        if checkpoints and checkpoints.get(height, block_hash) != block_hash:
            raise VerifyError("checkpoint", f"height {height} is not the checkpointed block")
        chain.append(raw)
        prev, prev_hash = h, block_hash


# --- answers ---------------------------------------------------------------------------------

def open_answer(data: bytes, public_key: bytes, fqdn: str, qtype: str, now: float) -> dict:
    """The signed body of a /v1/domain answer, checked to answer exactly (fqdn, qtype)."""
    try:
        body = open_envelope(data, public_key, now=now)
    except EnvelopeError as e:
        raise VerifyError("signature", str(e)) from None
    if body.get("question") != {"name": fqdn, "type": qtype}:
        raise VerifyError("question", f"the answer is for {_brief(body.get('question'), 100)}, not {fqdn} {qtype}")
    kind, error = body.get("kind"), body.get("error")
    if kind == "error" and isinstance(error, str) and error.startswith("not-bit:"):
        raise VerifyError("resolver-error", f"the resolver serves no names outside bit. (no DANE zones), "
                                            f"so not {fqdn}")
    if kind == "error" and not (isinstance(error, str) and error.startswith("not-found")):
        raise VerifyError("resolver-error", f"{_brief(error, 200)}")
    if kind not in ("domain", "error"):
        raise VerifyError("shape", f"unexpected answer kind {_brief(kind, 40)}")
    tip = body.get("tip")
    if not (isinstance(tip, dict) and type(tip.get("height")) is int and tip["height"] >= 0
            and _is_hash(tip.get("hash")) and _is_hash(tip.get("name_root"))):
        raise VerifyError("shape", "the answer has no well-formed tip")
    return body


def verify_answer(body: dict, header_at: Callable[[int], bytes], local_height: int, params, now: float,
                  max_behind: int = DEFAULT_MAX_BEHIND, trust: str = "proofs", ca_certs=(),
                  dane_anchors=None, max_tip_age: float | None = None) -> Verified:
    """Checks an opened answer against our verified headers (`header_at(h)` -> raw header,
    for 0 <= h <= local_height) and returns what it proves; `max_tip_age` (seconds, None: no
    bound) refuses answers while our best header is older than that. `dane_anchors`: DS/DNSKEY rdatas
    by owner (dane.read_anchors) that answers for names outside bit. are validated from."""
    fqdn, qtype = body["question"]["name"], body["question"]["type"]
    tip = body["tip"]
    if domain_of(fqdn) is None:
        return verify_dane(body, fqdn, qtype, dane_anchors or {}, now)
    answer = _answer_of(body)
    out = Verified(fqdn, qtype, "NOERROR", tip["height"], tip["hash"], trust)
    if trust == "pinned":                # DNSNMC-style: the resolver's signature is all we check
        return _take_pinned(out, answer, lambda group, records: check_ca(group, records, fqdn, None, tip["height"],
                                                                        params, now, ca_certs))

    _check_fresh(header_at(local_height), local_height, now, max_tip_age)
    _check_tip(tip, header_at, local_height, max_behind)
    proven = _check_proofs(body.get("proofs"), tip["name_root"])
    out.proven = proven
    out.expired = sorted(n.decode("utf-8", "replace") for n, r in proven.items()
                         if r is not None and is_expired(r, tip["height"], params))

    updates = _check_ekeys(answer["minimalt"] if answer else [], proven, tip["height"], params, now)
    source = NameSource(lambda name: _proven_record(proven, name), lambda: tip["height"], params,
                        _VerifiedEKeys(updates))
    try:
        ans = source.resolve(fqdn)
    except _Unproven as e:
        raise VerifyError("proof-missing", f"the answer depends on {e.args[0]!r} but carries no proof of it") \
            from None
    mine = select(ans.records, fqdn, qtype)
    if answer is None:
        if ans.records:
            raise VerifyError("fake-absence", f"the resolver says {fqdn} does not exist, its proofs say it does")
        out.status = "NXDOMAIN"
        return out
    out.records, (out.tls, out.minimalt) = mine, _match(answer, ans, mine, fqdn, qtype)

    take_alt(out, answer, bool(select(ans.records, fqdn, "TLSA")),
             lambda group, records: check_ca(group, records, fqdn, proven, tip["height"], params, now, ca_certs))
    return out


def _answer_of(body: dict) -> dict | None:
    """The answer of a "domain" body after shape checks; None for a "not-found" error body."""
    # .get: a resolver with a valid key may still sign a body missing fields; that is a lie
    # to report (VerifyError), never a KeyError in the client.
    answer = body.get("answer") if body["kind"] == "domain" else None
    if body["kind"] == "domain" and not (isinstance(answer, dict) and isinstance(answer.get("records"), list)
                                   and isinstance(answer.get("tls"), list)
                                   and isinstance(answer.get("minimalt"), list)):
        raise VerifyError("shape", "malformed answer")
    return answer


def _take_pinned(out: Verified, answer: dict | None, check_ca) -> Verified:
    """The resolver's answer as it stands (shape checked only), except that records from
    another source still face the same policy and CA check: pinning the resolver's key is
    trusting its chain data, not letting it swap in other sources' keys."""
    if answer is None:
        out.status = "NXDOMAIN"
        return out
    try:
        out.records = [text_record(*r) for r in answer["records"]]
    except (TypeError, ValueError):
        raise VerifyError("shape", "malformed record") from None
    out.tls, out.minimalt = answer["tls"], answer["minimalt"]
    take_alt(out, answer, bool(select(out.records, out.fqdn, "TLSA")), check_ca)
    return out


def _match(answer: dict, ans, mine: list, fqdn: str, qtype: str) -> tuple[list, list]:
    """(tls, minimalt) of the proven names, once the resolver's records, TLSA data and MinimaLT
    data are found to be exactly those."""
    theirs = _record_set(answer["records"])
    if theirs != {(r.owner, r.rtype, r.rdata) for r in mine}:
        raise VerifyError("records", f"the records for {fqdn} {qtype} differ from what the proven names hold")
    tls = sorted([r.owner, r.rdata] for r in ans.records if r.rtype == "TLSA")
    if not all(isinstance(x, list) and len(x) == 2 and all(isinstance(y, str) for y in x) for x in answer["tls"]):
        raise VerifyError("shape", "malformed TLSA data")      # sorting mixed types would raise TypeError
    if sorted(answer["tls"]) != tls:
        raise VerifyError("records", f"the TLSA data for {fqdn} differs from what the proven names hold")
    mlt = []
    for owner, (item, eph, update) in sorted(ans.minimalt.items()):
        mlt.append({"owner": owner, "ip": item.ip, "port": item.port, "id_key": item.id_key, "eph_key": eph,
                    "eph_update": update.to_bytes() if update else None})
    if sorted(answer["minimalt"], key=_owner) != mlt:
        raise VerifyError("ekey", f"the MinimaLT data for {fqdn} is not the proven owner's")
    return tls, mlt


def _check_fresh(best: bytes, height: int, now: float, max_tip_age: float | None) -> None:
    """Every answer is checked against the best chain we know; if that chain stopped growing
    (a frozen resolver as our only source) the check proves nothing about today."""
    age = now - header_time(best)
    if max_tip_age is not None and age > max_tip_age:
        raise VerifyError("stale-chain", f"our best header (height {height}) is {age:.0f} s old, more than "
                                         f"the max tip age of {max_tip_age:g} s: the network may have moved "
                                         f"on without our sources (--peer, or --accept-stale for this call)")


def _check_tip(tip: dict, header_at, local_height: int, max_behind: int) -> None:
    height = tip["height"]
    if height > local_height:
        raise VerifyError("tip-ahead", f"the answer's tip {height} is beyond our verified headers ({local_height})")
    raw = header_at(height)
    if sha256d(raw) != tip["hash"]:
        raise VerifyError("wrong-header", f"the answer's block at height {height} is not in our header chain")
    if raw[NAME_ROOT] != tip["name_root"]:
        raise VerifyError("wrong-header", f"the answer's name_root is not that of block {height}")
    if local_height - height > max_behind:
        raise VerifyError("stale-tip", f"the answer is from height {height}, "
                                       f"{local_height - height} blocks behind our tip (max {max_behind})")


def _check_proofs(proofs, root: bytes) -> dict:
    if not isinstance(proofs, list):
        raise VerifyError("shape", "the answer has no proof list")
    proven: dict = {}
    for p in proofs:
        if not (isinstance(p, dict) and type(p.get("name")) is bytes and type(p.get("proof")) is bytes
                and (p.get("record") is None or type(p["record"]) is bytes)):
            raise VerifyError("shape", "malformed proof entry")
        name, raw = p["name"], p.get("record")
        label = name.decode("utf-8", "replace")
        try:
            committed = verify_proof(root, tree_key(name), p["proof"])
        except ProofError as e:
            raise VerifyError("proof", f"{label}: {e}") from None
        if committed != (record_hash(raw) if raw is not None else None):
            raise VerifyError("proof", f"{label}: the record given is not the one the name_root commits to")
        rec = _decode_record(raw, label) if raw is not None else None
        if rec is not None and rec.name != name:
            raise VerifyError("proof", f"{label}: the proven record is for another name")
        proven[name] = rec
    return proven


def _decode_record(raw: bytes, label: str) -> NameRecord:
    try:
        o = unpack(raw, 4096)
        if not (isinstance(o, list) and len(o) == 6 and all(type(o[i]) is bytes for i in (0, 1, 2, 4))
                and type(o[3]) is int and type(o[5]) is int):
            raise ValueError("wrong shape")
        return NameRecord.from_obj(o)
    except Exception as e:
        raise VerifyError("proof", f"{label}: undecodable record ({e})") from None


def _check_ekeys(entries, proven: dict, height: int, params, now: float) -> dict:
    """domain name -> EKeyUpdate, each signed by the name's proven, unexpired owner."""
    updates = {}
    for m in entries:
        if not isinstance(m, dict) or not isinstance(m.get("owner"), str):
            raise VerifyError("shape", "malformed MinimaLT entry")
        raw = m.get("eph_update")
        if raw is None:
            continue
        try:
            u = EKeyUpdate.from_bytes(raw) if type(raw) is bytes else None
        except EKeyError:
            u = None
        domain = domain_of(m["owner"])
        if u is None or domain is None:
            raise VerifyError("ekey", f"malformed ephemeral-key update for {m['owner']!r:.80}")
        rec = proven.get(u.name)
        if u.name != domain.encode() or rec is None or is_expired(rec, height, params):
            raise VerifyError("ekey", f"the ephemeral-key update for {m['owner']} is not for its proven name")
        if hash160(u.pubkey) != rec.address or not verify_digest(u.pubkey, u.sig, u.digest):
            raise VerifyError("ekey", f"the ephemeral key for {m['owner']} is not signed by the name's owner")
        if not now < u.expires <= now + MAX_LIFETIME:     # resolvers refuse longer ones on entry
            raise VerifyError("ekey", f"the ephemeral-key update for {m['owner']} has expired or lives too long")
        updates[u.name] = u
    return updates


class _Unproven(Exception):
    pass


def _proven_record(proven: dict, name: bytes):
    if name not in proven:
        raise _Unproven(name.decode("utf-8", "replace"))
    return proven[name]


class _VerifiedEKeys:
    """What NameSource asks an ekey store, answered from the verified updates only."""

    def __init__(self, updates: dict):
        self.updates = updates

    def current(self, name: bytes):
        return self.updates.get(name)


def _record_set(rows) -> set:
    try:
        return {(r.owner, r.rtype, r.rdata) for r in (text_record(*row) for row in rows)}
    except (TypeError, ValueError):
        raise VerifyError("shape", "malformed record") from None


def _owner(m) -> str:
    return m.get("owner", "") if isinstance(m, dict) else ""


# Signed bodies come from the resolver: what an error message quotes of them is shown through
# reprlib, which stops at a few levels, since repr() of a body nested hundreds deep raises
# RecursionError instead of reporting the lie.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 200, 200


def _brief(obj, limit: int) -> str:
    return _REPR.repr(obj)[:limit]


def _is_hash(b) -> bool:
    return type(b) is bytes and len(b) == 32

