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
import subprocess
import sys
import threading
import time

from support.chain import Key
from support.crash import Trial, after_kill, kill_during
from support.name_txs import LOCK, Funds, build
from core.names.ops import firstupdate_outputs, name_new_output, update_output
from core.names.rules import commitment, registration_burn
from core.params import REGTEST
from wallet.nodeclient import OperatorClient
from support.harness import NodeProcess
from support.p2p import NAME as SYNC_NAME, build_chain, copy_chain

MATURITY = REGTEST.coinbase_maturity
DEPTH = REGTEST.min_firstupdate_depth
EXPIRY = REGTEST.expiry_depth


class Scenario:
    nodes: tuple[str, ...] = ("node",)

    def __init__(self, workdir: str, rng, small: bool = False):
        self.workdir = workdir
        self.rng = rng
        self.small = small
        os.makedirs(workdir, exist_ok=True)
        try:
            self.setup()
        except BaseException:
            self.close()              # nodes started before the failure must not outlive it
            raise

    def setup(self) -> None:
        raise NotImplementedError

    def recover(self) -> None:
        """After a trial that broke half-way: every node of the scenario running again."""
        for attr in self.nodes:
            n = getattr(self, attr, None)
            if n is not None and (n.proc is None or n.proc.poll() is not None):
                setattr(self, attr, NodeProcess(n.datadir, *n.extra).start(timeout=120))

    def close(self) -> None:
        for attr in self.nodes:
            n = getattr(self, attr, None)
            if n is None:
                continue
            try:
                n.stop()
            except Exception:  # noqa: BLE001 - already dead or stuck: make sure it is gone
                n.kill()


class Mining(Scenario):
    """`generatetoaddress` calls of 1-5 blocks back to back; the kill lands inside one."""

    def setup(self) -> None:
        self.node = NodeProcess(os.path.join(self.workdir, "node")).start()
        self.address = self.node.call("getminingaddress")

    def trial(self, t: Trial) -> None:
        rng = self.rng

        def step(client):
            time.sleep(0.02)          # paced, so the chain (and each checkdb replay) stays small
            return client.call("generatetoaddress", rng.randint(1, 5), self.address)
        t.killed_at = rng.uniform(0.05, 1.5)
        acked, err = kill_during(self.node, step, t.killed_at)
        if err:
            t.problems.append(f"driver: {err!r}")
        self.node = after_kill(self.node, t, acked, main_chain=True, names=[])


class Sync(Scenario):
    """A fresh node syncing from a peer serving a prebuilt chain; once it has all of it, it
    starts over from an empty data dir."""
    nodes = ("peer", "node")

    def setup(self) -> None:
        self.cached = build_chain(os.path.join(self.workdir, "cache"), 300 if self.small else 2000)
        self.peer = NodeProcess(copy_chain(self.cached, os.path.join(self.workdir, "peer"))).start()
        self.node: NodeProcess | None = None
        self.height = 0
        # How long a whole sync takes from a node's start: the kill window (it is fast, a few
        # thousand empty blocks a second, so a fixed window would mostly kill a synced node).
        self.node = self._fresh()
        t0 = time.perf_counter()
        while self.node.call("getblockcount") < self.cached.blocks:
            if time.perf_counter() - t0 > 120:
                raise RuntimeError("the sync scenario's node did not sync in 120 s")
            time.sleep(0.01)
        self.full_sync_s = time.perf_counter() - t0
        self.height = self.cached.blocks

    def _fresh(self) -> NodeProcess:
        d = os.path.join(self.workdir, "node")
        if self.node is not None:
            self.node.stop()
        shutil.rmtree(d, ignore_errors=True)
        return NodeProcess(d, "--connect", self.peer.p2p_addr).start()

    def trial(self, t: Trial) -> None:
        if self.height >= self.cached.blocks:
            self.node = self._fresh()
        seen = set()

        def step(client):
            time.sleep(0.01)
            h = client.call("getbestblockhash")
            if h not in seen:
                seen.add(h)
                return [h]
            return []
        t.killed_at = self.rng.uniform(0, 1.1 * self.full_sync_s)
        acked, err = kill_during(self.node, step, t.killed_at)
        if err:
            t.problems.append(f"driver: {err!r}")
        self.node = after_kill(self.node, t, acked, main_chain=True, names=[SYNC_NAME])
        self.height = self.node.call("getblockcount")
        at_kill = self.node.call("getblockheader", acked[-1])["height"] if acked else 0
        t.note = f"killed at height {at_kill} of {self.cached.blocks}"


class Reorg(Scenario):
    """The node mines 1-6 blocks of its own; a second node (never connected to it) builds a
    branch from their last common block that is 1-3 blocks longer, and its blocks are fed to
    the node with submitblock while the kill comes. The blocks acknowledged before the kill
    must all be stored, and the highest of them (first acknowledged on a tie: first seen
    wins) must be on the main chain."""
    nodes = ("node", "other")

    def setup(self) -> None:
        self.node = NodeProcess(os.path.join(self.workdir, "node"), "--no-listen").start()
        self.other = NodeProcess(os.path.join(self.workdir, "other"), "--no-listen").start()
        self.other.call("generate", 3)
        for h in range(1, 4):
            self.node.call("submitblock", self.other.call("getblock", self.other.call("getblockhash", h), 0))
        self.per_block = 0.02

    def _fork_height(self) -> int:
        h = min(self.node.call("getblockcount"), self.other.call("getblockcount"))
        while h > 0 and self.node.call("getblockhash", h) != self.other.call("getblockhash", h):
            h -= 1
        return h

    def trial(self, t: Trial) -> None:
        rng = self.rng
        own = self.node.call("generate", rng.randint(1, 6))
        fork = self._fork_height()
        need = self.node.call("getblockcount") + rng.randint(1, 3) - self.other.call("getblockcount")
        if need > 0:
            self.other.call("generate", need)
        branch = [self.other.call("getblockhash", h) for h in range(fork + 1, self.other.call("getblockcount") + 1)]
        raws = [(h, self.other.call("getblock", h, 0)) for h in branch]
        todo = list(raws)
        started = []

        def step(client):
            if not todo:
                time.sleep(0.01)
                return []
            started.append(time.perf_counter())
            time.sleep(rng.uniform(0, 0.005))     # blocks arrive apart, as from a peer
            h, raw = todo.pop(0)
            r = client.call("submitblock", raw)
            if r not in (None, "duplicate"):
                raise AssertionError(f"submitblock refused a valid block: {r}")
            if not todo:              # how long a whole branch takes: the next kill window
                self.per_block = (time.perf_counter() - started[0]) / len(raws)
            return [h]
        # Feeding is fast (milliseconds a block): the window spans the feed as last measured.
        t.killed_at = rng.uniform(0, 1.2 * self.per_block * len(raws) + 0.01)
        acked, err = kill_during(self.node, step, t.killed_at)
        if err:
            t.problems.append(f"driver: {err!r}")
        fed = len(acked)
        acked = own + acked
        self.node = after_kill(self.node, t, acked, main_chain=False, names=[])
        moved = any(self.node.call("getblockheader", h)["confirmations"] < 1 for h in own)
        t.note = f"{fed}/{len(raws)} branch blocks fed, " + ("reorganised" if moved else "own blocks kept")
        heights = [(self.node.call("getblockheader", h)["height"], -i, h) for i, h in enumerate(acked)]
        best = max(heights)[2]
        if self.node.call("getblockheader", best)["confirmations"] < 1:
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
        t.killed_at = self.rng.uniform(0.1, 2.0)
        acked, err = kill_during(self.node, step, t.killed_at)
        if err:
            t.problems.append(f"driver: {err!r}")
        self.node = after_kill(self.node, t, acked, main_chain=True, names=self.names())


PASSPHRASE = "crash passphrase"


class Wallet(Scenario):
    """`dotbit-wallet name register` SIGKILLed; the node keeps running."""

    def setup(self) -> None:
        self.node = NodeProcess(os.path.join(self.workdir, "node")).start()
        self.path = os.path.join(self.workdir, "wallet.json")
        self.env = dict(os.environ, DOTBIT_WALLET_PASSPHRASE=PASSPHRASE, DOTBIT_NETWORK="regtest",
                        DOTBIT_RPC_URL=f"http://127.0.0.1:{self.node.rpc_port}",
                        DOTBIT_RPC_COOKIE=os.path.join(self.node.datadir, ".cookie"))
        self.env.pop("DOTBIT_WALLET_DEBUG", None)
        self.cli("create")
        from wallet.storage import load
        doc, _ = load(self.path, PASSPHRASE)
        self.seed, self.used = doc["seed"], dict(doc["used"])
        self.miner = self.node.call("getminingaddress")
        self.node.call("generatetoaddress", 5, self.cli("address")["address"])
        self.node.call("generatetoaddress", MATURITY, self.miner)
        self.count = 0
        self.durations: list[float] = []

    def argv(self, *args) -> list[str]:
        return [sys.executable, "-m", "wallet.cli", "--wallet", self.path, *args]

    def cli(self, *args) -> dict:
        r = subprocess.run(self.argv(*args, "--json"), capture_output=True, text=True, env=self.env, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"dotbit-wallet {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-300:]}")
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def trial(self, t: Trial) -> None:
        """Half the trials kill a plain `name register` (which sends the name_new); the other
        half kill `name register --wait` while blocks arrive, so the kill can also land while
        it waits, builds or sends the firstupdate."""
        from wallet.storage import StorageError, load
        name = f"d/wcrash{self.count}"
        self.count += 1
        value = json.dumps({"ip": f"192.0.2.{self.count % 250}"})
        wait = self.rng.random() < 0.5
        args = ["name", "register", name, "--value", value] + (["--wait", "--poll", "0.05"] if wait else [])
        p = subprocess.Popen(self.argv(*args), env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # 12 blocks only: the firstupdate then waits for its block until the kill comes.
        miner = BlockTicker(self.node, self.miner, DEPTH) if wait else None
        # Kill anywhere in the command's life: up to 1.5 x the slowest uninterrupted run so far
        # (a --wait run is killed before 2.5 s, in any of its phases).
        t.killed_at = self.rng.uniform(0.05, 2.5 if wait else 1.5 * max(self.durations, default=0.7))
        try:
            p.wait(t.killed_at)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(30)
        if miner is not None:
            miner.finish()
        # The file as the kill left it, before any command touches it again.
        try:
            doc, _ = load(self.path, PASSPHRASE)
        except StorageError as e:
            t.problems.append(f"wallet does not open: {e}")
            return
        if doc["seed"] != self.seed:
            t.problems.append("wallet seed changed")
        lower = {k: (v, doc["used"].get(k, 0)) for k, v in self.used.items() if doc["used"].get(k, 0) < v}
        if lower:
            t.problems.append(f"wallet lost keys (used counters went down): {lower}")
        self.used = dict(doc["used"])
        recorded = {st[k] for st in doc["pending"].values() for k in ("new_txid", "first_txid") if st.get(k)}
        unknown = [x for x in self.node.call("getrawmempool") if x not in recorded]
        if unknown:
            t.problems.append(f"node has {len(unknown)} wallet tx(s) the wallet file does not record as pending")
        t.acked = len(doc["pending"])
        st = doc["pending"].get(name, {}).get("state")
        t.note = ("--wait, " if wait else "") + (f"pending {st}" if st else "nothing pending")
        t0 = time.perf_counter()
        self.cli("balance")                         # the first command after the crash
        t.restart_s = time.perf_counter() - t0
        # Completing (unless the killed command got that far): register again, which resumes
        # a pending registration, then 12 blocks, any command (sync), one block.
        if not self._mine(name):
            t1 = time.perf_counter()
            self.cli("name", "register", name, "--value", value)
            self.durations.append(time.perf_counter() - t1)
            self.node.call("generatetoaddress", DEPTH, self.miner)
            self.cli("name", "sync")
            self.node.call("generatetoaddress", 1, self.miner)
        shown = self._mine(name)
        if not shown or json.loads(shown.get("value") or "null") != json.loads(value):
            t.problems.append(f"registration of {name} did not complete: {shown}")
        doc, _ = load(self.path, PASSPHRASE)
        if name in doc["pending"]:
            t.problems.append(f"{name} still pending after it completed")

    def _mine(self, name: str) -> dict | None:
        """The wallet's view of `name` if the name is registered and this wallet owns it."""
        try:
            shown = self.cli("name", "show", name)
        except AssertionError:
            return None                    # never registered
        return shown if shown.get("mine") else None


class BlockTicker(threading.Thread):
    """Once the registration's name_new is in the mempool, mines `n` blocks, one every 50 ms,
    while a `--wait` registration runs."""

    def __init__(self, node: NodeProcess, address: str, n: int):
        super().__init__(daemon=True)
        self.client = OperatorClient(f"http://127.0.0.1:{node.rpc_port}", os.path.join(node.datadir, ".cookie"))
        self.address, self.n = address, n
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        try:
            while not self.client.call("getrawmempool"):
                if self.done.wait(0.02):
                    return
            for _ in range(self.n):
                if self.done.wait(0.05):
                    break
                self.client.call("generatetoaddress", 1, self.address)
        finally:
            self.client.close()

    def finish(self) -> None:
        self.done.set()
        self.join(30)


SCENARIOS = {"mining": Mining, "sync": Sync, "reorg": Reorg, "names": Names, "wallet": Wallet}
