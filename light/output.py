"""What `dotbit-resolve` prints: a verified answer as text or JSON, and the notes about
sources. Every line states what was checked and by what; nothing is taken from the
resolver's own labels."""
from __future__ import annotations

import base64
import sys

from core.envelope import to_jsonable
from light.verdict import Verified


def print_notes(client) -> None:
    """Sources that fed a lower-work chain or could not be reached: said, not fatal, since the
    chain we kept has the most work. (A failed check prints only its own line.)"""
    for line in client.notes:
        print(f"dotbit-resolve: note: {line}", file=sys.stderr)


def found(v: Verified, shown: str) -> bool:
    return bool({"MINIMALT": v.minimalt, "TLS": v.tls}.get(shown, v.records))


def as_json(v: Verified, shown: str, tip) -> dict:
    out = {"question": {"name": v.fqdn, "type": shown}, "status": v.status, "height": v.height,
           "block": v.block_hash.hex(), "our_tip": tip, "trust": v.trust,
           "records": [[r.owner, r.rtype, r.rdata] for r in v.records], "tls": v.tls,
           "minimalt": [mlt_json(m) for m in v.minimalt], "expired": v.expired,
           "proven": sorted(n.decode("utf-8", "replace") for n in v.proven), "source": v.source}
    if v.source != "chain":
        out["source_trust"], out["source_checked"] = v.alt_trust, v.alt_detail
    if v.trust == "dane":
        out["checked"] = v.alt_detail
        for k in ("height", "block", "our_tip", "proven", "expired"):
            out.pop(k)                   # the chain says nothing about names outside bit.
    if v.trust == "pinned":
        out["warning"] = "trust pinned: name proofs were NOT checked, the resolver's signature alone vouches"
    return to_jsonable(out)


def mlt_json(m: dict) -> dict:
    out = {k: m.get(k) for k in ("owner", "ip", "port")}
    for k in ("id_key", "eph_key"):
        out[k] = base64.b64encode(m[k]).decode() if isinstance(m.get(k), bytes) else m.get(k)
    out["eph_source"] = "owner-signed update" if m.get("eph_update") else "on-chain value"
    return out


def as_text(v: Verified, shown: str, tip) -> str:
    lines = [f";; dotbit-resolve {v.fqdn} {shown}",
             f";; status: {v.status}, answered at height {v.height} block {v.block_hash.hex()}"]
    if v.trust == "dane":
        lines = [f";; dotbit-resolve {v.fqdn} {shown}", f";; status: {v.status}, outside bit.: from the resolver's "
                 f"DANE zones, trust {v.alt_trust}",
                 # an absence carries no evidence: say so, never "checked"
                 (";; NOT checked: " if v.alt_trust == "resolver-says-absent" else ";; checked: ") + v.alt_detail]
        return "\n".join(lines + [f"{r.owner}\tIN\t{r.rtype}\t{r.rdata}" for r in v.records])
    if v.trust == "pinned":
        lines.append(";; TRUST: pinned resolver key only -- name proofs NOT checked (DNSNMC-style)")
    else:
        names = ", ".join(sorted(n.decode("utf-8", "replace") for n in v.proven)) or "none"
        lines.append(f";; verified: signature, header in our chain (tip {tip}), proofs of {names}")
    if v.source != "chain":
        lines.append(f";; TLSA at {v.fqdn} from the {v.source} source, checked here: {v.alt_detail}")
    for name in v.expired:
        lines.append(f";; EXPIRED: {name} is expired at height {v.height}")
    if v.status == "NXDOMAIN":
        lines.append(f";; {v.fqdn} does not exist" + (" (its name has expired)" if v.expired else "")
                     + (" -- proven absent" if v.trust == "proofs" else ""))
    if v.status == "NOERROR" and not found(v, shown):     # said, or the output is just the header
        lines.append(f"; {v.fqdn} {shown}: " + ("proven absent (checked: proofs)" if v.trust == "proofs"
                                                else f"absent (checked: {v.trust} trust only, no proofs)"))
    if shown == "TLS":
        lines += [f"{owner}\tIN\tTLSA\t{rdata}" for owner, rdata in v.tls]
    elif shown == "MINIMALT":
        for m in v.minimalt:
            mj = mlt_json(m)
            ip = f"ip={mj['ip']} " if mj["ip"] else ""
            lines.append(f"{mj['owner']}\tMINIMALT\t{ip}port={mj['port']} id_key={mj['id_key']} "
                         f"eph_key={mj['eph_key']} ({mj['eph_source']})")
    else:
        lines += [f"{r.owner}\tIN\t{r.rtype}\t{r.rdata}" for r in v.records]
    return "\n".join(lines)
