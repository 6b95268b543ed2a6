"""The addresses and TLSA rows of a target, each taken from an answer the light client
verified (resolver signature, name proofs against our proof-of-work-checked headers): an
unverified answer never reaches the connection, since every light-client failure stops here
as CheckFailed("resolve", ...)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from connect.target import CheckFailed, Target
from light.headers import StoreError
from light.verdict import Verified, VerifyError


@dataclass(frozen=True, slots=True)
class Lookup:
    addresses: tuple[str, ...]       # IPv4 first, then IPv6, in the order the name lists them
    tlsa: tuple[str, ...]            # rdatas in presentation form ("3 1 1 HEX")
    height: int                      # the block the TLSA answer was proven at


async def lookup(client, target: Target, fresh_sync: bool, say) -> Lookup:
    """Asks `client` (a light.client.LightClient) for A, AAAA and TLSA; `say(line)` is called
    once each check has really passed."""
    v4 = await _verified(client, target.fqdn, "A", fresh_sync)
    v6 = await _verified(client, target.fqdn, "AAAA", False)
    addresses = tuple(_addresses(v4, "A") + _addresses(v6, "AAAA"))
    if not addresses:
        raise CheckFailed("resolve", f"{target.fqdn} has no A or AAAA record (proven at height {v4.height})")
    say(f"resolve: {target.fqdn} A/AAAA {', '.join(addresses)} (signature, header in our chain, "
        f"proofs of {_proven(v4, v6)} at height {v4.height})")
    t = await _verified(client, target.tlsa_owner, "TLSA", False, absent_ok=True)
    rows = tuple(r.rdata for r in t.records if r.rtype == "TLSA" and r.owner == target.tlsa_owner)
    if not rows:
        raise CheckFailed("tlsa", f"{target.tlsa_owner} has no TLSA row (proven absent at height {t.height}): "
                                  f"nothing to check the server's certificate against, so no connection")
    via = f"{t.source} source, {t.alt_detail}" if t.source != "chain" else f"proofs of {_proven(t)}"
    say(f"resolve: {target.tlsa_owner} TLSA, {len(rows)} row(s) ({via} at height {t.height})")
    return Lookup(addresses, rows, t.height)


async def _verified(client, fqdn: str, qtype: str, fresh_sync: bool, absent_ok: bool = False) -> Verified:
    """A proofs-checked answer; a proven absence is an error unless `absent_ok` (the caller
    then finds no records in it)."""
    try:
        v = await client.resolve(fqdn, qtype, fresh_sync=fresh_sync)
    except VerifyError as e:
        raise CheckFailed("resolve", f"{fqdn} {qtype}: {e}") from None
    except StoreError as e:
        raise CheckFailed("resolve", f"header store: {e}") from None
    if v.trust != "proofs":
        raise CheckFailed("resolve", f"{fqdn} {qtype}: answer not checked by proofs")   # never configured so
    if v.expired:
        raise CheckFailed("resolve", f"{fqdn}: {', '.join(v.expired)} expired at height {v.height}")
    if v.status != "NOERROR" and not absent_ok:
        raise CheckFailed("resolve", f"{fqdn} does not exist (proven absent at height {v.height})")
    return v


def _addresses(v: Verified, rtype: str) -> list[str]:
    out = []
    for r in v.records:
        if r.rtype == rtype:
            try:
                out.append(str(ipaddress.ip_address(r.rdata)))
            except ValueError:
                raise CheckFailed("resolve", f"{r.owner} {rtype} {r.rdata!r:.60} is not an address") from None
    return out


def _proven(*answers: Verified) -> str:
    names = sorted({n.decode("utf-8", "replace") for v in answers for n in v.proven})
    return ", ".join(names) or "none"
