"""The crash scenarios bench/crash.py runs: each owns its processes and data dirs, and a
`trial(t)` kills something at a random moment and records what must have survived.

Each scenario rebuilds what it knows from the node after a restart (coins, name coins,
heights), never from memory of what it sent: a transaction sent but not yet mined may die with
the node's mempool, and that is allowed; a block an RPC call acknowledged may not.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

from support.auxpow import auxpow_for
from support.chain import Key
from support.crash import Scenario, Trial, after_kill, kill_during
from support.crash_wallet import Wallet
from support.crash_zone import ZoneUpdate
from support.name_txs import LOCK, Funds, build
from core.names.ops import firstupdate_outputs, name_new_output, update_output
from core.names.rules import commitment, registration_burn
from core.params import REGTEST
from support.harness import NodeProcess
from support.p2p import NAME as SYNC_NAME, build_chain, copy_chain

MATURITY = REGTEST.coinbase_maturity
DEPTH = REGTEST.min_firstupdate_depth
EXPIRY = REGTEST.expiry_depth


def record(t: Trial, killed) -> None:
    t.killed_at = killed.after
    if killed.error:
        t.problems.append(f"driver: {killed.error!r}")


class Mining(Scenario):
    """`generatetoaddress` calls of 1-5 blocks back to back; the kill lands inside one, after
    the first has returned."""

    def setup(self) -> None:
        self.node = NodeProcess(os.path.join(self.workdir, "node")).start()
        self.address = self.node.call("getminingaddress")

    def trial(self, t: Trial) -> None:
        rng = self.rng

        def step(client):
            time.sleep(0.02)          # paced, so the chain (and each checkdb replay) stays small
            return client.call("generatetoaddress", rng.randint(1, 5), self.address)
        killed = kill_during(self.node, step, rng.uniform(0, 1.5), started=lambda rec: rec.acked, mid_call=True,
                             rng=rng)
        record(t, killed)
        t.in_work = killed.began and killed.interrupted
        self.node = after_kill(self.node, t, killed.acked, main_chain=True, names=[])


class MergeMining(Scenario):
    """A pool's loop against the merged-mining RPCs (createauxblock, then submitauxblock with
    an AuxPoW built from its answer); the kill lands inside one of the calls."""

    def setup(self) -> None:
        self.node = NodeProcess(os.path.join(self.workdir, "node")).start()
        self.address = self.node.call("getminingaddress")
        self.node.call("generatetoaddress", REGTEST.auxpow_height, self.address)

    def trial(self, t: Trial) -> None:
        rng = self.rng

        def step(client):
            time.sleep(0.02)
            aux = client.call("createauxblock", self.address)
            return [aux["hash"]] if client.call("submitauxblock", aux["hash"], auxpow_for(aux)) else []
        killed = kill_during(self.node, step, rng.uniform(0, 1.5), started=lambda rec: rec.acked, mid_call=True,
                             rng=rng)
        record(t, killed)
        t.in_work = killed.began and killed.interrupted
        self.node = after_kill(self.node, t, killed.acked, main_chain=True, names=[])


class Sync(Scenario):
    """A fresh node syncing from a peer serving a prebuilt chain, killed once it has reached a
    random height in the first half of the peer's chain: the kill lands mid-sync, never before
    the first block or after the last (it is fast, a few thousand empty blocks a second, so a
    kill at a random time from the node's start mostly missed the sync). The node is told of
    the peer (addnode) by the recorder's first step, so the sync starts while it watches."""
    nodes = ("peer", "node")

    def setup(self) -> None:
        self.cached = build_chain(os.path.join(self.workdir, "cache"), 300 if self.small else 2000)
        self.peer = NodeProcess(copy_chain(self.cached, os.path.join(self.workdir, "peer"))).start()
        self.node: NodeProcess | None = None

    def _fresh(self) -> NodeProcess:
        d = os.path.join(self.workdir, "node")
        if self.node is not None:
            self.node.stop()
        shutil.rmtree(d, ignore_errors=True)
        return NodeProcess(d, "--no-listen").start()

    def trial(self, t: Trial) -> None:
        self.node = self._fresh()
        total = self.cached.blocks
        target = self.rng.randint(1, total // 2)
        height = [0]

        def step(client):
            if not client.calls:
                client.call("addnode", self.peer.p2p_addr, "add")
            time.sleep(0.005)
            info = client.call("getblockchaininfo")
            if info["blocks"] > height[0]:
                height[0] = info["blocks"]
                return [info["bestblockhash"]]
            return []
        killed = kill_during(self.node, step, 0, started=lambda rec: height[0] >= target)
        record(t, killed)
        t.in_work = killed.began and 0 < height[0] < total
        self.node = after_kill(self.node, t, killed.acked, main_chain=True, names=[SYNC_NAME])
        t.note = f"killed at height {height[0]} of {total} (aimed at {target})"


class Reorg(Scenario):
    """The node mines 2-6 blocks of its own; a second node (never connected to it) builds a
    branch from their last common block that is 1-3 blocks longer, and its blocks are fed to
    the node with submitblock while the kill comes. The blocks acknowledged before the kill
    must all be stored, and the highest of them (first acknowledged on a tie: first seen
    wins) must be on the main chain, or a longer branch be."""
    nodes = ("node", "other")

    def setup(self) -> None:
        self.node = NodeProcess(os.path.join(self.workdir, "node"), "--no-listen").start()
        self.other = NodeProcess(os.path.join(self.workdir, "other"), "--no-listen").start()
        self.other.call("generate", 3)
        for h in range(1, 4):
            self.node.call("submitblock", self.other.call("getblock", self.other.call("getblockhash", h), 0))

    def _fork_height(self) -> int:
        h = min(self.node.call("getblockcount"), self.other.call("getblockcount"))
        while h > 0 and self.node.call("getblockhash", h) != self.other.call("getblockhash", h):
            h -= 1
        return h

    def trial(self, t: Trial) -> None:
        rng = self.rng
        own = self.node.call("generate", rng.randint(2, 6))
        fork = self._fork_height()
        need = self.node.call("getblockcount") + rng.randint(1, 3) - self.other.call("getblockcount")
        if need > 0:
            self.other.call("generate", need)
        branch = [self.other.call("getblockhash", h) for h in range(fork + 1, self.other.call("getblockcount") + 1)]
        raws = [(h, self.other.call("getblock", h, 0)) for h in branch]
        todo = list(raws)

        def step(client):
            if not todo:
                time.sleep(0.01)
                return []
            time.sleep(rng.uniform(0, 0.005))     # blocks arrive apart, as from a peer
            h, raw = todo.pop(0)
            r = client.call("submitblock", raw)
            if r not in (None, "duplicate"):
                raise AssertionError(f"submitblock refused a valid block: {r}")
            return [h]
        # Killed inside the submitblock of a branch block after the first, so part of the
        # branch is in. The branch outgrows 2 or more of the node's blocks, so it has 3 or more
        # and at least two calls follow the k-th: one to aim at, one if that ends first.
        k = rng.randint(1, max(1, len(raws) - 2))
        killed = kill_during(self.node, step, 0, started=lambda rec: len(rec.acked) >= k, mid_call=True, rng=rng)
        record(t, killed)
        acked = killed.acked
        t.in_work = killed.began and killed.interrupted and len(acked) < len(raws)
        fed = len(acked)
        acked = own + acked
        self.node = after_kill(self.node, t, acked, main_chain=False, names=[])
        moved = any(self.node.call("getblockheader", h)["confirmations"] < 1 for h in own)
        t.note = f"{fed}/{len(raws)} branch blocks fed, " + ("reorganised" if moved else "own blocks kept")
        heights = [(self.node.call("getblockheader", h)["height"], -i, h) for i, h in enumerate(acked)]
        best_height, _, best = max(heights)
        # Unless a longer branch was stored before the kill (the interrupted submitblock's
        # block, stored but not acknowledged, is connected on restart as it should be).
        if self.node.call("getblockheader", best)["confirmations"] < 1 \
                and self.node.call("getblockcount") <= best_height:
            t.problems.append(f"the most-work acknowledged block {best[:16]} is not on the main chain")


NAMES_KEY = Key.from_seed(701)


def rand_for(name: bytes) -> bytes:
    return hashlib.sha256(b"crash-salt" + name).digest()[:20]


class Names(Scenario):
    """name_new, name_firstupdate (when 12 deep) and name_update transactions, each followed
    by a block; state is read back from the node after every restart."""

    def setup(self) -> None:
        self.node = NodeProcess(os.path.join(self.workdir, "node")).start()
        self.miner = self.node.call("getminingaddress")
        self.node.call("generatetoaddress", MATURITY + 10, NAMES_KEY.addr_text())
        self.count = 0                    # names d/crash0 .. d/crash{count-1} may exist

    def names(self) -> list[bytes]:
        return [f"d/crash{i}".encode() for i in range(self.count + 1)]

    def _load(self, client) -> None:
        """Spendable coins, waiting name_new coins and live names of NAMES_KEY, from the node."""
        self.tip = client.call("getblockcount")
        by_commitment = {commitment(rand_for(n), n): n for n in self.names()}
        plain, self.new, self.live = [], {}, {}
        for u in client.call("getaddressutxos", NAMES_KEY.addr_text()):
            cov, outpoint = u["covenant"], (bytes.fromhex(u["txid"]), u["outputIndex"], u["value_sat"])
            if cov["type"] == "none" and (not u["coinbase"] or self.tip - u["height"] >= MATURITY):
                plain.append(outpoint)
            elif cov["type"] == "name_new":
                name = by_commitment.get(bytes.fromhex(cov["commitment"]))
                if name is not None:
                    self.new[name] = (outpoint, u["height"])
            elif cov["type"] in ("name_firstupdate", "name_update"):
                self.live[cov["name"].encode()] = (outpoint, u["height"])
        self.funds = Funds(NAMES_KEY, plain)

    def _step(self, client) -> list[str]:
        rng, key = self.rng, NAMES_KEY
        due = sorted(n for n, (_, h) in self.new.items() if self.tip + 1 - h >= DEPTH)
        # A name's coin leaves the UTXO set when it expires; update only well before that.
        live = sorted(n for n, (_, h) in self.live.items() if self.tip + 1 - h <= EXPIRY - 5)
        value = json.dumps({"ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"}).encode()
        if due:
            name = due[0]
            (txid, vout, v), _ = self.new.pop(name)
            outs = firstupdate_outputs(name, rand_for(name), value, key.address, LOCK,
                                       registration_burn(name, self.tip + 1, REGTEST))
            tx = build(self.funds, outs, name_in=(txid, vout, v, key.address), name_key=key)
            self.live[name] = ((tx.txid, 0, LOCK), self.tip + 1)
        elif live and rng.random() < 0.5:
            name = rng.choice(live)
            (txid, vout, v), _ = self.live[name]
            tx = build(self.funds, [update_output(name, value, key.address, LOCK)],
                       name_in=(txid, vout, v, key.address), name_key=key)
            self.live[name] = ((tx.txid, 0, LOCK), self.tip + 1)
        else:
            name = f"d/crash{self.count}".encode()
            self.count += 1
            tx = build(self.funds, [name_new_output(name, rand_for(name), key.address, LOCK)])
            self.new[name] = ((tx.txid, 0, LOCK), self.tip + 1)
        client.call("sendrawtransaction", tx.to_bytes().hex())
        hashes = client.call("generatetoaddress", 1, self.miner)
        self.tip += 1
        return hashes

    def trial(self, t: Trial) -> None:
        first = [True]

        def step(client):
            if first[0]:
                self._load(client)
                first[0] = False
            time.sleep(0.01)          # paced: unpaced, a trial adds ~500 blocks and checkdb slows down
            return self._step(client)
        # Killed inside a name transaction's or its block's call, once a first block is in.
        killed = kill_during(self.node, step, self.rng.uniform(0, 2.0), started=lambda rec: rec.acked,
                             mid_call=True, rng=self.rng)
        record(t, killed)
        t.in_work = killed.began and killed.interrupted
        acked = killed.acked
        self.node = after_kill(self.node, t, acked, main_chain=True, names=self.names())


SCENARIOS = {"mining": Mining, "mergemine": MergeMining, "sync": Sync, "reorg": Reorg, "names": Names, "wallet": Wallet,
             "zone": ZoneUpdate}
