"""Coin selection, fees, change and signing.

Payment coins are only plain (NONE covenant) outputs: name coins (NAME_NEW, FIRSTUPDATE,
UPDATE) carry a name or a commitment and are spent only on purpose, as the one name input of
a name operation. Immature coinbases are never selected.

The fee is rate x size of the signed transaction. Witnesses have fixed sizes (64 + 33 bytes)
so the size is known before signing; the change amount is sized with the largest integer
encoding, so the real tx is never larger than what was paid for.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from core.primitives import Tx, TxIn, TxOut
from core.signing import sign_tx

from wallet.errors import WalletError
from wallet.keys import WalletKey

COIN = 100_000_000
DEFAULT_FEE_RATE = 2          # base units per byte (the node relays from 1)
DUST = 1_000                  # change smaller than this goes to the fee instead
_MAX_U64 = 2 ** 64 - 1


@dataclass(frozen=True, slots=True)
class WalletCoin:
    txid: bytes
    vout: int
    value: int
    key: WalletKey
    covenant: dict             # the node's covenant view: {"type": "none" | "name_new" | ...}
    height: int                # -1 while unconfirmed
    coinbase: bool

    @property
    def kind(self) -> str:
        return self.covenant.get("type", "none")

    @property
    def outpoint(self) -> tuple[bytes, int]:
        return (self.txid, self.vout)

    def confirmations(self, tip: int) -> int:
        return 0 if self.height < 0 else tip - self.height + 1

    def spendable_payment(self, tip: int, maturity: int) -> bool:
        if self.kind != "none":
            return False
        if self.coinbase and (self.height < 0 or tip + 1 - self.height < maturity):
            return False
        return True


class InsufficientFunds(WalletError):
    """Carries how much is missing, so the wallet can say how many coins to get and where."""

    def __init__(self, message: str, shortfall: int):
        super().__init__(message)
        self.shortfall = shortfall


def parse_amount(text: str) -> int:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise WalletError(f"invalid amount {text!r}") from None
    units = d * COIN
    if d <= 0 or units != units.to_integral_value():
        raise WalletError(f"invalid amount {text!r} (positive, at most 8 decimals)")
    return int(units)


def fmt(units: int) -> str:
    sign = "-" if units < 0 else ""
    units = abs(units)
    return f"{sign}{units // COIN}.{units % COIN:08d}"


def _size(inputs: list[WalletCoin], outputs: list[TxOut]) -> int:
    ins = tuple(TxIn(c.txid, c.vout, bytes(64), bytes(33)) for c in inputs)
    return Tx(1, ins, tuple(outputs), 0).size


def select_and_sign(outputs: list[TxOut], candidates: list[WalletCoin], change_address: bytes,
                    fee_rate: int, *, fixed: list[WalletCoin] = ()) -> tuple[Tx, int]:
    """A signed tx paying `outputs`, spending all of `fixed` (a name coin) and as few of
    `candidates` as needed, largest first (fewest inputs, lowest fee). Returns (tx, fee)."""
    if fee_rate < 1:
        raise WalletError("--fee-rate must be at least 1 (base units per byte)")
    chosen = list(fixed)
    pool = sorted(candidates, key=lambda c: (c.height < 0, -c.value))
    need = sum(o.value for o in outputs)
    while True:
        have = sum(c.value for c in chosen)
        with_change = fee_rate * _size(chosen, outputs + [TxOut(_MAX_U64, change_address)])
        if have - need - with_change >= DUST:
            final = outputs + [TxOut(have - need - with_change, change_address)]
            fee = with_change
            break
        without = fee_rate * _size(chosen, outputs)
        if chosen and have - need >= without:
            final, fee = list(outputs), have - need
            break
        if not pool:
            total = sum(c.value for c in candidates) + sum(c.value for c in fixed)
            raise InsufficientFunds(f"insufficient funds: need {fmt(need + without)} "
                                    f"(with fee), have {fmt(total)} spendable", need + without - total)
        chosen.append(pool.pop(0))
    tx = Tx(1, tuple(TxIn(c.txid, c.vout) for c in chosen), tuple(final), 0)
    signed = sign_tx(tx, [(c.value, c.key.address) for c in chosen],
                     [c.key.secret for c in chosen], [c.key.pubkey for c in chosen])
    return signed, fee
