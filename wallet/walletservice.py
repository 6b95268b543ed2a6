"""The open wallet behind the RPC daemon: locked or unlocked, synced before each call, and
its pending registrations advanced in the background.

Locked means what it means for the file: the decrypted document and the key derived from
the passphrase are dropped, so nothing of the seed stays in the process. namecoind can still
list a locked wallet's coins because only its private keys are encrypted; here the whole
file is (wallet/storage.py), so a locked daemon answers every wallet method with -13 and
forwards the rest. `walletpassphrase` opens it again for a number of seconds.

Every method of this class runs on the daemon's one wallet thread.
"""
from __future__ import annotations

import logging
import threading
import time

from wallet import names as N
from wallet.rpc_args import PASSPHRASE_INCORRECT, UNLOCK_NEEDED, WALLET_ERROR, RPCError
from wallet.storage import StorageError
from wallet.wallet import Wallet

log = logging.getLogger("dotbit.wallet.rpc")
LOCKED_TEXT = "Error: Please enter the wallet passphrase with walletpassphrase first."
MAX_UNLOCK = 100_000_000            # bitcoind's cap on walletpassphrase's timeout (seconds)


class WalletService:
    def __init__(self, path: str, params, node, fee_rate: int, clock=time.monotonic):
        self.path = path
        self.params = params
        self.node = node                    # a NodeClient used by this thread only
        self.fee_rate = fee_rate
        self.clock = clock
        self._wallet: Wallet | None = None
        self._until: float | None = None    # None: unlocked until walletlock
        self.woken = threading.Event()       # set by name_register: advance now, not at the next block
        self.last_tip: int | None = None

    # --- locking ---------------------------------------------------------------------------------

    def unlock(self, passphrase: str, seconds: int | None) -> None:
        try:
            w = Wallet.open(self.path, passphrase, self.params, self.node)
        except StorageError as e:
            if "wrong passphrase" in str(e):
                raise RPCError(PASSPHRASE_INCORRECT, "Error: The wallet passphrase entered was incorrect.") from None
            raise RPCError(WALLET_ERROR, str(e)) from None
        self._wallet = w
        self._until = None if seconds is None else self.clock() + min(seconds, MAX_UNLOCK)
        self.woken.set()

    def lock(self) -> None:
        self._wallet = None         # document, seed and sealer key go with it
        self._until = None

    def unlocked(self) -> Wallet | None:
        if self._wallet is not None and self._until is not None and self.clock() >= self._until:
            self.lock()
        return self._wallet

    # --- the wallet a method works on ------------------------------------------------------------

    def wallet(self) -> Wallet:
        """The wallet, synced with the node and its registrations moved on, or -13."""
        w = self.unlocked()
        if w is None:
            raise RPCError(UNLOCK_NEEDED, LOCKED_TEXT)
        self._sync(w)
        return w

    def _sync(self, w: Wallet) -> None:
        w.sync()
        for ev in N.advance(w, self.fee_rate):
            if ev["event"] != "waiting":
                log.info("registration %s: %s", ev["name"].encode("utf-8", "surrogateescape")[:80],
                         {k: v for k, v in ev.items() if k != "name"})
        self.last_tip = w.tip

    def wake(self) -> None:
        self.woken.set()

    def background_step(self) -> None:
        """Moves pending registrations on when the tip moved (or a registration just began);
        a locked wallet waits for walletpassphrase, its registrations safe in the file."""
        w = self.unlocked()
        if w is None or not w.doc["pending"]:
            return
        tip = self.node.call("getblockcount")
        if tip == self.last_tip and not self.woken.is_set():
            return
        self.woken.clear()
        self._sync(w)
