"""A wallet: the decrypted document, its keys, and its view of the chain through the node.

What the file keeps is small — the seed, how far each key chain has been used, registrations
in progress. Coins and history are never cached: each command asks the node's address index
again, so the wallet cannot drift from the chain (the chain is the log; DESIGN §2).
"""
from __future__ import annotations

import math
import re

from core.crypto import AddressError, decode_address, encode_address
from core.primitives import (COVENANT_NAMES, NAME_FIRSTUPDATE, NAME_NEW, NAME_UPDATE,
                                   Tx, TxOut)

from wallet import storage
from wallet.errors import WalletError
from wallet.keys import CHAINS, CHANGE, RECEIVE, Keychain, WalletKey, new_words, seed_from_words
from wallet.nodeclient import VERIFY_ALREADY_IN_CHAIN, NodeClient, NodeError
from wallet.txbuild import InsufficientFunds, WalletCoin, fmt, select_and_sign

GAP_LIMIT = 20
_HEXISH = re.compile(r"(?:[0-9a-f]{2})+")


class NoFunds(WalletError):
    """Not enough spendable coins; `shortfall` base units more would do."""

    def __init__(self, message: str, shortfall: int):
        super().__init__(message)
        self.shortfall = shortfall


class Rejected(WalletError):
    """The node refused a transaction this wallet built (its reason in the message)."""


class Wallet:
    def __init__(self, path: str, doc: dict, sealer: storage.Sealer, params, node: NodeClient | None):
        self.path = path
        self.doc = doc
        self.sealer = sealer
        self.params = params
        self.node = node
        self.keys = Keychain(bytes.fromhex(doc["seed"]))
        self.tip = -1
        self.coins: list[WalletCoin] = []
        self.history: list[dict] = []        # [{"txid", "height"}] confirmed, all chains

    # --- file ----------------------------------------------------------------------------------

    @staticmethod
    def create(path: str, passphrase: str, params, words: str | None = None) -> tuple["Wallet", str]:
        words = words or new_words()
        doc = {"version": storage.VERSION, "network": params.name,
               "seed": seed_from_words(words).hex(),
               "used": {str(c): 0 for c in CHAINS}, "pending": {}, "ekeys": {}, "values": {}}
        w = Wallet(path, doc, storage.Sealer(passphrase), params, None)
        return w, words

    @staticmethod
    def open(path: str, passphrase: str, params, node: NodeClient | None) -> "Wallet":
        doc, sealer = storage.load(path, passphrase)
        if doc.get("network") != params.name:
            raise WalletError(f"wallet {path} is for network {doc.get('network')}, not {params.name} "
                              f"(use --network {doc.get('network')})")
        return Wallet(path, doc, sealer, params, node)

    def save(self) -> None:
        storage.save(self.path, self.doc, self.sealer)

    # --- addresses -------------------------------------------------------------------------------

    def used(self, chain: int) -> int:
        return self.doc["used"][str(chain)]

    def _set_used(self, chain: int, n: int) -> None:
        self.doc["used"][str(chain)] = max(self.used(chain), n)

    def text(self, address: bytes) -> str:
        return encode_address(self.params.address_version, address)

    def parse_address(self, text: str) -> bytes:
        try:
            return decode_address(self.params.address_version, text)
        except AddressError as e:
            raise WalletError(str(e)) from None

    def receive_key(self) -> WalletKey:
        """The first receive address nobody has paid yet (shown again until it is used)."""
        return self.keys.key(RECEIVE, self.used(RECEIVE))

    def fresh_key(self, chain: int) -> WalletKey:
        """A never-handed-out key; the counter is saved before the key goes into a tx, so a
        crash cannot hand the same key to two registrations."""
        k = self.keys.key(chain, self.used(chain))
        self._set_used(chain, k.index + 1)
        self.save()
        return k

    def derived(self) -> list[WalletKey]:
        return [k for c in CHAINS for k in self.keys.keys(c, self.used(c) + GAP_LIMIT)]

    def owns(self, address: bytes) -> WalletKey | None:
        return self.keys.owner(address)

    # --- chain view ------------------------------------------------------------------------------

    def call(self, method: str, *params):
        if self.node is None:
            raise WalletError("no node connection")
        try:
            return self.node.call(method, *params)
        except NodeError as e:
            if e.code is None:
                raise WalletError(str(e)) from None
            raise

    def sync(self) -> None:
        """Gap-limit scan of every chain against the node's address index, then this wallet's
        coins (mempool included). A restore is just this scan on a fresh file."""
        self.tip = self.call("getblockcount")
        history: dict[str, int] = {}
        for chain in CHAINS:
            known = self.used(chain)
            if known:
                batch = self.keys.keys(chain, known)
                for r in self.call("getaddresshistory", [self.text(k.address) for k in batch]):
                    history[r["txid"]] = r["height"]
            # The gap window past the known range: one call for the whole window (usually
            # empty); only if it has history, one call per address to see which are used.
            start = known
            while start < self.used(chain) + GAP_LIMIT:
                window = self.keys.keys(chain, self.used(chain) + GAP_LIMIT)[start:]
                start += len(window)
                if not self.call("getaddresshistory", [self.text(k.address) for k in window]):
                    continue
                for k in window:
                    rows = self.call("getaddresshistory", self.text(k.address))
                    if rows:
                        self._set_used(chain, k.index + 1)
                        for r in rows:
                            history[r["txid"]] = r["height"]
        keys = self.derived()
        utxos = self.call("getaddressutxos", [self.text(k.address) for k in keys], True)
        self.coins = []
        for u in utxos:
            key = self.keys.owner(self.parse_address(u["address"]))
            self._set_used(key.chain, key.index + 1)    # unconfirmed receipts count as use
            cov = self._exact_name(u["covenant"], u["txid"], u["outputIndex"])
            self.coins.append(WalletCoin(bytes.fromhex(u["txid"]), u["outputIndex"], u["value_sat"], key,
                                         cov, u["height"], u["coinbase"]))
        self.history = sorted(({"txid": t, "height": h} for t, h in history.items()),
                              key=lambda r: (r["height"], r["txid"]))

    def _exact_name(self, cov: dict, txid: str, vout: int) -> dict:
        """The node shows a name as ASCII text, or as hex when it is not printable ASCII; text
        that looks like hex could be either, so the raw tx says which bytes it is."""
        name = cov.get("name")
        if name is None or not _HEXISH.fullmatch(name):
            return cov
        tx = Tx.from_bytes(bytes.fromhex(self.call("getrawtransaction", txid)))
        return cov | {"name": tx.outputs[vout].covenant.items[0].decode("utf-8", "surrogateescape")}

    # --- money ---------------------------------------------------------------------------------

    def balance(self) -> dict:
        maturity = self.params.coinbase_maturity
        out = {"confirmed": 0, "unconfirmed": 0, "immature": 0, "locked_in_names": 0}
        for c in self.coins:
            if c.kind != "none":
                out["locked_in_names"] += c.value
            elif c.coinbase and not c.spendable_payment(self.tip, maturity):
                out["immature"] += c.value
            elif c.height < 0:
                out["unconfirmed"] += c.value
            else:
                out["confirmed"] += c.value
        return out

    def payment_coins(self, exclude=()) -> list[WalletCoin]:
        return [c for c in self.coins if c.spendable_payment(self.tip, self.params.coinbase_maturity)
                and c.outpoint not in exclude]

    def fee_floor(self) -> int:
        """The node's minimum fee rate now (its rolling mempool floor, rounded up to whole units
        per byte; 0 without a node). A full pool raises it, and a transaction below it would be
        refused, so the wallet pays at least this, as Bitcoin Core's wallet does."""
        if self.node is None:
            return 0
        try:
            return max(0, math.ceil(float(self.node.call("getmempoolinfo")["mempoolminfee"])))
        except (NodeError, KeyError, TypeError, ValueError, OverflowError):
            return 0                # an older node, or none reachable: the broadcast will tell

    def build(self, outputs: list[TxOut], fee_rate: int, fixed: list[WalletCoin] = ()):
        """Fund, add change to a fresh change address, sign; at the rate asked for, or the
        node's floor if that is higher."""
        fee_rate = max(fee_rate, self.fee_floor())
        change = self.keys.key(CHANGE, self.used(CHANGE))
        try:
            tx, fee = select_and_sign(outputs, self.payment_coins({c.outpoint for c in fixed}),
                                      change.address, fee_rate, fixed=list(fixed))
        except InsufficientFunds as e:
            # A new owner holds a name coin but no coins for the fee: say what to get, and where.
            immature = self.balance()["immature"]
            wait = f" (or wait: {fmt(immature)} is immature coinbase)" if immature else ""
            raise NoFunds(f"{e}; need {fmt(e.shortfall)} more: receive coins at "
                          f"{self.text(self.receive_key().address)}{wait}", e.shortfall) from None
        if any(o.address == change.address for o in tx.outputs):
            self._set_used(CHANGE, change.index + 1)
        return tx, fee

    def broadcast(self, tx) -> str:
        try:
            self.call("sendrawtransaction", tx.to_bytes().hex())
        except NodeError as e:
            if e.code != VERIFY_ALREADY_IN_CHAIN:
                raise Rejected(f"node rejected the transaction: {e}") from None
        self._apply(tx)
        return tx.txid.hex()

    def _apply(self, tx) -> None:
        """Updates the coin view as the node's mempool now sees it, so a second tx built in
        the same command (a firstupdate falling due, then a name_new) cannot double-spend."""
        spent = {i.outpoint for i in tx.inputs}
        self.coins = [c for c in self.coins if c.outpoint not in spent]
        for n, o in enumerate(tx.outputs):
            key = self.owns(o.address)
            if key is not None:
                cov = {"type": COVENANT_NAMES.get(o.covenant.type, str(o.covenant.type))}
                if o.covenant.type == NAME_NEW:
                    cov["commitment"] = o.covenant.items[0].hex()
                elif o.covenant.type in (NAME_FIRSTUPDATE, NAME_UPDATE):
                    cov["name"] = o.covenant.items[0].decode("utf-8", "surrogateescape")
                self.coins.append(WalletCoin(tx.txid, n, o.value, key, cov, -1, False))

    def coin_at(self, txid: bytes, vout: int) -> WalletCoin | None:
        for c in self.coins:
            if c.outpoint == (txid, vout):
                return c
        return None
