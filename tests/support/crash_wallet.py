"""The wallet crash scenario: `dotbit-wallet name register` SIGKILLed while it works (the
node keeps running); the file must open, keep its keys, record every transaction the node has
seen from it, and the registration must then complete."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from core.params import REGTEST
from support.crash import Scenario, Trial, wait_until
from support.harness import NodeProcess
from wallet.nodeclient import OperatorClient
from wallet.storage import StorageError, load

MATURITY = REGTEST.coinbase_maturity
DEPTH = REGTEST.min_firstupdate_depth

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
        self.lock = os.path.realpath(self.path) + ".lock"
        doc, _ = load(self.path, PASSPHRASE)
        self.seed, self.used = doc["seed"], dict(doc["used"])
        self.miner = self.node.call("getminingaddress")
        self.node.call("generatetoaddress", 5, self.cli("address")["address"])
        self.node.call("generatetoaddress", MATURITY, self.miner)
        self.count = 0
        # How long a plain registration works once it holds the wallet: the kill window.
        began, _, self.work_s = self.run_killed(["name", "register", "d/wcalibrate", "--value", "{}"], None)
        if not began:
            raise RuntimeError("the wallet scenario never saw `name register` take the wallet's lock")
        calibration = Trial("wallet")         # completed, so no trial meets its transactions
        self._complete(calibration, "d/wcalibrate", "{}")
        if calibration.problems:
            raise RuntimeError(f"the wallet scenario's first registration: {calibration.problems}")

    def argv(self, *args) -> list[str]:
        return [sys.executable, "-m", "wallet.cli", "--wallet", self.path, *args]

    def cli(self, *args) -> dict:
        r = subprocess.run(self.argv(*args, "--json"), capture_output=True, text=True, env=self.env, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"dotbit-wallet {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-300:]}")
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def run_killed(self, args: list[str], kill_after: float | None) -> tuple[bool, bool, float]:
        """Run `dotbit-wallet ARGS`; once it holds the wallet's lock (it takes it before any
        work), let it work `kill_after` seconds more and SIGKILL it (None: let it finish).
        Returns (lock seen, killed while running, seconds from the lock to the end)."""
        p = subprocess.Popen(self.argv(*args), env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            began = wait_until(lambda: p.poll() is not None or _holds(p.pid, self.lock), 60) and p.poll() is None
            t0 = time.perf_counter()
            try:
                p.wait(kill_after)
                killed = False
            except subprocess.TimeoutExpired:
                p.kill()
                killed = True
            p.wait(30)
            return began, killed, time.perf_counter() - t0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(30)

    def trial(self, t: Trial) -> None:
        """Half the trials kill a plain `name register` (which sends the name_new) within the
        time one works; the other half kill `name register --wait` while blocks arrive, so the
        kill can also land while it waits, builds or sends the firstupdate."""
        name = f"d/wcrash{self.count}"
        self.count += 1
        value = json.dumps({"ip": f"192.0.2.{self.count % 250}"})
        wait = self.rng.random() < 0.5
        args = ["name", "register", name, "--value", value] + (["--wait", "--poll", "0.05"] if wait else [])
        # 12 blocks only: the firstupdate then waits for its block until the kill comes.
        miner = BlockTicker(self.node, self.miner, DEPTH) if wait else None
        try:
            began, killed, t.killed_at = self.run_killed(
                args, self.rng.uniform(0, 2.5 if wait else 0.8 * self.work_s))
        finally:
            if miner is not None:
                miner.finish()
        t.in_work = began and killed
        if self._check_file(t, name, wait):
            self._complete(t, name, value)

    def _check_file(self, t: Trial, name: str, wait: bool) -> bool:
        """The file as the kill left it, before any command touches it again."""
        try:
            doc, _ = load(self.path, PASSPHRASE)
        except StorageError as e:
            t.problems.append(f"wallet does not open: {e}")
            return False
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
        return True

    def _complete(self, t: Trial, name: str, value: str) -> None:
        """Unless the killed command got that far: register again, which resumes a pending
        registration, then 12 blocks, any command (sync), one block; the name must be ours."""
        t0 = time.perf_counter()
        self.cli("balance")                         # the first command after the crash
        t.restart_s = time.perf_counter() - t0
        if not self._mine(name):
            self.cli("name", "register", name, "--value", value)
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


def _holds(pid: int, path: str) -> bool:
    """Process `pid` has `path` open (observed from outside, through /proc)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                return True
        except OSError:
            pass
    return False
