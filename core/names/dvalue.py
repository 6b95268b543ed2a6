"""Interpret Namecoin ``d/`` domain values (IFA-0001, as ncdns does) into DNS records.

``lookup_records("d/example", lookup)`` gives every record of ``example.bit.`` and of the
subdomains its ``map`` defines; ``records_for_qname("www.example.bit.", lookup)`` gives the
part of that tree a resolver needs to answer for one query name. ``lookup`` is injected:
it maps a Namecoin name to its JSON value (or None), so this module does no I/O.

Rules, in short (details in dvalue_tree / dvalue_items):
- Items: ip, ip6, ns (legacy alias "dns"), alias (CNAME), translate (DNAME), ds, tls
  (TLSA), txt, srv, legacy service, mx, sshfp, minimalT; map (with "" and "*"), import,
  legacy delegate. info, email and unknown keys are ignored.
- At one owner, ns suppresses everything but DS; translate suppresses everything else but
  DS; alias suppresses the other data at that owner but not its subdomains. Below a zone
  cut (ns) only glue (A/AAAA of in-zone nameservers) is given; below a DNAME nothing.
- Relative names are relative to the parent of the node they sit on (to the domain itself
  at the top level); "@" is the domain apex; "x.@" is below it.
- Invalid items are skipped and counted in ``errors``, never fatal; ``warnings`` counts
  what ncdns skips silently (bad map keys, malformed import entries, loops, missing names).
- minimalT is validated and returned parsed in ``Result.minimalt`` (by owner). Its TXT
  rendering, ``"v=minimalt1" ["ip=.."] "port=.." "id_key=.." "eph_key=.."`` (keys base64,
  ``minimalt_txt_rdata``, with the freshest ephemeral key), is served at
  ``_minimalt._udp.OWNER`` only (docs/protocol.md), never mixed into the owner's own TXT
  (the owner's `txt` item is what a TXT question at the owner asks for).

Records are presentation format as the conformance suite writes them (DS/TLSA/SSHFP hex
upper case, names absolute), de-duplicated and sorted. As in ncdns (and the suite's
ds-array-2), a DS digest is not checked against its digest type's length: a DNS layer that
re-parses rdata strictly (dnspython does) must expect to drop such a record.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping

from core.names.dnsname import is_domain_label, is_owner_label, qualify, wire_length_ok
from core.names.dvalue_items import Issues, MinimaLT, ipv4_text, ipv6_text, str_list
from core.names.dvalue_tree import _DECODER, _PLAIN, Builder, Node, find

__all__ = ["Record", "Result", "MinimaLT", "lookup_records", "records_for_qname",
           "minimalt_txt_rdata", "DEFAULT_MAX_IMPORT_DEPTH", "DEFAULT_MAX_LOADS"]

Lookup = Callable[[str], "str | None"]

DEFAULT_MAX_IMPORT_DEPTH = 4
DEFAULT_MAX_LOADS = 64
TLD = "bit."


@dataclass(frozen=True, slots=True)
class Record:
    owner: str  # absolute, e.g. "www.example.bit."
    rtype: str  # "A", "AAAA", "CNAME", "DNAME", "NS", "DS", "TLSA", "TXT", "SRV", "MX", "SSHFP"
    rdata: str  # presentation format

    def to_text(self) -> str:
        """The suite's comparison line: ``owner IN TYPE rdata``."""
        return f"{self.owner} IN {self.rtype} {self.rdata}"


@dataclass(frozen=True, slots=True)
class Result:
    records: tuple[Record, ...]
    errors: int  # invalid items skipped
    names_used: tuple[str, ...]  # every name read (present or absent), base name first
    minimalt: Mapping[str, MinimaLT] = field(default_factory=lambda: MappingProxyType({}))
    warnings: int = 0  # items ignored the way ncdns ignores them silently
    notes: tuple[str, ...] = ()  # human-readable reasons (first 64)


def lookup_records(name: str, lookup: Lookup, *,
                   max_import_depth: int = DEFAULT_MAX_IMPORT_DEPTH,
                   max_loads: int = DEFAULT_MAX_LOADS) -> Result:
    """All records of the domain ``name`` ("d/example") and its mapped subdomains."""
    if not name.startswith("d/") or not is_domain_label(name[2:]):
        raise ValueError(f"not a d/ name that maps to a .bit domain: {name!r}")
    apex = name[2:] + "." + TLD
    builder = Builder(lookup, max_import_depth=max_import_depth, max_loads=max_loads)
    root = builder.root(name)
    renderer = _Renderer(apex, builder.issues)
    if root is not None:
        renderer.tree(root, apex)
    return renderer.result(builder)


def bit_labels(q: str) -> list[str] | None:
    """The labels of `q` (lower case, ending in a dot) if it is a name under bit. whose d/ name
    records_for_qname reads first ("d/" + labels[-2]); None if it reads nothing for it."""
    labels = q[:-1].split(".")
    if len(labels) < 2 or labels[-1] + "." != TLD or not is_domain_label(labels[-2]) or "" in labels:
        return None
    return labels


def records_for_qname(qname: str, lookup: Lookup, *,
                      max_import_depth: int = DEFAULT_MAX_IMPORT_DEPTH,
                      max_loads: int = DEFAULT_MAX_LOADS, quick: bool = True) -> Result:
    """What a resolver needs to answer for ``qname`` (e.g. "www.example.bit."): the records
    at ``qname`` and below it. Map labels are followed down from the domain; a missing
    label falls back to a "*" sibling (records then carry the queried owner). If a node
    above ``qname`` is a zone cut, the result is the referral (NS, DS and glue at the cut);
    if it has a DNAME, the result is that DNAME. No records at all means the name does not
    exist. ``names_used`` lists every name the answer was built from. ``quick=False`` skips
    plain_records (tests compare the two)."""
    q = qname.lower()
    q = q if q.endswith(".") else q + "."
    labels = bit_labels(q)
    builder = Builder(lookup, max_import_depth=max_import_depth, max_loads=max_loads)
    if labels is None:
        return _Renderer("", builder.issues).result(builder)
    apex = labels[-2] + "." + TLD
    if quick and (done := plain_records(builder, labels, apex)) is not None:
        return done
    root = builder.root("d/" + labels[-2])
    renderer = _Renderer(apex, builder.issues)
    if root is None:
        return renderer.result(builder)

    node, owner = root, apex
    for label in reversed(labels[:-2]):
        if node.items.get("ns") or node.items.get("translate") is not None:
            renderer.tree(node, owner)  # a cut or DNAME renders without its subtree
            return renderer.result(builder)
        child = node.children.get(label)
        if child is None:
            child = node.children.get("*")
        if child is None:
            return renderer.result(builder)
        node, owner = child, label + "." + owner
    renderer.tree(node, owner)
    return renderer.result(builder)


def plain_records(builder: Builder, labels: list[str], apex: str) -> Result | None:
    """records_for_qname's Result for the commonest values, read straight off the JSON: an
    object of "ip", "ip6" and "map" only, whose map entries are objects of "ip" and "ip6" under
    lower-case owner labels, every address valid. Anything else (any issue the general path
    would count included) returns None, and the general interpreter reads the value the builder
    has already read. Every uncached answer interprets a value; the general path spent ~20 us on
    this shape."""
    text = builder.read("d/" + labels[-2])
    if text is None:
        return Result((), 0, tuple(builder.names_used))
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or not _PLAIN.issuperset(value):
        return None
    kids = value.get("map")
    if kids is None:
        kids = {}
    elif not isinstance(kids, dict) or not all(is_owner_label(k) and isinstance(v, dict) and _LEAF.issuperset(v)
                                               for k, v in kids.items()):
        return None             # "" and "*" merge or stand in, upper case merges, a bad key warns
    owners = {apex: set()}
    if not _addresses(value, apex, owners[apex]):
        return None
    for label, leaf in kids.items():
        owner = label + "." + apex
        if not (_addresses(leaf, owner, owners.setdefault(owner, set())) and wire_length_ok(owner)):
            return None
    below = labels[:-2]         # the whole value is read first: its issues count for every query
    if not below:
        records = set().union(*owners.values())
    else:
        records = owners.get(below[0] + "." + apex, set()) if len(below) == 1 else set()
    return Result(tuple(sorted(records, key=lambda r: (r.owner, r.rtype, r.rdata))), 0,
                  tuple(builder.names_used))


_LEAF = frozenset({"ip", "ip6"})


def _addresses(node: dict, owner: str, records: set) -> bool:
    """A and AAAA records of `node`'s ip and ip6 into `records`; False when an address is one
    the general path reports as malformed."""
    for key, rtype, text_of in (("ip", "A", ipv4_text), ("ip6", "AAAA", ipv6_text)):
        raw = node.get(key)
        if raw is None:
            continue
        for entry in str_list(raw):
            text = text_of(entry)
            if text is None:
                return False
            records.add(Record(owner, rtype, text))
    return True


def minimalt_txt_rdata(item: MinimaLT, eph_key: bytes | None = None) -> str:
    """The TXT rendering of a minimalT item, optionally with a fresher ephemeral key."""
    eph = item.eph_key if eph_key is None else eph_key
    parts = ["v=minimalt1"]
    if item.ip is not None:
        parts.append(f"ip={item.ip}")
    parts += [f"port={item.port}", "id_key=" + base64.b64encode(item.id_key).decode(),
              "eph_key=" + base64.b64encode(eph).decode()]
    return _txt_rdata(tuple(p.encode() for p in parts))


def _txt_rdata(strings: tuple[bytes, ...]) -> str:
    return " ".join('"' + _txt_escape(s) + '"' for s in strings)


def _txt_escape(data: bytes) -> str:
    out = []
    for b in data:
        if b in (0x22, 0x5C):
            out.append("\\" + chr(b))
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


class _Renderer:
    """Turns a value tree into records for one apex."""

    def __init__(self, apex: str, issues: Issues) -> None:
        self.apex = apex
        self.issues = issues
        self.records: set[Record] = set()
        self.minimalt: dict[str, MinimaLT] = {}

    def result(self, builder: Builder) -> Result:
        return Result(
            records=tuple(sorted(self.records, key=lambda r: (r.owner, r.rtype, r.rdata))),
            errors=self.issues.errors,
            names_used=tuple(builder.names_used),
            minimalt=MappingProxyType(dict(sorted(self.minimalt.items()))),
            warnings=self.issues.warnings,
            notes=tuple(self.issues.notes),
        )

    def add(self, owner: str, rtype: str, rdata: str) -> None:
        self.records.add(Record(owner, rtype, rdata))

    def target(self, name: str, owner: str) -> str | None:
        absolute = qualify(name, owner, self.apex, owner == self.apex)
        if absolute is None:
            self.issues.error(f"name too long once made absolute: {name!r:.60}")
        return absolute

    def tree(self, node: Node, owner: str) -> None:
        if not wire_length_ok(owner):
            self.issues.error(f"owner name too long: {owner[:60]!r}")
            return
        kind = self.node(node, owner)
        if kind == "cut":
            self.glue(node, owner)
        elif kind != "dname":
            for label, child in sorted(node.children.items()):
                self.tree(child, label + "." + owner)

    def node(self, node: Node, owner: str) -> str:
        """Records owned by ``owner`` itself; returns "cut", "dname", "alias" or "data"."""
        it = node.items
        kind = "data"
        if it.get("ns"):
            kind = "cut"
            for name in it["ns"]:
                absolute = None if name is None else self.target(name, owner)
                if absolute is not None:
                    self.add(owner, "NS", absolute)
        elif it.get("translate") is not None:
            kind = "dname"
            absolute = self.target(it["translate"], owner)
            if absolute is not None:
                self.add(owner, "DNAME", absolute)
        elif it.get("alias") is not None:
            kind = "alias"
            absolute = self.target(it["alias"], owner)
            if absolute is not None:
                self.add(owner, "CNAME", absolute)
        else:
            self.data(it, owner)
        for tag, alg, dtype, digest in it.get("ds", ()):
            self.add(owner, "DS", f"{tag} {alg} {dtype} {digest}")
        return kind

    def data(self, it: dict, owner: str) -> None:
        for addr in it.get("ip", ()):
            self.add(owner, "A", addr)
        for addr in it.get("ip6", ()):
            self.add(owner, "AAAA", addr)
        for strings in it.get("txt", ()):
            self.add(owner, "TXT", _txt_rdata(strings))
        for pref, host in it.get("mx", ()):
            absolute = self.target(host, owner)
            if absolute is not None:
                self.add(owner, "MX", f"{pref} {absolute}")
        for prio, weight, port, host, levels in it.get("srv", ()):
            written_on = owner.split(".", levels)[levels] if levels else owner
            absolute = self.target(host, written_on)
            if absolute is not None:
                self.add(owner, "SRV", f"{prio} {weight} {port} {absolute}")
        for usage, selector, mtype, data in it.get("tls", ()):
            self.add(owner, "TLSA", f"{usage} {selector} {mtype} {data}")
        for alg, fptype, fp in it.get("sshfp", ()):
            self.add(owner, "SSHFP", f"{alg} {fptype} {fp}")
        mlt = it.get("minimalT")
        if mlt is not None:      # its TXT lives at _minimalt._udp.OWNER (core/records.py), not here
            self.minimalt[owner] = mlt

    def glue(self, cut: Node, owner: str) -> None:
        """Addresses of the cut's nameservers that lie inside it, from the value's map."""
        suffix = "." + owner
        for name in cut.items["ns"]:
            absolute = None if name is None else qualify(name, owner, self.apex, owner == self.apex)
            if absolute is None or not absolute.endswith(suffix):
                continue
            host = find(cut, absolute[: -len(suffix)])
            if host is None:
                continue
            for addr in host.items.get("ip", ()):
                self.add(absolute, "A", addr)
            for addr in host.items.get("ip6", ()):
                self.add(absolute, "AAAA", addr)
