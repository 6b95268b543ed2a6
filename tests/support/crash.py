"""The crash-consistency engine bench/crash.py and tests/functional/chain/test_feature_crash.py
share: a Trial's record, the Scenario base, a recorder of acknowledged work while a node is
killed, the checks that must hold after a restart, and the run over the scenarios
(support/crash_scenarios.py, support/crash_wallet.py).

A kill only tests something if it interrupts work: a node killed before its sync began, or a
wallet killed before it opened its file, proves nothing. So each kill's clock starts when the
scenario has seen its work begin (kill_during's `started`), and each trial records in
`in_work` whether the kill landed inside it; the test fails on any trial where it did not."""
from __future__ import annotations

import os
import random
import shutil
import statistics
import threading
import time
from dataclasses import dataclass, field

from core.names.proof import EMPTY, verify_proof
from core.names.rules import record_hash, tree_key
from core.names.tree import NameTree
from wallet.nodeclient import NodeError, OperatorClient
from support.harness import NodeProcess, run_cli


@dataclass
class Trial:
    scenario: str
    problems: list[str] = field(default_factory=list)
    restart_s: float | None = None
    acked: int = 0
    killed_at: float = 0.0         # seconds from the moment the work was seen to begin
    seconds: float = 0.0
    note: str = ""                 # what the kill interrupted, where the scenario can tell
    in_work: bool = False          # the kill landed inside the scenario's work (module doc)

    @property
    def ok(self) -> bool:
        return not self.problems


class Scenario:
    """Owns its processes and data dirs; `trial(t)` kills something and fills in `t`."""
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
                setattr(self, attr, type(n)(n.datadir, *n.extra).start(timeout=120))

    def close(self) -> None:
        for attr in self.nodes:
            n = getattr(self, attr, None)
            if n is None:
                continue
            try:
                n.stop()
            except Exception:  # noqa: BLE001 - already dead or stuck: make sure it is gone
                n.kill()


# --- acknowledged work, recorded by a thread while the main thread picks the moment to kill ----------

class Recorder(threading.Thread):
    """Runs `step(recorder)` in a loop against a node until the node dies; the step makes its
    RPC calls through `recorder.call`, which tracks whether one is in flight, and returns what
    it got acknowledged (block hashes), appended to `acked` only once the reply is in."""

    def __init__(self, node: NodeProcess, step):
        super().__init__(daemon=True)
        self.client = OperatorClient(f"http://127.0.0.1:{node.rpc_port}", os.path.join(node.datadir, ".cookie"),
                                timeout=30)
        self.step = step
        self.acked: list[str] = []
        self.error: BaseException | None = None
        self.stop_flag = threading.Event()
        self.calls = 0                 # RPC calls begun
        self.in_flight = False
        # Set while a call is in flight: the killer waits on it rather than polling, since a
        # loaded machine can sleep through a short call between two polls (a CI flake).
        self.calling = threading.Event()
        self.durations: list[float] = []
        self.interrupted = False       # the kill cut a call in flight

    def call(self, method: str, *params):
        self.calls += 1
        self.in_flight, t0 = True, time.perf_counter()
        self.calling.set()
        try:
            result = self.client.call(method, *params)
        finally:
            self.calling.clear()
        self.durations.append(time.perf_counter() - t0)
        self.in_flight = False
        return result

    def run(self) -> None:
        try:
            while not self.stop_flag.is_set():
                got = self.step(self)
                self.acked.extend(got or ())
        except NodeError as e:
            if e.code is not None:    # the node answered with an error: a driver problem, not the kill
                self.error = e
            else:                     # the node was killed mid-call: that call was not acknowledged
                self.interrupted = self.in_flight
        except BaseException as e:    # noqa: BLE001 - reported as a trial problem
            self.error = e
        finally:
            self.client.close()


@dataclass
class Killed:
    acked: list[str]
    error: BaseException | None
    began: bool                        # `started` held before the kill
    interrupted: bool                  # the kill cut an RPC call in flight
    after: float                       # seconds from `started` to the kill


def wait_until(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def _into_a_call(rec: Recorder, rng) -> None:
    """Return while a call is in flight, at a random point of it (at most half the shortest
    recent call in, so it is almost always still running). If that call ends first (a loaded
    machine), the next one is taken at once, so the kill lands inside the node's work."""
    deadline = time.monotonic() + 10
    first = True
    while rec.is_alive() and time.monotonic() < deadline:
        if not rec.calling.wait(1.0) or not rec.in_flight:
            continue
        seq = rec.calls
        if first:
            time.sleep(rng.uniform(0, min(rec.durations[-20:], default=0.01) / 2))
            first = False
        if rec.in_flight and rec.calls == seq:
            return


def kill_during(node: NodeProcess, step, delay: float, started=lambda rec: True, mid_call: bool = False,
                rng=random) -> Killed:
    """Start `step` looping; once `started(recorder)` holds, wait `delay` seconds (with
    `mid_call`, then on into an RPC call in flight) and SIGKILL the node."""
    rec = Recorder(node, step)
    rec.start()
    began = wait_until(lambda: started(rec) or not rec.is_alive(), 60) and started(rec)
    t0 = time.perf_counter()
    time.sleep(delay)
    if mid_call:
        _into_a_call(rec, rng)
    node.kill()
    after = time.perf_counter() - t0
    rec.stop_flag.set()
    rec.join(30)
    return Killed(list(rec.acked), rec.error, began, rec.interrupted, after)


# --- what must hold after a restart ---------------------------------------------------------------------

def checkdb(datadir: str) -> list[str]:
    r = run_cli("--regtest", "--datadir", datadir, "checkdb", timeout=600)
    if r.returncode != 0:
        return [f"checkdb exited {r.returncode}: {(r.stderr or r.stdout).strip()[-400:]}"]
    return []


def restart(node: NodeProcess, trial: Trial) -> NodeProcess:
    fresh = type(node)(node.datadir, *node.extra)          # a ResolverNode stays one
    t0 = time.perf_counter()
    fresh.start(timeout=120)
    trial.restart_s = time.perf_counter() - t0
    return fresh


def check_blocks(node: NodeProcess, acked: list[str], main_chain: bool) -> list[str]:
    """Every acknowledged block is stored; with `main_chain`, each is on the main chain."""
    problems = []
    for h in acked:
        try:
            node.call("getblock", h, 0)
            hdr = node.call("getblockheader", h)
        except NodeError as e:
            problems.append(f"acknowledged block {h[:16]} lost: {e}")
            continue
        if main_chain and hdr["confirmations"] < 1:
            problems.append(f"acknowledged block {h[:16]} (height {hdr['height']}) is not on the main chain")
    return problems


def check_name_root(node: NodeProcess, names: list[bytes]) -> list[str]:
    """The tip's name_root must be the root of the tree of the node's own records of `names`
    (every name the scenario may have registered), and each record must be proven by it."""
    info = node.call("getblockchaininfo")
    tip, root = info["bestblockhash"], bytes.fromhex(info["name_root"])
    leaves, problems = {}, []
    for name in names:
        p = node.call("getnameproof", name.hex(), tip, {"nameEncoding": "hex"})
        if bytes.fromhex(p["name_root"]) != root:
            problems.append(f"getnameproof root differs from the tip header for {name!r}")
        rec = bytes.fromhex(p["record"]) if p["record"] else None
        try:
            committed = verify_proof(root, tree_key(name), bytes.fromhex(p["proof"]))
        except Exception as e:  # noqa: BLE001 - reported
            problems.append(f"proof of {name!r} fails against the tip's name_root: {e}")
            continue
        if committed != (record_hash(rec) if rec else None):
            problems.append(f"the tip's name_root does not commit to the node's record of {name!r}")
        if rec is not None:
            leaves[tree_key(name)] = record_hash(rec)
    nodes: dict = {}
    computed, _ = NameTree(nodes.get).update(EMPTY, leaves)
    if computed != root:
        problems.append(f"name_root {root.hex()[:16]} in the tip header != {computed.hex()[:16]} built from "
                        f"the node's {len(leaves)} records")
    return problems


def after_kill(node: NodeProcess, trial: Trial, acked: list[str], main_chain: bool,
               names: list[bytes]) -> NodeProcess:
    """Restart on the crashed data dir (timed), the block and name checks, and checkdb on a
    copy of the data dir taken at the crash: both see exactly what the kill left."""
    trial.acked = len(acked)
    crashed = node.datadir.rstrip("/") + ".crashed"
    shutil.rmtree(crashed, ignore_errors=True)
    shutil.copytree(os.path.join(node.datadir, "chain"), os.path.join(crashed, "chain"))
    try:
        node = restart(node, trial)
        trial.problems += check_blocks(node, acked, main_chain)
        trial.problems += check_name_root(node, names)
        trial.problems += checkdb(crashed)
    finally:
        shutil.rmtree(crashed, ignore_errors=True)
    return node


# --- the run ------------------------------------------------------------------------------------------------

def run(trials: int, seed: int, scenarios: list[str], workdir: str, log=print, small: bool = False) -> list[Trial]:
    """`trials` trials taking the scenarios in turn; `small` shrinks the prebuilt chains (tests)."""
    # Imported here: the scenarios build on this module's Trial and checks.
    from support.crash_scenarios import SCENARIOS
    rng = random.Random(seed)
    active = {}
    results: list[Trial] = []
    try:
        for name in scenarios:
            t0 = time.perf_counter()
            active[name] = SCENARIOS[name](os.path.join(workdir, name), random.Random(rng.randrange(1 << 30)),
                                           small)
            log(f"  {name}: set up in {time.perf_counter() - t0:.1f} s")
        for i in range(trials):
            name = scenarios[i % len(scenarios)]
            t = Trial(name)
            t0 = time.perf_counter()
            try:
                active[name].trial(t)
            except Exception as e:  # noqa: BLE001 - a broken trial is a failure, not the end of the run
                t.problems.append(f"trial raised {type(e).__name__}: {e}")
                try:
                    active[name].recover()
                except Exception as e2:  # noqa: BLE001
                    t.problems.append(f"could not recover: {e2}")
            t.seconds = time.perf_counter() - t0
            results.append(t)
            status = "ok" if t.ok else "FAIL: " + "; ".join(t.problems)[:600]
            restart_text = f"{t.restart_s:.2f}" if t.restart_s is not None else "-"
            where = "inside work" if t.in_work else "OUTSIDE work"
            log(f"  trial {i + 1:3d} {name:7s} kill {where} {t.killed_at:.2f} s in, {t.acked:3d} acknowledged, "
                f"restart {restart_text} s, trial {t.seconds:.1f} s{', ' + t.note if t.note else ''}: {status}")
    finally:
        for s in active.values():
            s.close()
    return results


def summary(results: list[Trial]) -> list[str]:
    lines = []
    for name in dict.fromkeys(t.scenario for t in results):
        ts = [t for t in results if t.scenario == name]
        restarts = [t.restart_s for t in ts if t.restart_s is not None]
        med = f"{statistics.median(restarts):.2f} s" if restarts else "-"
        lines.append(f"{name:8s} trials {len(ts):3d}  failures {sum(not t.ok for t in ts):2d}  "
                     f"kills outside work {sum(not t.in_work for t in ts):2d}  "
                     f"acknowledged {sum(t.acked for t in ts):5d}  median restart {med}")
    return lines
