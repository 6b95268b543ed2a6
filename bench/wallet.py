"""Wallet costs that a user feels, as medians of several runs:
BIP32 key derivation (keys/s, address included), signing a 10-input transaction (coin
selection + 10 signatures), opening a wallet file (Argon2id) and saving one (seal + fsync'd
atomic replace).

    python bench/wallet.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from core.primitives import TxOut  # noqa: E402
from wallet import storage  # noqa: E402
from wallet.keys import Keychain, seed_from_words  # noqa: E402
from wallet.txbuild import WalletCoin, select_and_sign  # noqa: E402
from figures import figure  # noqa: E402  (bench/ is on sys.path when run as a script)

WORDS = "abandon " * 11 + "about"


def timed(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    seed = seed_from_words(WORDS)

    n = 1000
    def derive():
        kc = Keychain(seed)
        for i in range(n):
            kc.key(0, i)
    t = timed(derive, args.repeat)
    figure("derive", n / t, "keys/s", "BIP32 derivation with address")
    print(f"BIP32 derivation:        {n / t:10.0f} keys/s   (median of {args.repeat} x {n}, with address)")

    kc = Keychain(seed)
    coins = [WalletCoin(bytes([i]) * 32, 0, 10**8, kc.key(0, i), {"type": "none"}, 1, False) for i in range(10)]
    dest, change = kc.key(0, 50).address, kc.key(1, 0).address
    def sign10():
        tx, _ = select_and_sign([TxOut(int(9.5 * 10**8), dest)], coins, change, 2)
        assert len(tx.inputs) == 10
    t = timed(sign10, args.repeat * 4)
    figure("sign10", t * 1000, "ms", "select coins and sign a 10-input transaction")
    print(f"sign 10-input tx:        {t * 1000:10.2f} ms       (selection + 10 signatures)")

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "w.json")
        doc = {"version": storage.VERSION, "network": "regtest", "seed": seed.hex(),
               "used": {"0": 5, "1": 5, "2": 5}, "pending": {}}
        sealer = storage.Sealer("bench passphrase")
        storage.save(path, doc, sealer)
        t = timed(lambda: storage.load(path, "bench passphrase"), args.repeat)
        figure("open", t * 1000, "ms", "open a wallet (Argon2id, interactive cost)")
        print(f"open wallet (Argon2id):  {t * 1000:10.1f} ms       (interactive limits)")
        t = timed(lambda: storage.save(path, doc, sealer), args.repeat * 4)
        figure("save", t * 1000, "ms", "save a wallet (seal, fsync, rename, dir fsync)")
        print(f"save wallet:             {t * 1000:10.2f} ms       (seal + fsync + rename + dir fsync)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
