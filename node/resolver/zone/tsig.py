"""TSIG (RFC 8945) for the `bit.` zone's secondaries: the shared keys, checking a signed query,
and signing answers, zone transfers and NOTIFYs with dnspython's dns.tsig.

Keys come as `NAME:ALGORITHM:BASE64SECRET` (`--axfr-tsig`, `NAME:SECRET` means hmac-sha256)
or from a file of BIND `key "NAME" { algorithm ...; secret "..."; };` statements, the form
`tsig-keygen` writes and BIND, Knot (keymgr) and NSD configurations take, so an operator keeps
one key file for both ends.

A query with a TSIG is checked in RFC 8945 §5.2 order: a key we do not know, or a known name
with another algorithm, is BADKEY; a wrong MAC is BADSIG; both are answered NOTAUTH, unsigned
(we cannot sign with a key the client does not share). A right MAC outside the time fudge is
BADTIME, signed, with our clock in Other Data so the client can see the skew. Secrets never
reach a log line, an error message or a repr.
"""
from __future__ import annotations

import base64
import binascii
import re
import struct
import time
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

FUDGE = 300                     # seconds of clock skew accepted, the RFC 8945 recommendation
DEFAULT_ALGORITHM = "hmac-sha256"
# MD5 is left out on purpose: RFC 8945 §6 makes it optional and nobody should start with it.
ALGORITHMS = {name: dns.name.from_text(name) for name in
              ("hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512")}
_TSIG_TYPE_CLASS = struct.pack("!HH", dns.rdatatype.TSIG, dns.rdataclass.ANY)


class TSIGKeyError(ValueError):
    """A key spec or key file that cannot be used; the message never holds the secret."""


def _key(name: str, algorithm: str, secret: str, where: str) -> dns.tsig.Key:
    try:
        kname = dns.name.from_text(name)
    except dns.exception.DNSException:
        raise TSIGKeyError(f"{where}: {name!r} is not a DNS name") from None
    alg = ALGORITHMS.get(algorithm.lower().rstrip("."))
    if alg is None:
        raise TSIGKeyError(f"{where}: key {name}: algorithm {algorithm!r} not one of {', '.join(ALGORITHMS)}")
    try:
        raw = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise TSIGKeyError(f"{where}: key {name}: the secret is not base64") from None
    if len(raw) < 16:
        raise TSIGKeyError(f"{where}: key {name}: the secret is shorter than 16 bytes")
    return dns.tsig.Key(kname, raw, alg)


def parse_spec(spec: str) -> dns.tsig.Key:
    """`NAME:ALGORITHM:BASE64SECRET` or `NAME:BASE64SECRET` (hmac-sha256)."""
    parts = spec.strip().split(":")
    if len(parts) == 2:
        parts.insert(1, DEFAULT_ALGORITHM)
    if len(parts) != 3 or not all(parts):
        raise TSIGKeyError("--axfr-tsig: expected NAME:ALGORITHM:BASE64SECRET")
    return _key(parts[0], parts[1], parts[2], "--axfr-tsig")


_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*|#[^\n]*", re.S)
_KEY_STMT = re.compile(r'key\s+("([^"]+)"|([^\s{]+))\s*\{(.*?)\}\s*;', re.S)
_FIELD = re.compile(r'(\w+)\s+("([^"]*)"|([^\s;]+))\s*;')


def parse_key_file(text: str, where: str = "--axfr-tsig-file") -> list[dns.tsig.Key]:
    """Every `key` statement of a BIND-syntax file (comments allowed; other statements such
    as `server` are ignored, so a named.conf fragment can be shared)."""
    text = _COMMENTS.sub(" ", text)
    keys = []
    for m in _KEY_STMT.finditer(text):
        name = m.group(2) or m.group(3)
        fields = {f.group(1).lower(): f.group(3) if f.group(3) is not None else f.group(4)
                  for f in _FIELD.finditer(m.group(4))}
        if "secret" not in fields:
            raise TSIGKeyError(f"{where}: key {name} has no secret")
        keys.append(_key(name, fields.get("algorithm", DEFAULT_ALGORITHM), fields["secret"], where))
    if not keys:
        raise TSIGKeyError(f"{where}: no key statement found")
    return keys


def read_key_file(path: str) -> list[dns.tsig.Key]:
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise TSIGKeyError(f"--axfr-tsig-file {path}: {e.strerror}") from None
    return parse_key_file(text, path)


def reserve(key: dns.tsig.Key) -> int:
    """Bytes a TSIG by `key` adds to a message: owner, RR header, algorithm, the fixed fields,
    the longest MAC (SHA-512) and six bytes of Other Data (BADTIME)."""
    return len(key.name.to_wire()) + 10 + len(key.algorithm.to_wire()) + 16 + 64 + 6


class Keyring:
    """The shared keys by name. The first one signs the NOTIFYs we send."""

    def __init__(self, keys):
        self.keys: dict[dns.name.Name, dns.tsig.Key] = {}
        for k in keys:
            if k.name in self.keys:
                raise TSIGKeyError(f"TSIG key {k.name} given twice")
            self.keys[k.name] = k
        if not self.keys:
            raise TSIGKeyError("no TSIG keys")
        self.first = next(iter(self.keys.values()))

    def __repr__(self) -> str:                   # dns.tsig.Key's own repr prints the secret
        return f"Keyring({', '.join(f'{k.name}/{k.algorithm}' for k in self.keys.values())})"

    def names(self) -> list[str]:
        return [k.name.to_text() for k in self.keys.values()]


@dataclass(frozen=True)
class Signed:
    """A query whose TSIG checked out: the query without its TSIG (what the unsigned answer
    paths take) and what signing the answer needs."""
    query: dns.message.Message
    unsigned: bytes
    key: dns.tsig.Key
    mac: bytes

    def sign(self, wire: bytes, now: int | None = None, ctx=None, multi: bool = False) -> tuple[bytes, object]:
        """`wire`, an answer to this query, with its TSIG appended; for a multi-message
        answer pass the returned context to the next message (RFC 8945 §5.3.1)."""
        return sign_wire(wire, self.key, self.mac if ctx is None else None,
                         int(time.time()) if now is None else now, ctx=ctx, multi=multi)


class Rejected(Exception):
    """A query whose TSIG failed: `response` is the NOTAUTH answer to send, `error` its name."""

    def __init__(self, response: bytes, error: str, keyname: str):
        super().__init__(f"TSIG {error} for key {keyname}")
        self.response = response
        self.error = error
        self.keyname = keyname


def has_tsig(wire: bytes) -> bool:
    """A cheap filter before parsing: a TSIG RR's TYPE and CLASS bytes appear in the message.
    False positives only cost a parse; there are no false negatives."""
    return wire.find(_TSIG_TYPE_CLASS, 12) >= 0


def check(wire: bytes, keyring: Keyring, now: int | None = None) -> Signed | None:
    """None when the message carries no TSIG (or does not parse: the unsigned path answers
    it, FORMERR); Signed when it checks out; raises Rejected otherwise."""
    try:
        plain = dns.message.from_wire(wire, keyring=False)
    except Exception:
        return None
    if not plain.had_tsig or plain.flags & dns.flags.QR:
        return None
    tsig = plain.tsig[0]
    now = int(time.time()) if now is None else now
    keyname = plain.tsig.name.to_text()
    key = keyring.keys.get(plain.tsig.name)
    if key is None or key.algorithm != tsig.algorithm:
        raise Rejected(_unsigned_error(plain, dns.rcode.BADKEY, now), "BADKEY", keyname)
    try:
        query = dns.message.from_wire(wire, keyring={key.name: key})
    except dns.tsig.BadSignature:
        raise Rejected(_unsigned_error(plain, dns.rcode.BADSIG, now), "BADSIG", keyname) from None
    except dns.tsig.BadTime:
        resp = _error_base(plain)
        other = struct.pack("!HI", now >> 32 & 0xFFFF, now & 0xFFFFFFFF)
        signed, _ = sign_wire(resp.to_wire(), key, tsig.mac, tsig.time_signed,
                              error=dns.rcode.BADTIME, other=other)
        raise Rejected(signed, "BADTIME", keyname) from None
    except Exception:
        # A TSIG that is not last, a non-zero error from a client...: malformed (RFC 8945 §5.2).
        raise Rejected(_bare_formerr(plain), "FORMERR", keyname) from None
    # `now` only dates our answers: the fudge check itself is dnspython's, in from_wire.
    query.tsig = None
    query.want_tsig_sign = False
    query.keyring = None
    return Signed(query, query.to_wire(), key, tsig.mac)


def _error_base(plain: dns.message.Message) -> dns.message.Message:
    plain.tsig = None
    resp = dns.message.make_response(plain)
    resp.set_rcode(dns.rcode.NOTAUTH)
    return resp


def _bare_formerr(plain: dns.message.Message) -> bytes:
    plain.tsig = None
    resp = dns.message.make_response(plain)
    resp.set_rcode(dns.rcode.FORMERR)
    return resp.to_wire()


def _unsigned_error(plain: dns.message.Message, error: int, now: int) -> bytes:
    """NOTAUTH with a TSIG whose MAC is empty (RFC 8945 §5.3.2: we cannot sign for a key the
    client does not share, or whose MAC did not check)."""
    tsig = plain.tsig[0]
    owner = plain.tsig.name
    rdata = dns.rdtypes.ANY.TSIG.TSIG(dns.rdataclass.ANY, dns.rdatatype.TSIG, tsig.algorithm, now,
                                      FUDGE, b"", plain.id, error, b"")
    return _append(_error_base(plain).to_wire(), owner, rdata)


def _append(wire: bytes, owner: dns.name.Name, rdata) -> bytes:
    """`wire` with one more additional RR (the TSIG, which must come last)."""
    body = rdata.to_wire()
    rr = owner.to_wire() + _TSIG_TYPE_CLASS + struct.pack("!IH", 0, len(body)) + body
    (arcount,) = struct.unpack("!H", wire[10:12])
    return wire[:10] + struct.pack("!H", arcount + 1) + wire[12:] + rr


def sign_wire(wire: bytes, key: dns.tsig.Key, request_mac: bytes | None, now: int, *, ctx=None,
              multi: bool = False, error: int = 0, other: bytes = b"") -> tuple[bytes, object]:
    """`wire` with a TSIG by `key` appended, and the context for the next message of a
    multi-message answer. The MAC covers the request MAC (first message), the message, and
    the TSIG variables, exactly as dnspython's Message.to_wire computes it."""
    (original_id,) = struct.unpack("!H", wire[:2])
    template = dns.rdtypes.ANY.TSIG.TSIG(dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, now,
                                         FUDGE, b"", original_id, error, other)
    rdata, next_ctx = dns.tsig.sign(wire, key, template, now, request_mac or None, ctx, multi)
    return _append(wire, key.name, rdata), next_ctx


class SignedResponder:
    """Stands in front of the Responder when keys are configured: a query signed with one of
    them gets its answer signed (a BIND or Knot secondary signs its SOA refresh queries and
    drops unsigned answers); a bad TSIG gets NOTAUTH; anything unsigned goes straight through.
    The same `handle(wire, tcp)` as the Responder, so the DNS server needs no change."""

    def __init__(self, responder, keyring: Keyring, log=None):
        self.responder = responder
        self.keyring = keyring
        self.log = log
        self._plain = responder.handle          # bound once: this sits on every query's path

    def __getattr__(self, name):                  # counts, invalidate...: the Responder's
        return getattr(self.responder, name)

    def handle(self, wire: bytes, tcp: bool = False) -> bytes | None:
        if wire.find(_TSIG_TYPE_CLASS, 12) < 0 or wire[2] & 0x80:      # has_tsig, inlined
            return self._plain(wire, tcp)
        try:
            signed = check(wire, self.keyring)
        except Rejected as e:
            if self.log is not None:
                self.log.debug("query refused: %s", e)
            return e.response
        if signed is None:
            return self._plain(wire, tcp)
        out = self._plain(signed.unsigned, tcp)
        if out is None:
            return None
        limit = 65535 if tcp else max(512, signed.query.payload if signed.query.edns >= 0 else 512)
        answer, _ = signed.sign(out)
        if len(answer) > limit:                   # the TSIG pushed it over: truncate, still signed
            resp = dns.message.make_response(signed.query)
            resp.flags |= dns.flags.TC | dns.flags.AA
            resp.set_rcode(out[3] & 0xF)
            answer, _ = signed.sign(resp.to_wire())
        return answer
