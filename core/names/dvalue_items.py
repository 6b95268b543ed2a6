"""Parsers for the single items of a Namecoin ``d/`` value (IFA-0001, as ncdns reads them).

Each parser takes the raw JSON of one item and an ``Issues`` sink, and returns the item's
parsed payload: a tuple of validated entries. A bad entry is skipped and counted; the other
entries of the item survive. Names are only checked for syntax here: they are qualified
(made absolute) when the tree is rendered, because where a relative name points depends
on where the value ends up (imports can move it).

Pure: no I/O, no globals mutated.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from core.names.dnsname import is_owner_label, rel_name

# --- diagnostics -----------------------------------------------------------------------


@dataclass(slots=True)
class Issues:
    """Counts what interpretation had to skip. ``errors`` are invalid items (the suite's
    ``OUT 1``); ``warnings`` are things ncdns skips silently (a map key that is no DNS
    label, an import entry of the wrong shape, an import loop, a missing imported name)."""

    errors: int = 0
    warnings: int = 0
    notes: list[str] = field(default_factory=list)

    def error(self, why: str) -> None:
        self.errors += 1
        if len(self.notes) < 64:
            self.notes.append("error: " + why)

    def warn(self, why: str) -> None:
        self.warnings += 1
        if len(self.notes) < 64:
            self.notes.append("warning: " + why)


# --- scalars ---------------------------------------------------------------------------


def uint(raw: Any, bits: int) -> int | None:
    """A JSON number that is a whole number in [0, 2**bits); None otherwise."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, float):
        if not raw.is_integer():
            return None
        raw = int(raw)
    if isinstance(raw, int) and 0 <= raw < (1 << bits):
        return raw
    return None


def b64_bytes(raw: Any) -> bytes | None:
    """Strict standard base64 (padding required); None if invalid or empty."""
    if not isinstance(raw, str):
        return None
    try:
        data = base64.b64decode(raw.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError, binascii.Error):
        return None
    return data or None


def str_list(raw: Any) -> list[Any]:
    """The items that accept a bare string or an array of strings."""
    return list(raw) if isinstance(raw, list) else [raw]


# --- addresses -------------------------------------------------------------------------


# A dotted quad already in the one form ipaddress prints (no leading zeros, ASCII digits):
# it is its own canonical text. Every value carries addresses, and ipaddress spends ~10 us
# on each; anything else still goes through ipaddress, so what is accepted does not change.
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def ipv4_text(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    if _CANONICAL_IPV4.fullmatch(raw):
        return raw
    try:
        return str(ipaddress.IPv4Address(raw))
    except ValueError:
        return None


def ipv6_text(raw: Any) -> str | None:
    """Compressed lower-case IPv6. IPv4-mapped addresses belong in "ip" (as in ncdns)."""
    if not isinstance(raw, str) or "%" in raw:
        return None
    try:
        addr = ipaddress.IPv6Address(raw)
    except ValueError:
        return None
    if addr.ipv4_mapped is not None:
        return None
    return addr.compressed


def parse_ips(raw: Any, issues: Issues, v6: bool) -> tuple[str, ...]:
    out = []
    for entry in str_list(raw):
        text = ipv6_text(entry) if v6 else ipv4_text(entry)
        if text is None:
            issues.error(f"malformed {'ip6' if v6 else 'ip'} address: {entry!r:.60}")
        else:
            out.append(text)
    return tuple(out)


# --- names as items --------------------------------------------------------------------


def parse_ns(raw: Any, issues: Issues) -> tuple[str | None, ...]:
    """NS targets. An invalid one is kept as None: the owner meant to delegate, so the
    node still counts as a zone cut (ncdns does the same), it just loses that server."""
    if not isinstance(raw, (str, list)):
        issues.error("unknown ns field format")
        return ()
    out: list[str | None] = []
    for entry in str_list(raw):
        name = rel_name(entry)
        if name is None:
            issues.error(f"malformed name in ns field: {entry!r:.60}")
        if name not in out or name is None:
            out.append(name)
    return tuple(out)


def parse_target(raw: Any, issues: Issues, what: str) -> str | None:
    """alias / translate: one name; None (present, but inactive) when invalid."""
    name = rel_name(raw)
    if name is None:
        issues.error(f"malformed {what} name: {raw!r:.60}")
    return name


# --- structured items ------------------------------------------------------------------


def _rows(raw: Any, issues: Issues, what: str) -> list[list[Any]]:
    """An item that is an array of arrays; non-array rows are skipped and counted."""
    if not isinstance(raw, list):
        issues.error(f"malformed {what} field format")
        return []
    rows = []
    for row in raw:
        if isinstance(row, list):
            rows.append(row)
        else:
            issues.error(f"{what} entry must be an array")
    return rows


def parse_ds(raw: Any, issues: Issues) -> tuple[tuple[int, int, int, str], ...]:
    out = []
    for row in _rows(raw, issues, "ds"):
        if len(row) != 4:
            issues.error("ds entry must be [keytag, algorithm, digesttype, base64]")
            continue
        tag, alg, dtype = uint(row[0], 16), uint(row[1], 8), uint(row[2], 8)
        digest = b64_bytes(row[3])
        if tag is None or alg is None or dtype is None or digest is None:
            issues.error("malformed ds entry")
            continue
        out.append((tag, alg, dtype, digest.hex().upper()))
    return tuple(out)


def _tlsa_fields(row: list[Any]) -> tuple[int, int, int, str] | None:
    usage, selector, mtype = uint(row[0], 8), uint(row[1], 8), uint(row[2], 8)
    data = b64_bytes(row[3])
    if usage is None or selector is None or mtype is None or data is None:
        return None
    return (usage, selector, mtype, data.hex().upper())


def _port_label(raw: Any) -> str | None:
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        raw = int(raw)
    port = uint(raw, 16)
    return None if port is None else f"_{port}"


def _proto_label(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    label = "_" + raw.lower()
    return label if len(label) <= 63 and is_owner_label(label) else None


@dataclass(slots=True)
class TlsItem:
    here: tuple[tuple[int, int, int, str], ...]
    # legacy six-element entries, keyed by (port label, proto label)
    placed: dict[tuple[str, str], list[tuple[int, int, int, str]]]


def parse_tls(raw: Any, issues: Issues) -> TlsItem:
    """Current form: [usage, selector, matchtype, base64] (or {"dane": [...]}) for the node
    itself, normally placed under map._tcp.map._443. Older form: [port, proto, usage,
    selector, matchtype, base64] at the top, meaning a TLSA at _port._proto below it."""
    here: list[tuple[int, int, int, str]] = []
    placed: dict[tuple[str, str], list[tuple[int, int, int, str]]] = {}
    if not isinstance(raw, list):
        issues.error("malformed tls field format")
        return TlsItem((), {})
    for row in raw:
        if isinstance(row, dict) and isinstance(row.get("dane"), list):
            row = row["dane"]
        if not isinstance(row, list):
            issues.error("tls entry must be an array")
            continue
        if len(row) == 4:
            fields = _tlsa_fields(row)
            if fields is None:
                issues.error("malformed tls entry")
            else:
                here.append(fields)
        elif len(row) == 6:
            port, proto, fields = _port_label(row[0]), _proto_label(row[1]), _tlsa_fields(row[2:])
            if port is None or proto is None or fields is None:
                issues.error("malformed six-element tls entry")
            else:
                placed.setdefault((port, proto), []).append(fields)
        else:
            issues.error("tls entry must have four (or, older, six) elements")
    return TlsItem(tuple(here), placed)


# An SRV entry: (priority, weight, port, target, levels). ``levels`` counts the synthetic
# labels between the record's owner and the node the entry was written on (2 for the
# legacy "service" item), so relative targets keep meaning what their author meant.
SrvEntry = tuple[int, int, int, str, int]


def parse_srv(raw: Any, issues: Issues) -> tuple[SrvEntry, ...]:
    out = []
    for row in _rows(raw, issues, "srv"):
        if len(row) != 4:
            issues.error("srv entry must be [priority, weight, port, target]")
            continue
        prio, weight, port = uint(row[0], 16), uint(row[1], 16), uint(row[2], 16)
        target = rel_name(row[3])
        if prio is None or weight is None or port is None or target is None:
            issues.error("malformed srv entry")
            continue
        out.append((prio, weight, port, target, 0))
    return tuple(out)


def parse_service(raw: Any, issues: Issues) -> dict[tuple[str, str], list[SrvEntry]]:
    """Legacy "service": [[app, proto, priority, weight, port, target]] -> SRV records at
    _app._proto below the node, keyed by (app label, proto label)."""
    placed: dict[tuple[str, str], list[SrvEntry]] = {}
    for row in _rows(raw, issues, "service"):
        if len(row) != 6:
            issues.error("service entry must have six elements")
            continue
        app, proto = _proto_label(row[0]), _proto_label(row[1])
        prio, weight, port = uint(row[2], 16), uint(row[3], 16), uint(row[4], 16)
        target = rel_name(row[5])
        if None in (app, proto, prio, weight, port, target):
            issues.error("malformed service entry")
            continue
        placed.setdefault((app, proto), []).append((prio, weight, port, target, 2))
    return placed


def parse_mx(raw: Any, issues: Issues) -> tuple[tuple[int, str], ...]:
    out = []
    for row in _rows(raw, issues, "mx"):
        if len(row) != 2:
            issues.error("mx entry must be [preference, host]")
            continue
        pref, host = uint(row[0], 16), rel_name(row[1])
        if pref is None or host is None:
            issues.error("malformed mx entry")
            continue
        out.append((pref, host))
    return tuple(out)


def parse_sshfp(raw: Any, issues: Issues) -> tuple[tuple[int, int, str], ...]:
    out = []
    for row in _rows(raw, issues, "sshfp"):
        if len(row) != 3:
            issues.error("sshfp entry must be [algorithm, fptype, base64]")
            continue
        alg, fptype, fp = uint(row[0], 8), uint(row[1], 8), b64_bytes(row[2])
        if alg is None or fptype is None or fp is None:
            issues.error("malformed sshfp entry")
            continue
        out.append((alg, fptype, fp.hex().upper()))
    return tuple(out)


_TXT_SEGMENT = 255
_TXT_RDATA_MAX = 65535


def _segments(text: str) -> tuple[bytes, ...]:
    data = text.encode("utf-8", "surrogatepass")
    if not data:
        return (b"",)
    return tuple(data[i:i + _TXT_SEGMENT] for i in range(0, len(data), _TXT_SEGMENT))


def parse_txt(raw: Any, issues: Issues) -> tuple[tuple[bytes, ...], ...]:
    """"s" -> one record (split into 255-byte strings); ["a", "b"] -> two records;
    [["a", "b"]] -> one record of two strings (each at most 255 bytes)."""
    records: list[tuple[bytes, ...]] = []
    for entry in str_list(raw):
        if isinstance(entry, str):
            records.append(_segments(entry))
        elif isinstance(entry, list):
            parts = []
            for part in entry:
                data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else None
                if data is None or len(data) > _TXT_SEGMENT:
                    issues.error("txt string must be a string of at most 255 bytes")
                else:
                    parts.append(data)
            if parts:
                records.append(tuple(parts))
        else:
            issues.error("malformed txt value")
    out = []
    for rec in records:
        if sum(len(p) + 1 for p in rec) > _TXT_RDATA_MAX:
            issues.error("txt record longer than 65535 bytes")
        else:
            out.append(rec)
    return tuple(out)


# --- MinimaLT --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MinimaLT:
    """A MinimaLT service record: where to connect and the server's long-term identity key
    and (on-chain, possibly stale) ephemeral key, both Curve25519 public keys."""

    port: int
    id_key: bytes
    eph_key: bytes
    ip: str | None = None


def parse_minimalt(raw: Any, issues: Issues) -> MinimaLT | None:
    if not isinstance(raw, dict):
        issues.error("minimalT must be an object")
        return None
    port = uint(raw.get("port"), 16)
    id_key, eph_key = b64_bytes(raw.get("id_key")), b64_bytes(raw.get("eph_key"))
    ip = raw.get("ip")
    if ip is not None:
        ip = ipv4_text(ip) or ipv6_text(ip)
        if ip is None:
            issues.error("minimalT ip must be an IPv4 or IPv6 address")
            return None
    if not port:
        issues.error("minimalT port must be an integer in 1..65535")
        return None
    if id_key is None or len(id_key) != 32 or eph_key is None or len(eph_key) != 32:
        issues.error("minimalT keys must be base64 of 32-byte Curve25519 public keys")
        return None
    return MinimaLT(port=port, id_key=id_key, eph_key=eph_key, ip=ip)
