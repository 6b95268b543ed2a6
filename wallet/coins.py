"""The wallet's coin commands as functions of an open wallet, shared by the CLI (cli_coins)
and the wallet RPC daemon (rpc_methods): each command has one implementation, and the two
front ends only shape its answer for their users."""
from __future__ import annotations

from core.primitives import NAME_FIRSTUPDATE, NAME_UPDATE, Tx, TxOut

from wallet.errors import WalletError
from wallet.txbuild import fmt
from wallet.wallet import NoFunds


def coin_rows(w) -> list[dict]:
    """Every unspent coin of the wallet (name coins marked), mempool ones included."""
    return [{"txid": c.txid.hex(), "vout": c.vout, "value": fmt(c.value), "value_sat": c.value,
             "address": w.text(c.key.address), "kind": c.kind, "name": c.covenant.get("name"),
             "confirmations": c.confirmations(w.tip), "coinbase": c.coinbase} for c in w.coins]


def history_rows(w) -> list[dict]:
    """Transactions touching the wallet, oldest first (unconfirmed last), with the net
    change to the wallet and the name operation they carry."""
    rows = []
    mine = {k.address for k in w.derived()}
    pending = sorted({c.txid.hex() for c in w.coins if c.height < 0})
    for r in w.history + [{"txid": t, "height": -1} for t in pending]:
        tx = w.call("getrawtransaction", r["txid"], True)
        delta = sum(o["value_sat"] for o in tx["vout"] if w.parse_address(o["address"]) in mine)
        for i in tx["vin"]:
            if i.get("coinbase"):
                continue
            prev = w.call("getrawtransaction", i["txid"], True)["vout"][i["vout"]]
            if w.parse_address(prev["address"]) in mine:
                delta -= prev["value_sat"]
        ops = [o["covenant"] for o in tx["vout"] if o["covenant"]["type"] not in ("none", "burn")]
        if ops and "name" in ops[0]:        # the exact name: the view shows non-ASCII ones as hex
            raw = Tx.from_bytes(bytes.fromhex(tx["hex"]))
            name = next(o.covenant.items[0] for o in raw.outputs if o.covenant.type in (NAME_FIRSTUPDATE, NAME_UPDATE))
            ops[0] = ops[0] | {"name": name.decode("utf-8", "surrogateescape")}
        rows.append({"txid": r["txid"], "height": r["height"], "delta": fmt(delta), "delta_sat": delta,
                     "name_op": ops[0] if ops else None, "coinbase": bool(tx["vin"][0].get("coinbase"))})
    return rows


def send(w, to: bytes, amount: int, fee_rate: int, subtract_fee: bool = False) -> dict:
    """Pays `amount` base units to an address (change to a fresh change key). With
    `subtract_fee` the wallet spends exactly `amount` and the payee gets it less the fee
    (bitcoind's subtractfeefromamount): the fee depends on the inputs chosen, so the payment
    is rebuilt until the two agree (a few rounds at most: each round only adds inputs)."""
    pay = amount
    for _ in range(8):
        try:
            tx, fee = w.build([TxOut(pay, to)], fee_rate)
        except NoFunds as e:
            if not subtract_fee or pay - e.shortfall <= 0:
                raise
            pay -= e.shortfall
            continue
        if not subtract_fee or pay + fee <= amount:
            break
        pay = amount - fee
        if pay <= 0:
            raise WalletError(f"the amount does not cover the fee ({fmt(fee)})")
    else:
        raise WalletError("could not fit the fee into the amount; send a little less")
    w.save()
    txid = w.broadcast(tx)
    return {"txid": txid, "amount": fmt(pay), "amount_sat": pay, "fee": fmt(fee), "fee_sat": fee,
            "size": tx.size}
