"""Names this wallet held and no longer does: expired ones and ones it transferred away.

Found from the chain, not from local notes: every transaction of the wallet's history (the
node's address index, receive and change addresses alike) is read in chain order, so a
restored wallet sees the same list. A name counts as held from a name output to one of the
wallet's addresses; a later name output of the same name to an address that is not the
wallet's, in the wallet's history, is the wallet giving it away. A transaction that only
pays the wallet while updating somebody else's name adds nothing: that name was never held."""
from __future__ import annotations

from core.names.rules import expiry_height
from core.primitives import NAME_FIRSTUPDATE, NAME_UPDATE, Tx

from wallet.names import display, name_text, show, warn_blocks


def last_outputs(w) -> dict[str, dict]:
    """name -> the last name output of it in the wallet's history, for every name held."""
    last: dict[str, dict] = {}
    for row in w.history:                       # confirmed, sorted by height then txid
        tx = Tx.from_bytes(bytes.fromhex(w.call("getrawtransaction", row["txid"])))
        for vout, o in enumerate(tx.outputs):   # from the raw tx: the exact name bytes
            if o.covenant.type not in (NAME_FIRSTUPDATE, NAME_UPDATE):
                continue
            name = name_text(o.covenant.items[0])
            mine = w.owns(o.address) is not None
            if not mine and not (name in last and last[name]["ismine"]):
                continue                        # somebody else's name in a tx that pays us
            value = o.covenant.items[-1]
            last[name] = {"name": name, "txid": row["txid"], "vout": vout, "height": row["height"],
                          "address": w.text(o.address), "value": display(value), "value_hex": value.hex(),
                          "ismine": mine}
    return last


def past_names(w, live: set[str]) -> list[dict]:
    """Rows for the names held once and not live now: status "expired" (the wallet's coin
    expired; anyone may register the name, or somebody did) or "transferred" (the wallet sent
    it to another address). Each row is the wallet's last output of the name, as Namecoin's
    name_list reports it, with expiry counted from that output."""
    out = []
    for name, last in sorted(last_outputs(w).items()):
        if name in live:
            continue
        end = expiry_height(last["height"], w.params)
        row = last | {"status": "expired" if last["ismine"] else "transferred", "expired_at": end,
                      "expires_in": end - w.tip, "expired": w.tip >= end}
        if last["ismine"]:
            # The wallet's name coin is gone with no spend of its own: expiry removed it. Say
            # whether somebody has registered the name since, so nobody is told to take it back.
            rec = show(w, name)
            if rec is not None and not rec["expired"] and rec["height"] > last["height"]:
                row["registered_again_at"] = rec["height"]
        out.append(row)
    return out


def owned_names(w) -> list[dict]:
    """Names whose current coin this wallet holds, with their status (ok, expiring), names it
    held once (expired, transferred: past_names), and registrations in progress."""
    out = []
    for c in w.coins:
        if c.kind not in ("name_firstupdate", "name_update"):
            continue
        name = c.covenant.get("name")
        rec = show(w, name) if name else None
        if rec is None:
            continue
        expiring = rec["expires_in"] <= warn_blocks(w.params)
        out.append({"name": name, "value": rec["value"], "value_hex": rec["value_hex"],
                    "address": rec["address"], "txid": rec["txid"], "vout": rec["vout"],
                    "height": rec["height"], "expires_in": rec["expires_in"], "pending": c.height < 0,
                    "status": "expiring" if expiring else "ok"})
    out += past_names(w, {r["name"] for r in out})
    for name, st in w.doc["pending"].items():
        out.append({"name": name, "pending_registration": st["state"],
                    "confirmations": st.get("confirmations", 0)})
    # A name_new hides its name: after a restore only the user can say what it was for.
    known = {st["new_txid"] for st in w.doc["pending"].values()}
    for c in w.coins:
        if c.kind == "name_new" and c.txid.hex() not in known:
            out.append({"name": None, "pending_registration": "name_new of an unknown name",
                        "txid": c.txid.hex(),
                        "hint": "run `name register NAME --value ...` with its name to continue"})
    return out
