"""Helpers for the p2p tests: a cached regtest chain with payments and a name, a raw-socket
peer that speaks (or abuses) the protocol, and polling with a deadline."""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass

from support.chain import Key, make_block
from support.name_txs import Funds, firstupdate, name_new, update
from node.chain.mempool import Mempool
from core.primitives import Tx, TxIn, TxOut
from core.signing import sign_tx
from core.params import REGTEST
from node.service import open_chain
from p2p import messages as M

OWNER = Key.from_seed(501)
NAME, RAND = b"d/p2ptest", b"r" * 20


@dataclass
class CachedChain:
    datadir: str
    blocks: int
    firstupdate: Tx           # the name's current coin is its output 0
    spare: list               # mature coinbases of OWNER not spent: (txid, index, value)


def build_chain(datadir: str, blocks: int) -> CachedChain:
    """`blocks` (>= 130) regtest blocks mined to OWNER, with a few payments and d/p2ptest registered."""
    chain = open_chain(REGTEST, datadir)
    pool = Mempool(chain, REGTEST)
    now = int(time.time()) - 3600

    def mine(n=1):
        for _ in range(n):
            chain.process_block(make_block(chain, pool, OWNER.address, clock=lambda: now))

    mine(blocks - 20)          # regtest names expire after 30 blocks: register near the end
    funds = Funds.coinbases(chain, OWNER, range(1, 9))
    new = name_new(funds, NAME, RAND)
    pool.accept(new)
    mine(13)
    fu = firstupdate(funds, new, NAME, RAND, b'{"ip":"10.0.0.1"}', REGTEST, chain.height + 1)
    pool.accept(fu)
    for _ in range(3):
        pool.accept(pay(funds.take(), Key.from_seed(502).address))
    mine(1)
    while chain.height < blocks:
        mine(1)
    spare = [c for c in Funds.coinbases(chain, OWNER, range(20, 60)).coins]
    chain.db.close()
    return CachedChain(datadir, blocks, fu, spare)


def pay(coin, to: bytes, key: Key = OWNER, fee: int = 10_000) -> Tx:
    txid, idx, value = coin
    tx = Tx(1, (TxIn(txid, idx),), (TxOut(value // 2, to), TxOut(value - value // 2 - fee, key.address)), 0)
    return sign_tx(tx, [(value, key.address)], [key.secret], [key.pubkey])


def name_update(coin, prev_tx: Tx, value: bytes) -> Tx:
    return update(Funds(OWNER, [coin]), prev_tx, 0, NAME, value, OWNER)


def copy_chain(cached: CachedChain, dest: str) -> str:
    shutil.copytree(os.path.join(cached.datadir, "chain"), os.path.join(dest, "chain"))
    return dest


def chain_headers(datadir: str) -> list[bytes]:
    """The raw main-chain headers of a (stopped) node's data dir, genesis first."""
    chain = open_chain(REGTEST, datadir)
    try:
        return [chain.entry_at(h).header.to_bytes() for h in range(chain.height + 1)]
    finally:
        chain.db.close()


def wait_until(fn, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:          # a node may be between states; keep polling
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class RawPeer:
    """A protocol-speaking socket from a chosen loopback source address (127.0.0.x), so that a
    ban of this "host" leaves the honest nodes on 127.0.0.1 alone."""

    def __init__(self, port: int, source: str, magic: bytes = REGTEST.magic):
        self.magic = magic
        self.sock = socket.socket()
        self.sock.bind((source, 0))
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""

    def send(self, msg) -> None:
        self.sock.sendall(M.encode_frame(self.magic, msg))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self):
        while True:
            if len(self.buf) >= 8:
                n = M.decode_frame_header(self.magic, self.buf[:8])
                if len(self.buf) >= 8 + n:
                    frame, self.buf = self.buf[:8 + n], self.buf[8 + n:]
                    return M.decode_frame(self.magic, frame)
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("closed")
            self.buf += data

    def handshake(self, height: int = 0) -> None:
        self.send(M.Version(M.PROTOCOL_VERSION, 1, height, 12345, int(time.time()), 0, b"/test/"))
        got = set()
        while got != {"version", "verack"}:
            msg = self.recv()
            if msg.command == "version":
                self.send(M.Verack())
            got.add(msg.command)

    def closed_by_remote(self, timeout: float) -> bool:
        """True once the node hangs up on us (reads drain whatever it sent before)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(1 << 16):
                pass
            return True
        except socket.timeout:
            return False
        except (ConnectionError, OSError):
            return True

    def serve_forever_in_thread(self, handler) -> threading.Thread:
        def run():
            try:
                while True:
                    handler(self, self.recv())
            except Exception:
                pass
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def close(self) -> None:
        self.sock.close()
