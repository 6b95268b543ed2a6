"""wallet/name_history.last_outputs: which names a wallet held, from its history's raw txs.
The wallet side is a small stand-in holding real encoded transactions (the functional tests
in tests/functional/wallet run the same code against a node)."""
from __future__ import annotations

from core.names.ops import update_output
from core.primitives import Tx, TxIn, TxOut
from wallet.name_history import last_outputs

OURS, OURS2, THEIRS, OTHER = b"\x01" * 20, b"\x02" * 20, b"\x03" * 20, b"\x04" * 20


class History:
    def __init__(self, txs: list[tuple[int, Tx]]):
        self.raw = {tx.txid.hex(): tx.to_bytes().hex() for _, tx in txs}
        self.history = [{"txid": tx.txid.hex(), "height": h} for h, tx in txs]

    def call(self, method, txid):
        assert method == "getrawtransaction"
        return self.raw[txid]

    def owns(self, address):
        return 0 if address in (OURS, OURS2) else None

    def text(self, address):
        return address.hex()


def tx(n: int, *outs: TxOut) -> Tx:
    return Tx(1, (TxIn(bytes([n]) * 32, 0, b"\x05" * 64, b"\x02" + b"\x06" * 32),), outs)


def test_a_name_in_a_tx_that_only_pays_the_wallet_is_not_listed():
    paid = tx(1, TxOut(5, OURS), update_output(b"d/theirs", b"v", THEIRS, 1))
    assert last_outputs(History([(10, paid)])) == {}


def test_held_then_transferred_then_back():
    got = tx(1, update_output(b"d/x", b"a", OURS, 1))
    sent = tx(2, update_output(b"d/x", b"b", OTHER, 1))
    rows = last_outputs(History([(10, got), (11, sent)]))
    assert (rows["d/x"]["value"], rows["d/x"]["ismine"], rows["d/x"]["height"]) == ("b", False, 11)
    back = tx(3, update_output(b"d/x", b"c", OURS2, 1))
    rows = last_outputs(History([(10, got), (11, sent), (12, back)]))
    assert (rows["d/x"]["value"], rows["d/x"]["ismine"], rows["d/x"]["vout"]) == ("c", True, 0)


def test_a_transferred_name_then_updated_by_its_owner_in_a_tx_paying_us_stays_as_sent():
    got = tx(1, update_output(b"d/y", b"a", OURS, 1))
    sent = tx(2, update_output(b"d/y", b"b", OTHER, 1))
    later = tx(3, TxOut(5, OURS), update_output(b"d/y", b"theirs now", OTHER, 1))
    rows = last_outputs(History([(10, got), (11, sent), (12, later)]))
    assert (rows["d/y"]["value"], rows["d/y"]["txid"]) == ("b", sent.txid.hex())
