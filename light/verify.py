"""Everything a light client checks, in one module others can embed (DESIGN §4-5).

Headers: `extend_headers` checks raw 112-byte headers on top of a chain the caller keeps
(linkage, proof of work, the retarget rule, median-time-past, the future-time bound) with the
node's own pure consensus functions, so client and node can never disagree on validity.

Answers: `open_answer` checks the resolver's signature and that the envelope answers the
question asked; `verify_answer` then checks the answer's tip is a header of our own chain
(and not too far behind its tip), every proof against that header's name_root, rebuilds the
answer from the proven names alone with the resolver's own d/ interpreter (expiry applied at
the tip's height, MinimaLT ephemeral-key updates checked against the proven owner) and
requires the resolver's records to be exactly those. So a resolver holding a valid key still
cannot change a value, hide a name, or serve an old state beyond the staleness bound.

Names outside bit. are the DANE source's alone (no chain data, no proofs): lightdane.py
checks them, against the client's DNSSEC trust anchors (`dane_anchors`) when it has them.

TLSA records from another source (sources.Policy: the CA, DANE) come apart from the chain's,
with their source named. CA records are accepted only for a name the proofs show live; a
client that knows the CA certificate (`ca_certs`) also checks each record is the SPKI hash of
a leaf, carried in the envelope, that the CA signed for that host and that is valid now.
The chain's own records are checked exactly as before whatever the source.

Imports: primitives, consensus header rules, name rules and proofs, the envelope verifier, the
ekey wire format and the d/ interpreter only; no I/O, no clock (time is passed in).
"""
from __future__ import annotations

import reprlib
from dataclasses import dataclass, field
from typing import Callable

from core.consensus import block_work, check_header_context, check_pow, median_time_past, next_bits
from core.crypto import hash160, sha256d, verify_digest
from core.encoding import unpack
from core.errors import DecodeError, ValidationError
from core.primitives import HEADER_SIZE, Header
from core.names.dvalue import Record
from core.names.proof import ProofError, verify_proof
from core.names.rules import NameRecord, is_expired, record_hash, tree_key
from core.ekey import MAX_LIFETIME, EKeyError, EKeyUpdate
from core.envelope import EnvelopeError, open_envelope
from core.records import NameSource, domain_of, select

DEFAULT_MAX_BEHIND = 6
QTYPES = ("A", "AAAA", "TXT", "TLSA", "SRV", "MX", "NS", "DS", "CNAME", "DNAME", "SSHFP", "ANY")


class VerifyError(Exception):
    """One failed check: `check` is a stable word naming it, the message says what was seen."""

    def __init__(self, check: str, message: str):
        super().__init__(f"{check}: {message}")
        self.check = check


# --- headers ---------------------------------------------------------------------------------

# Field offsets in the 112-byte header (DESIGN §3): version 4 | prev 32 | merkle 32 | name_root 32
# | time 4 | bits 4 | nonce 4. Read in place, since a sync touches every header.
NAME_ROOT, TIME, BITS = slice(68, 100), slice(100, 104), slice(104, 108)
assert HEADER_SIZE == 112


def header_time(raw: bytes) -> int:
    return int.from_bytes(raw[TIME], "little")


def headers_work(raws) -> int:
    return sum(block_work(int.from_bytes(r[BITS], "little")) for r in raws)


def extend_headers(chain: list[bytes], new, params, now: int,
                   checkpoints: dict[int, bytes] | None = None) -> None:
    """Appends each header of `new` to `chain` (raw headers by height, genesis first) after
    checking it; stops with VerifyError at the first bad one, the good ones kept appended."""
    height = len(chain) - 1
    prev_hash = sha256d(chain[-1])
    prev = Header.from_bytes(chain[-1])
    times = [header_time(r) for r in chain[-11:]]
    interval = params.retarget_interval
    for raw in new:
        height += 1
        try:
            h = Header.from_bytes(raw)
        except DecodeError as e:
            raise VerifyError("header", f"height {height}: {e}") from None
        if h.prev_hash != prev_hash:
            raise VerifyError("header", f"height {height}: does not link to the previous header")
        block_hash = sha256d(raw)
        first_time = None
        if params.retarget and height % interval == 0:
            first_time = header_time(chain[height - interval])
        try:
            check_pow(h, block_hash, params)
            check_header_context(h, next_bits(params, height - 1, prev.bits, prev.time, first_time),
                                 median_time_past(times), now)
        except ValidationError as e:
            raise VerifyError("header", f"height {height}: {e.reason}") from None
        if checkpoints and checkpoints.get(height, block_hash) != block_hash:
            raise VerifyError("checkpoint", f"height {height} is not the checkpointed block")
        chain.append(raw)
        times.append(h.time)
        if len(times) > 11:
            del times[0]
        prev, prev_hash = h, block_hash


# --- answers ---------------------------------------------------------------------------------

@dataclass
class Verified:
    fqdn: str
    qtype: str
    status: str                      # "NOERROR" or "NXDOMAIN" (NOERROR with no records = no data)
    height: int
    block_hash: bytes
    trust: str                       # "proofs" or "pinned"; "dane" for names outside bit.
    records: list = field(default_factory=list)      # [Record]
    tls: list = field(default_factory=list)          # [[owner, rdata]]
    minimalt: list = field(default_factory=list)     # [{owner, ip, port, id_key, eph_key, eph_update}]
    proven: dict = field(default_factory=dict)       # name -> NameRecord | None
    expired: list = field(default_factory=list)      # names whose record is expired at `height`
    source: str = "chain"            # who answered the TLSA question: chain, ca or dane
    alt_trust: str = ""              # for ca/dane records: ca-cert, resolver, dnssec, insecure, pinned,
    #                                  dnssec-verified, resolver-says-secure, resolver-says-absent
    alt_detail: str = ""             # one line: how the dane records were checked


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
                  dane_anchors=None) -> Verified:
    """Checks an opened answer against our verified headers (`header_at(h)` -> raw header,
    for 0 <= h <= local_height) and returns what it proves. `dane_anchors`: DS/DNSKEY rdatas
    by owner (dane.read_anchors) that answers for names outside bit. are validated from."""
    fqdn, qtype = body["question"]["name"], body["question"]["type"]
    tip = body["tip"]
    if domain_of(fqdn) is None:
        return _verify_dane(body, fqdn, qtype, dane_anchors or {}, now)
    # .get: a resolver with a valid key may still sign a body missing fields; that is a lie
    # to report (VerifyError), never a KeyError in the client.
    answer = body.get("answer") if body["kind"] == "domain" else None
    if body["kind"] == "domain" and not (isinstance(answer, dict) and isinstance(answer.get("records"), list)
                                   and isinstance(answer.get("tls"), list)
                                   and isinstance(answer.get("minimalt"), list)):
        raise VerifyError("shape", "malformed answer")
    out = Verified(fqdn, qtype, "NOERROR", tip["height"], tip["hash"], trust)
    if trust == "pinned":                # DNSNMC-style: the resolver's signature is all we check
        if answer is None:
            out.status = "NXDOMAIN"
            return out
        try:
            out.records = [_record(*r) for r in answer["records"]]
        except (TypeError, ValueError):
            raise VerifyError("shape", "malformed record") from None
        out.tls, out.minimalt = answer["tls"], answer["minimalt"]
        source, alt = _alt_group(answer, fqdn, qtype)
        if alt is not None:
            _use_alt(out, fqdn, source, _alt_records(alt, fqdn), "pinned")
        return out

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
    out.records, out.tls, out.minimalt = mine, tls, mlt
    source, alt = _alt_group(answer, fqdn, qtype)
    if alt is not None:
        records = _alt_records(alt, fqdn)
        if source == "ca":
            alt_trust = _check_ca(alt, records, fqdn, proven, tip["height"], params, now, ca_certs)
        else:
            alt_trust = "dnssec" if alt.get("secure") is True else "insecure"
        _use_alt(out, fqdn, source, records, alt_trust)
    return out


# --- records from other sources (CA, DANE) -----------------------------------------------------

def _verify_dane(body: dict, fqdn: str, qtype: str, anchors: dict, now: float) -> Verified:
    """A name outside bit.: the chain, its headers and proofs say nothing about it."""
    from light.dane import absence, check_answer
    tip = body["tip"]
    out = Verified(fqdn, qtype, "NOERROR", tip["height"], tip["hash"], "dane", source="dane")
    answer = body.get("answer") if body["kind"] == "domain" else None     # .get: as for bit. names
    if body["kind"] == "domain" and not isinstance(answer, dict):
        raise VerifyError("shape", "malformed answer")
    if answer is None:
        out.status = "NXDOMAIN"
        out.alt_trust, out.alt_detail = absence()
        return out
    out.records, out.alt_trust, out.alt_detail = check_answer(answer, fqdn, qtype, anchors, now)
    out.tls = [[r.owner, r.rdata] for r in out.records if r.rtype == "TLSA"]
    return out


def _alt_group(answer: dict, fqdn: str, qtype: str):
    """(source, its group or None) after shape checks; the chain answering means no group."""
    source, groups = answer.get("source", "chain"), answer.get("alt", [])
    if source not in ("chain", "ca", "dane") or not isinstance(groups, list):
        raise VerifyError("shape", "malformed record source")
    if source == "chain":
        if groups:
            raise VerifyError("shape", "records from another source while the chain answered")
        return source, None
    if len(groups) != 1 or not isinstance(groups[0], dict) or groups[0].get("source") != source:
        raise VerifyError("shape", f"the {source} records are missing or malformed")
    if qtype not in ("TLSA", "ANY"):
        raise VerifyError("records", f"a {source} source answered a {qtype} question (only TLSA is theirs)")
    return source, groups[0]


def _alt_records(group: dict, fqdn: str) -> list[Record]:
    rows = group.get("records")
    if not isinstance(rows, list) or not rows:
        raise VerifyError("shape", "an alternative source without records")
    try:
        records = [_record(*r) for r in rows]
    except (TypeError, ValueError):
        raise VerifyError("shape", "malformed record") from None
    if any(r.owner != fqdn or r.rtype != "TLSA" for r in records):
        raise VerifyError("records", f"another source may only give TLSA at {fqdn}")
    return records


def _check_ca(group: dict, records: list[Record], fqdn: str, proven: dict, height: int, params, now: float,
              ca_certs) -> str:
    from core.ca_evidence import EvidenceError, check_leaf, tlsa_owner
    owner = tlsa_owner(fqdn)
    name = domain_of(owner[1]) if owner else None
    if name is None:
        raise VerifyError("ca", f"{fqdn} is not a TLSA owner under bit.")
    rec = proven.get(name.encode())
    if rec is None or is_expired(rec, height, params):
        raise VerifyError("ca", f"CA records for {name}, which the proofs show is not live")
    if not ca_certs:
        return "resolver"
    evidence = group.get("evidence")
    certs = evidence.get("certs") if isinstance(evidence, dict) else None
    if not isinstance(certs, list) or any(type(c) is not bytes for c in certs):
        raise VerifyError("ca", "the CA records come without their certificates")
    vouched = set()
    for der in certs:
        for ca in ca_certs:
            try:
                vouched.add(check_leaf(der, ca, owner[1], now))
                break
            except EvidenceError:
                continue
    missing = [r.rdata for r in records if r.rdata.upper() not in vouched]
    if missing:
        raise VerifyError("ca", f"{missing[0]} at {fqdn} is not backed by a leaf our CA issued for {owner[1]}")
    return "ca-cert"


def _use_alt(out: Verified, fqdn: str, source: str, records: list[Record], alt_trust: str) -> None:
    """The other source's TLSA replaces the chain's at fqdn (the policy put it first)."""
    out.records = [r for r in out.records if not (r.owner == fqdn and r.rtype == "TLSA")] + records
    out.tls = [t for t in out.tls if t[0] != fqdn] + [[r.owner, r.rdata] for r in records]
    out.source, out.alt_trust = source, alt_trust


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


def _record(owner, rtype, rdata) -> Record:
    if not all(isinstance(x, str) for x in (owner, rtype, rdata)):
        raise TypeError("record fields must be text")
    return Record(owner, rtype, rdata)


def _record_set(rows) -> set:
    try:
        return {(r.owner, r.rtype, r.rdata) for r in (_record(*row) for row in rows)}
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

