"""Talking to a dotbit node the way Namecoin clients do: through python-bitcoinrpc's
AuthServiceProxy (the client of Namecoin's own scripts, ncdns-era tools and ElectrumX ports),
plus the name registrations Namecoin Core's tests do with its wallet (name_new,
name_firstupdate, name_update), built here from signed transactions because the node holds no
keys. Regtest numbers: a name_new must be 12 blocks deep, names expire 30 blocks after their
last update."""
from __future__ import annotations

import os

import pytest
from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException

from core.params import REGTEST
from support.chain import Key
from support.name_txs import Funds, firstupdate, name_new, update

MIN_DEPTH = 12


def proxy(node, timeout: int = 60) -> AuthServiceProxy:
    """A fresh AuthServiceProxy on the node's cookie (the node writes a new one per start)."""
    with open(os.path.join(node.datadir, ".cookie")) as f:
        creds = f.read().strip()
    return AuthServiceProxy(f"http://{creds}@127.0.0.1:{node.rpc_port}", timeout=timeout)


def assert_rpc_error(code: int, fragment: str, fn, *args):
    """As Namecoin's assert_raises_rpc_error: this code, and `fragment` in the message; returns the error."""
    with pytest.raises(JSONRPCException) as e:
        fn(*args)
    err = e.value.error
    assert err["code"] == code, err
    assert fragment in err["message"], err
    return err


class Names:
    """One key's coins and the name transactions it has sent, for the replayed tests."""

    def __init__(self, node, seed: int = 77):
        self.node = node
        self.key = Key.from_seed(seed)
        self.rpc = proxy(node)
        self.news: dict[bytes, tuple] = {}      # name -> (name_new tx, rand)
        self.last: dict[bytes, tuple] = {}      # name -> (tx, vout) of its current name coin
        self.funds: Funds | None = None

    def reconnect(self) -> None:
        self.rpc = proxy(self.node)

    def generate(self, n: int) -> None:
        self.rpc.generatetoaddress(n, Key.from_seed(9999).addr_text())

    def fund(self, coins: int = 60) -> None:
        """`coins` mature coinbases for the key, and the chain 100 blocks past them."""
        self.rpc.generatetoaddress(coins, self.key.addr_text())
        self.generate(100)
        utxos = self.rpc.getaddressutxos(self.key.addr_text())
        self.funds = Funds(self.key, [(bytes.fromhex(u["txid"]), u["outputIndex"], u["value_sat"])
                                      for u in utxos if u["covenant"]["type"] == "none"])

    def send(self, tx) -> str:
        return self.rpc.sendrawtransaction(tx.to_bytes().hex())

    def name_new(self, name: bytes) -> str:
        rand = bytes([len(self.news) % 256]) * 20
        tx = name_new(self.funds, name, rand)
        self.news[name] = (tx, rand)
        return self.send(tx)

    def firstupdate(self, name: bytes, value: bytes) -> str:
        new, rand = self.news.pop(name)
        tx = firstupdate(self.funds, new, name, rand, value, REGTEST, self.rpc.getblockcount() + 1)
        self.last[name] = (tx, 0)
        return self.send(tx)

    def update(self, name: bytes, value: bytes, to=None) -> str:
        prev, vout = self.last[name]
        tx = update(self.funds, prev, vout, name, value, self.key, to=to)
        self.last[name] = (tx, 0)
        return self.send(tx)

    def register(self, pairs: list[tuple[bytes, bytes]]) -> list[str]:
        """name_new each, wait the regtest depth, then send every firstupdate (unmined)."""
        for name, _ in pairs:
            self.name_new(name)
        self.generate(MIN_DEPTH)
        return [self.firstupdate(name, value) for name, value in pairs]
