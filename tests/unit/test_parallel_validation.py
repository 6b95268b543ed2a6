"""--par: signature checks in workers (native threads or processes) give the serial answer, always.

Two chain states fed the same blocks, one checking in line (par 1), one with a worker (each
kind in turn) and chunks so small that every block is spread; random blocks (hypothesis, seeded)
with random corruptions (bad signatures at random transactions and inputs, keys that do not
own the coin, missing inputs, overspends) must get the same verdict and the very same error
(reason and detail). Then the worker's failures: killed, stopped, and the pool's lifecycle.
"""
from __future__ import annotations

import logging
import os
import random
import signal
import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, seed, settings, strategies as st

from core.errors import ValidationError, outcome
from core.params import REGTEST
from core.primitives import Block, Tx, TxIn, TxOut, block_merkle_root
from core.signing import sign_tx
from node.chain.blockfeed import BlockFeed
from node.chain.blockindex import HAVE_DATA
from node.chain.chainstate import ChainState
from node.chain.sigpool import AHEAD_STEP, SigPool, resolve_par
from node.chain.storage import LevelDB, MemoryDB
from node.mining.miner import solve_quick
from node.mining.template import assemble
from support.chain import Key, make_block

KEY, OTHER = Key.from_seed(31), Key.from_seed(32)
FAR_FUTURE = 2 ** 31          # nothing these tests build is "too new"
FAN_OUT = 80
FEE = 1000


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def signature_failure(verdict, input_index: int) -> bool:
    reason, lines = verdict
    return reason == "bad-txns-bad-signature" and len(lines) == 1 and \
        lines[0].endswith(f"invalid: bad-txns-bad-signature: input {input_index}")


class Twins:
    """A serial and a parallel chain state on the same blocks, and the coins KEY may spend."""

    def __init__(self, kind: str):
        self.serial = ChainState(MemoryDB(), REGTEST, clock=lambda: FAR_FUTURE, par=1)
        self.parallel = ChainState(MemoryDB(), REGTEST, clock=lambda: FAR_FUTURE)
        self.parallel.sigpool = SigPool(2, min_inputs=2, chunk=3, timeout=30, kind=kind)
        self.coins: list[tuple[bytes, int, int]] = []      # (txid, index, value)
        self.made = 0

    def both(self, block):
        """Each chain's verdict on `block`: its status, or the reason of its error and the
        connect failure it logged (which carries the detail, e.g. "input 1")."""
        out = []
        for chain in (self.serial, self.parallel):
            handler = Collect()
            logging.getLogger("dotbit.chain").addHandler(handler)
            try:
                out.append(chain.process_block(block))
            except ValidationError as e:
                out.append((e.reason, [m for m in handler.lines if " invalid: " in m]))
            finally:
                logging.getLogger("dotbit.chain").removeHandler(handler)
        return out

    def follow(self, blocks) -> None:
        """The coins KEY may spend once `blocks` are settled: those the blocks on the main
        chain spent are gone, their payments (output 0 of each) are there."""
        txs = [tx for b in blocks if self.serial.on_main_chain(self.serial.entries[b.hash]) for tx in b.txs[1:]]
        spent = {i.outpoint for tx in txs for i in tx.inputs}
        self.coins = [c for c in self.coins if c[:2] not in spent] + \
            [(tx.txid, 0, tx.outputs[0].value) for tx in txs if (tx.txid, 0) not in spent]

    def block(self, txs):
        # A new time each call: hypothesis replays examples, and a block both chains already
        # refused would only be "duplicate-invalid" the second time.
        self.made += 1
        return make_block(self.serial, None, KEY.address, extra_txs=txs, time_offset=self.made)


@pytest.fixture(scope="module", params=["thread", "process"])
def twins(request):
    t = Twins(request.param)
    for _ in range(REGTEST.coinbase_maturity + 1):
        b = t.block(())
        assert t.both(b) == ["active", "active"]
    cb = t.serial.get_block(t.serial.chain[1].hash).txs[0]
    value = cb.outputs[0].value
    each = (value - FEE) // FAN_OUT
    fan = Tx(1, (TxIn(cb.txid, 0),), tuple(TxOut(each, KEY.address) for _ in range(FAN_OUT)), 0)
    fan = sign_tx(fan, [(value, KEY.address)], [KEY.secret], [KEY.pubkey])
    assert t.both(t.block([fan])) == ["active", "active"]
    t.coins = [(fan.txid, i, each) for i in range(FAN_OUT)]
    yield t
    t.parallel.sigpool.close()


def build_txs(plan, missing_at=None, overspend_at=None):
    """Payments back to KEY; plan[i] lists tx i's inputs as (coin, fault) with fault one of
    None, "sig" (a corrupted signature), "key" (a key that does not own the coin)."""
    txs = []
    for pos, inputs in enumerate(plan):
        total = sum(c[2] for c, _ in inputs)
        k = len(inputs)
        outs = tuple(TxOut((total - FEE) // k + (FEE * 2 if pos == overspend_at else 0), KEY.address)
                     for _ in range(k))
        ins = tuple(TxIn(c[0], c[1]) for c, _ in inputs)
        if pos == missing_at:
            ins = ins[:-1] + (TxIn(bytes(32), 7),)
        tx = sign_tx(Tx(1, ins, outs, 0), [(c[2], KEY.address) for c, _ in inputs],
                     [KEY.secret] * k, [KEY.pubkey] * k)
        witnessed = []
        for txin, (_, fault) in zip(tx.inputs, inputs):
            if fault == "sig":
                txin = replace(txin, sig=bytes([txin.sig[0] ^ 1]) + txin.sig[1:])
            elif fault == "key":
                txin = replace(txin, pubkey=OTHER.pubkey)
            witnessed.append(txin)
        txs.append(Tx(tx.version, tuple(witnessed), tx.outputs, tx.locktime))
    return txs


@st.composite
def block_plans(draw):
    n_txs = draw(st.integers(1, 14))
    sizes = [draw(st.integers(1, 3)) for _ in range(n_txs)]
    fault_rate = draw(st.sampled_from([0.0, 0.05, 0.2]))
    faults = [[draw(st.sampled_from(["sig", "key"])) if draw(st.floats(0, 1)) < fault_rate else None
               for _ in range(k)] for k in sizes]
    missing_at = draw(st.one_of(st.none(), st.integers(0, n_txs - 1)))
    overspend_at = draw(st.one_of(st.none(), st.integers(0, n_txs - 1)))
    return sizes, faults, missing_at, overspend_at


@seed(20261201)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=block_plans(), order=st.randoms(use_true_random=False))
def test_parallel_and_serial_agree(twins, plan, order):
    sizes, faults, missing_at, overspend_at = plan
    coins = list(twins.coins)
    order.shuffle(coins)
    it = iter(coins)
    inputs = [[(next(it), f) for f in fs] for fs in faults]
    txs = build_txs(inputs, missing_at, overspend_at)
    block = twins.block(txs)
    serial, parallel = twins.both(block)
    assert serial == parallel
    assert serial == "active" or len(serial[1]) == 1       # the one connect failure, its detail
    bad = any(f for fs in faults for f in fs) or missing_at is not None or overspend_at is not None
    assert (serial == "active") == (not bad), serial
    if serial == "active":               # the spent coins are gone, the new ones spendable
        spent = {(c[0], c[1]) for ins in inputs for c, _ in ins}
        twins.coins = [c for c in twins.coins if (c[0], c[1]) not in spent]
        twins.coins += [(tx.txid, i, o.value) for tx in txs for i, o in enumerate(tx.outputs)]


def test_first_failure_in_block_order_wins(twins):
    """Bad signatures in an early and a late chunk and a missing input after both: the
    earliest signature is reported (input 1 of tx 5, where later ones are input 0), as serial
    validation does; and a wrong key before any bad signature is reported instead of them."""
    coins = twins.coins[:14]
    plan = [[(c, None)] for c in coins[:12]]
    plan[4] = [(coins[4], None), (coins[12], "sig")]
    plan[9] = [(coins[9], "sig")]
    serial, parallel = twins.both(twins.block(build_txs(plan, missing_at=11)))
    assert serial == parallel and signature_failure(serial, 1)
    plan = [[(c, None)] for c in coins[:12]]
    plan[2] = [(coins[2], "key")]
    plan[8] = [(coins[8], "sig")]
    serial, parallel = twins.both(twins.block(build_txs(plan)))
    assert serial == parallel and serial[0] == "bad-txns-wrong-key"


def tampered_block(twins, txs, fees: int, tamper: str):
    """A block of `txs` (paying `fees`) whose coinbase claims one unit more ("cb-amount") or whose header
    commits to a wrong name root ("name-root"): failures found after the transactions' checks,
    the second while the block's batch is built, when the workers' answers are still out."""
    twins.made += 1
    t = assemble(twins.serial, list(txs), fees, KEY.address, int(twins.serial.tip.header.time) + 600 + twins.made)
    block, header = t.block, t.block.header
    if tamper == "cb-amount":
        cb = block.txs[0]
        cb = Tx(cb.version, cb.inputs, (TxOut(cb.outputs[0].value + 1, KEY.address),), cb.locktime)
        block = Block(header, (cb, *block.txs[1:]))
        header = replace(header, merkle_root=block_merkle_root(block.txs))
    else:
        header = replace(header, name_root=bytes(range(32)))
    return Block(solve_quick(header, t.target), block.txs)


@pytest.mark.parametrize("tamper,reason", [("cb-amount", "bad-cb-amount"), ("name-root", "bad-name-root")])
def test_signature_before_a_later_block_failure(twins, tamper, reason):
    """The block's signatures are collected only just before its batch commits: a bad one
    still comes before a coinbase overpaying or a wrong name root, as in serial order; without
    it the later failure is reported, and neither chain keeps anything of the block."""
    coins = twins.coins[:40]
    for fault_at in (33, None):
        plan = [[(c, "sig" if i == fault_at else None)] for i, c in enumerate(coins)]
        txs = build_txs(plan)
        fees = sum(c[2] for c in coins) - sum(o.value for tx in txs for o in tx.outputs)
        serial, parallel = twins.both(tampered_block(twins, txs, fees, tamper))
        assert serial == parallel
        if fault_at is None:
            assert serial[0] == reason, serial
        else:
            assert signature_failure(serial, 0), serial
    assert twins.serial.tip.hash == twins.parallel.tip.hash
    assert all(twins.parallel.get_coin(c[0], c[1]) is not None for c in coins)


def big_block(twins, fault_at=None):
    coins = twins.coins[:40]
    plan = [[(c, "sig" if i == fault_at else None)] for i, c in enumerate(coins)]
    return twins.block(build_txs(plan))


def test_reindex_with_workers_and_early_decoding_rebuilds_the_same_state(twins):
    """A reindex connects the stored blocks in one path: each big block's next one is decoded
    while the worker still holds its signatures (BlockFeed.ahead). Both chains end where they
    were, with the same coins."""
    tips = (twins.serial.tip.hash, twins.parallel.tip.hash)
    before = twins.parallel.sigpool.by_workers
    twins.parallel.reindex()
    twins.serial.reindex()
    assert (twins.serial.tip.hash, twins.parallel.tip.hash) == tips and tips[0] == tips[1]
    assert twins.parallel.sigpool.by_workers > before          # the workers took part
    for txid, index, value in twins.coins:
        coin = twins.parallel.get_coin(txid, index)
        assert coin is not None and coin.value == value and coin == twins.serial.get_coin(txid, index)


def big_good_block_then(twins, bad_input: int):
    """A big good block on both chains, then a block of 40 inputs whose input `bad_input` has a
    bad signature (not yet connected): what the reindex tests below replay."""
    coins = twins.coins[:80]
    good = build_txs([[(c, None)] for c in coins[:40]])
    assert twins.both(twins.block(good)) == ["active", "active"]
    spent = {(c[0], c[1]) for c in coins[:40]}
    twins.coins = [c for c in twins.coins if (c[0], c[1]) not in spent]
    twins.coins += [(tx.txid, i, o.value) for tx in good for i, o in enumerate(tx.outputs)]
    return twins.block(build_txs([[(c, "sig" if i == bad_input else None)] for i, c in enumerate(coins[40:])]))


def test_reindex_checks_ahead_and_still_refuses_a_bad_block_as_serially(twins):
    """A big block G and its child B with one bad signature, B refused by both chains. In a
    reindex B comes right after G in one path: B's jobs go to the worker while G is written,
    the good ones are skipped in B's own check, and the bad one is still found there."""
    bad = big_good_block_then(twins, 30)
    serial, parallel = twins.both(bad)
    assert serial == parallel and signature_failure(serial, 0)
    tip = twins.serial.tip.hash
    pool = twins.parallel.sigpool
    ahead_before = pool.by_ahead
    twins.parallel.reindex()
    twins.serial.reindex()
    assert twins.serial.tip.hash == twins.parallel.tip.hash == tip
    assert twins.parallel.failure_reasons[bad.hash] == twins.serial.failure_reasons[bad.hash] == \
        "bad-txns-bad-signature"
    assert pool.by_ahead > ahead_before


def test_reindex_with_workers_leaves_the_store_byte_identical_to_serial(twins, tmp_path):
    """The production reindex (--par 2: workers, checks sent ahead with the coins they read
    kept for the next block) and the serial one (every check in line) leave every key of the
    store identical, a refused bad block after a big good block included."""
    bad = big_good_block_then(twins, 12)
    assert signature_failure(twins.both(bad)[0], 0)
    stores = {}
    for kind in ("parallel", "serial"):
        db = LevelDB(str(tmp_path / kind))
        with db.write_batch() as b:
            for k, v in twins.serial.db.iterator():
                b.put(k, v)
        chain = ChainState(db, REGTEST, clock=lambda: FAR_FUTURE, par=1)
        if kind == "parallel":
            chain.sigpool = twins.parallel.sigpool          # its worker is up already
        before = chain.sigpool.by_workers
        try:
            chain.reindex()
            assert chain.tip.hash == twins.serial.tip.hash and chain.failure_reasons == {bad.hash: "bad-txns-bad-signature"}
            assert (chain.sigpool.by_workers > before) == (kind == "parallel")
            stores[kind] = list(db.iterator())
        finally:
            db.close()
    assert stores["parallel"] == stores["serial"]
    assert len(stores["serial"]) > 500


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_checked_ahead_only_good_jobs_are_known(kind):
    """The verdicts for jobs sent ahead: exactly the good ones become known, so a bad one is
    always checked again in its block."""
    coins = [(bytes([i]) * 32, 0, 50_000) for i in range(40)]
    txs = build_txs([[(c, "sig" if i in (3, 17) else None)] for i, c in enumerate(coins)])
    jobs = [(pos + 1, 0, tx.txid, c[2], KEY.address, tx.inputs[0].pubkey, tx.inputs[0].sig)
            for pos, (tx, c) in enumerate(zip(txs, coins))]
    pool = SigPool(2, min_inputs=2, chunk=8, timeout=30, kind=kind)      # 3 messages: within AHEAD_CHUNKS
    try:
        small = make_block(ChainState(MemoryDB(), REGTEST, clock=lambda: FAR_FUTURE), None, KEY.address)
        assert pool.begin(replace(small, txs=(small.txs[0], *txs))) is not None     # workers up
        pool.check_ahead(jobs)
        deadline = time.monotonic() + 20
        while any(w.pending for w in pool.workers) and time.monotonic() < deadline:
            pool.free_worker(0)
            time.sleep(0.01)
        assert pool.known == {j: i not in (3, 17) for i, j in enumerate(jobs)}
        sigs = pool.begin(replace(small, txs=(small.txs[0], *txs)))
        for job in jobs:
            sigs.jobs.append(job)
        assert list(sigs.jobs) == [jobs[3], jobs[17]] and sigs.jobs.skipped == 38 and not sigs.jobs.covered
    finally:
        pool.close()


@pytest.mark.parametrize("bad,expect", [({17}, 17), ({45}, 45), ({3, 17}, 3), ({17, 45}, 17), ({3, 45}, 3),
                                        (set(), None)])
def test_jobs_in_flight_ahead_are_awaited_not_sent_again(monkeypatch, bad, expect):
    """Jobs sent ahead whose verdict has not come when their block appends them are
    `covered`: neither re-sent nor kept in the block's list; finish() takes their verdicts
    (here the worker is stopped, so it checks them itself) and the earliest bad job in
    serial order wins, whether it was covered or among the block's own chunks."""
    coins = [(bytes([i]) * 32, 0, 50_000) for i in range(48)]
    txs = build_txs([[(c, "sig" if i in bad else None)] for i, c in enumerate(coins)])
    jobs = [(pos + 1, 0, tx.txid, c[2], KEY.address, tx.inputs[0].pubkey, tx.inputs[0].sig)
            for pos, (tx, c) in enumerate(zip(txs, coins))]
    raised = []
    monkeypatch.setattr("node.chain.sigpool.job_error", lambda job: raised.append(job) or ValueError())
    pool = SigPool(2, min_inputs=2, chunk=8, timeout=30, kind="process")
    try:
        small = make_block(ChainState(MemoryDB(), REGTEST, clock=lambda: FAR_FUTURE), None, KEY.address)
        assert pool.begin(replace(small, txs=(small.txs[0], *txs))) is not None     # workers up
        for pid in pool.worker_pids():
            os.kill(pid, signal.SIGSTOP)
        pool.check_ahead(jobs[8:40])          # 4 chunks in flight; the first and last 8 not sent
        assert set(pool.known) == set(jobs[8:40]) and all(v is None for v in pool.known.values())
        sigs = pool.begin(replace(small, txs=(small.txs[0], *txs)))
        for job in jobs:
            sigs.jobs.append(job)
        assert sigs.jobs.covered == jobs[8:40] and list(sigs.jobs) == jobs[:8] + jobs[40:]
        in_line = pool.in_line
        if expect is None:
            sigs.finish()
        else:
            with pytest.raises(ValueError):
                sigs.finish()
        assert raised == ([jobs[expect]] if expect is not None else [])
        assert pool.in_line - in_line == len(jobs)        # the stopped worker never answered
    finally:
        for pid in pool.worker_pids():
            os.kill(pid, signal.SIGCONT)
        pool.close()


def test_messages_ahead_the_worker_has_not_started_are_claimed_and_skipped():
    """At a block's end, the messages sent ahead that the worker has not started, the last
    first, are checked by the connecting thread (claimed); the worker then answers them
    empty, so no job is checked twice. The first one it has started ends the claims."""
    step = AHEAD_STEP
    coins = [(bytes([i]) * 32, 0, 50_000) for i in range(3 * step)]
    txs = build_txs([[(c, "sig" if i == 2 * step + step // 2 else None)] for i, c in enumerate(coins)])
    jobs = [(pos + 1, 0, tx.txid, c[2], KEY.address, tx.inputs[0].pubkey, tx.inputs[0].sig)
            for pos, (tx, c) in enumerate(zip(txs, coins))]
    pool = SigPool(2, min_inputs=2, chunk=8, timeout=30, kind="process")
    try:
        small = make_block(ChainState(MemoryDB(), REGTEST, clock=lambda: FAR_FUTURE), None, KEY.address)
        assert pool.begin(replace(small, txs=(small.txs[0], *txs))) is not None     # workers up
        (pid,) = pool.worker_pids()
        os.kill(pid, signal.SIGSTOP)
        pool.check_ahead(jobs)
        msgs = list(pool.ahead_msgs)
        assert [len(part) for _, _, part in msgs] == [step, step, step]
        worker = pool.workers[0]
        worker.flags[msgs[1][1]] = 2          # as if the worker were in its second message
        sigs = pool.begin(replace(small, txs=(small.txs[0], *txs)))
        for job in jobs:
            sigs.jobs.append(job)
        in_line = pool.in_line
        with pytest.raises(ValidationError, match="bad-txns-bad-signature"):
            sigs.finish()                     # in the claimed last message
        assert [worker.flags[slot] for _, slot, _ in msgs] == [0, 2, 1]
        assert pool.in_line - in_line == 3 * step    # one message claimed, two after the stopped worker's silence
        for job in jobs[2 * step:]:
            pool.known[job] = "claimed"       # a verdict from the worker would replace these
        os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + 20
        while worker.pending and time.monotonic() < deadline:
            pool.free_worker(0)
            time.sleep(0.01)
        assert not worker.pending
        assert [pool.known[job] for job in jobs[2 * step:]] == ["claimed"] * step
        assert all(pool.known[job] is True for job in jobs[:step])    # the worker's own answer
    finally:
        for pid in pool.worker_pids():
            os.kill(pid, signal.SIGCONT)
        pool.close()


def test_block_feed_fetches_again_what_failed_early():
    fetched = []

    def fetch(entry):
        fetched.append(entry)
        if entry == "b" and fetched.count("b") == 1:
            raise OSError("read error")        # the early fetch fails: its turn fetches again
        return entry.upper()

    feed = BlockFeed(["a", "b", "c"], fetch)
    out = []
    for entry, block in feed:
        out.append(block)
        feed.ahead()
        feed.ahead()                               # a second call fetches nothing more
    assert out == ["A", "B", "C"] and fetched == ["a", "b", "b", "c"]


@pytest.mark.parametrize("twins", ["process"], indirect=True)        # a thread has no pid to kill
def test_killed_worker_falls_back_in_line(twins, caplog):
    pool = twins.parallel.sigpool
    pool.begin(big_block(twins))              # workers up
    for pid in pool.worker_pids():
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    with caplog.at_level(logging.WARNING, logger="dotbit.chain"):
        serial, parallel = twins.both(big_block(twins, fault_at=30))
    assert serial == parallel and signature_failure(serial, 0)
    assert "signature worker failed" in caplog.text


@pytest.mark.parametrize("twins", ["process"], indirect=True)
def test_stopped_worker_never_stalls_and_is_given_up(twins, caplog):
    """A stopped worker: its chunks are checked in line at once (no waiting), and once it has
    owed an answer for longer than the timeout it is ended."""
    pool = twins.parallel.sigpool
    pool.timeout = 1.0
    try:
        pool.begin(big_block(twins))
        pids = pool.worker_pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        serial, parallel = twins.both(big_block(twins, fault_at=25))
        assert time.monotonic() - t0 < 5
        assert serial == parallel and signature_failure(serial, 0)
        time.sleep(1.2)
        with caplog.at_level(logging.WARNING, logger="dotbit.chain"):
            serial, parallel = twins.both(big_block(twins, fault_at=33))
        assert serial == parallel and signature_failure(serial, 0)
        assert "no answer in 1 s" in caplog.text
        # (On a very busy machine it may have been given up during the first block already,
        # and new workers started for the second: those are not the stopped ones.)
        assert not set(pool.worker_pids()) & set(pids)
        assert all(not os.path.exists(f"/proc/{p}") or _zombie(p) for p in pids)
    finally:
        pool.timeout = 30


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[1].split()[0] == "Z"


def _native_threads() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_small_blocks_stay_in_line_and_close_ends_workers(kind):
    pool = SigPool(3, kind=kind)
    chain = ChainState(MemoryDB(), REGTEST, clock=lambda: FAR_FUTURE, par=3)
    assert chain.sigpool.size == 2 and pool.size == 2
    small = make_block(chain, None, KEY.address, extra_txs=())
    assert pool.begin(small) is None and pool.workers == []
    rng = random.Random(5)
    fake = [Tx(1, tuple(TxIn(rng.randbytes(32), 0) for _ in range(40)), (TxOut(1, KEY.address),), 0)]
    assert pool.begin(replace(small, txs=(small.txs[0], *fake))) is not None
    if kind == "process":
        procs = [w.proc for w in pool.workers]
        assert len(procs) == 2 and all(p.is_alive() for p in procs)
        pool.close()
        assert pool.workers == [] and not any(p.is_alive() for p in procs)
    else:
        assert len(pool.workers) == 2 and pool.worker_pids() == []
        before = _native_threads()
        pool.close()
        assert pool.workers == [] and len(before - _native_threads()) == 2     # both threads joined


def test_par_setting():
    assert resolve_par(None, cores=2) == 2 and resolve_par(0, cores=64) == 16 and resolve_par(1) == 1
    for bad in (-1, 17):
        with pytest.raises(ValueError, match="--par"):
            resolve_par(bad)


def test_coins_read_ahead_leave_out_the_name_coins_the_block_expires(chain, mempool, clock, params):
    """The coins a block's checks ahead read for the next block are kept for its connect, as
    the store will hold them; a name coin the first block expires (deleted by the name index,
    not in the coin view) must not be among them. Block E expires a name; its child spends the
    name coin. A reindex with a worker connects E, reads the child's coins ahead, and must
    still refuse the child for the missing coin, as in line."""
    from support.name_txs import Funds, firstupdate, name_new, update
    from support.chain import mine, spend
    name = b"d/expiring"
    mine(chain, mempool, KEY.address, 101, clock)
    funds = Funds.coinbases(chain, KEY, range(1, 60))
    new = name_new(funds, name, b"\x01" * 20)
    mempool.accept(new)
    mine(chain, mempool, KEY.address, 1, clock)
    mine(chain, mempool, KEY.address, 12, clock)
    first = firstupdate(funds, new, name, b"\x01" * 20, b"{}", params, chain.height + 1)
    mempool.accept(first)
    mine(chain, mempool, KEY.address, 1, clock)
    registered = chain.height
    while chain.height < registered + params.expiry_depth - 2:
        mine(chain, mempool, KEY.address, 1, clock)
    # E: at this height the name's coin is deleted; two inputs so that its signatures are spread
    assert chain.get_coin(first.txid, 0) is not None
    pay = spend(chain, KEY, [funds.take()[:2], funds.take()[:2]], [(KEY.address, 1000)])
    clock.now += 600
    assert chain.process_block(make_block(chain, None, KEY.address, clock, extra_txs=[pay])) == "active"
    assert chain.get_coin(first.txid, 0) is None
    late = update(funds, first, 0, name, b"{}", KEY)
    clock.now += 600
    child = make_block(chain, None, KEY.address, clock, extra_txs=[late])
    with pytest.raises(ValidationError) as err:
        chain.process_block(child)
    assert err.value.reason == "bad-txns-inputs-missingorspent"
    tip = chain.tip.hash
    chain.sigpool = SigPool(2, min_inputs=2, chunk=3, timeout=30)
    try:
        chain.reindex()
        assert chain.tip.hash == tip
        assert chain.failure_reasons == {child.hash: "bad-txns-inputs-missingorspent"}
    finally:
        chain.sigpool.close()


def test_a_signature_worker_runs_below_the_node_s_priority():
    """The connecting thread keeps its core: the worker asks for less CPU (sigworker.WORKER_NICE)."""
    from node.chain.sigworker import WORKER_NICE
    pool = SigPool(2, min_inputs=2, chunk=8, timeout=30, kind="process")
    try:
        small = make_block(ChainState(MemoryDB(), REGTEST, clock=lambda: FAR_FUTURE), None, KEY.address)
        coins = [(bytes([i]) * 32, 0, 50_000) for i in range(4)]
        txs = build_txs([[(c, None)] for c in coins])
        assert pool.begin(replace(small, txs=(small.txs[0], *txs))) is not None     # workers up
        (pid,) = pool.worker_pids()
        expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICE)
        deadline = time.monotonic() + 20           # the worker lowers its own priority first thing
        while os.getpriority(os.PRIO_PROCESS, pid) != expected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.getpriority(os.PRIO_PROCESS, pid) == expected
    finally:
        pool.close()


def test_blocks_that_arrive_together_connect_together_as_one_by_one(twins):
    """node/chain/blockgroup.py: four blocks handed over together (a good big block, its good
    child, then two children of that one: the first with a bad signature, the second good)
    get, each, the answer the serial chain gives them one by one; the group is connected as a
    stored branch, so the workers check blocks ahead, and both stores end identical."""
    from node.chain.blockgroup import process_blocks

    def payments(coins, bad_at=None):
        return build_txs([[(c, "sig" if i == bad_at else None)] for i, c in enumerate(coins)])

    def outputs(txs):
        return [(tx.txid, 0, tx.outputs[0].value) for tx in txs]

    blocks, serial = [], []
    first = payments(twins.coins[:40])
    second = payments(outputs(first))
    for txs in (first, second):
        blocks.append(twins.block(txs))
        serial.append(twins.serial.process_block(blocks[-1]))
    for bad_at in (25, None):                    # two children of `second`'s block
        last = payments(outputs(second), bad_at)
        blocks.append(twins.block(last))
        try:
            serial.append(twins.serial.process_block(blocks[-1]))
        except ValidationError as e:
            serial.append(e.reason)
    assert serial == ["active", "active", "bad-txns-bad-signature", "active"]
    pool = twins.parallel.sigpool
    ahead = pool.by_ahead
    group = process_blocks(twins.parallel, blocks)
    assert [r.reason if isinstance(r, ValidationError) else r for r in group] == serial
    assert twins.parallel.tip.hash == twins.serial.tip.hash == blocks[-1].hash
    assert pool.by_ahead > ahead                 # the next block's checks went out early
    assert list(twins.parallel.db.iterator()) == list(twins.serial.db.iterator())
    spent = {(c[0], c[1]) for c in twins.coins[:40]}
    twins.coins = [c for c in twins.coins if (c[0], c[1]) not in spent] + outputs(last)


@pytest.mark.parametrize("fault", ["key", "sig", None])
def test_a_group_s_first_block_goes_to_the_workers_while_the_group_is_stored(twins, fault):
    """Nothing precedes a group's first block to send its checks ahead while it connects, so
    they go out while the rest of the group is stored (blockgroup._first_ahead): first of all
    the checks sent ahead, once that block is stored (its sanity checks passed: a stranger's
    junk block costs the worker nothing) and before the next one is. A key that does not own
    its coin or a bad signature there (the worker's verdict: no) still gets serial order's
    error, and a good group leaves both stores identical."""
    from node.chain.blockgroup import process_blocks

    coins = twins.coins[:36]
    first = build_txs([[(c, fault if i == 20 else None)] for i, c in enumerate(coins)])
    blocks = [twins.block(first)]
    if fault is None:                    # then its child
        twins.serial.process_block(blocks[0])
        blocks.append(twins.block(build_txs([[((tx.txid, 0, tx.outputs[0].value), None)] for tx in first])))
        serial = ["active", twins.serial.process_block(blocks[1])]
    else:                                # then a good sibling
        blocks.append(twins.block(build_txs([[(c, None)] for c in twins.coins[36:40]])))
        serial = [outcome(twins.serial.process_block, b) for b in blocks]
        serial = [r.reason if isinstance(r, ValidationError) else r for r in serial]
        assert serial == [f"bad-txns-{'wrong-key' if fault == 'key' else 'bad-signature'}", "active"]
    pool, sent = twins.parallel.sigpool, []
    pool.start()
    real = pool.check_ahead

    def spy(jobs):
        stored = [twins.parallel.entries.get(b.hash) for b in blocks]
        sent.append((jobs, [e is not None and bool(e.status & HAVE_DATA) for e in stored]))
        return real(jobs)
    pool.check_ahead = spy
    try:
        group = process_blocks(twins.parallel, blocks)
    finally:
        del pool.check_ahead
    assert [r.reason if isinstance(r, ValidationError) else r for r in group] == serial
    jobs, stored = sent[0]
    assert stored == [True, False] and [j[:3] for j in jobs] == [(n + 1, 0, tx.txid) for n, tx in enumerate(first)]
    assert twins.parallel.tip.hash == twins.serial.tip.hash
    assert list(twins.parallel.db.iterator()) == list(twins.serial.db.iterator())
    twins.follow(blocks)


@pytest.mark.parametrize("second_spends", ["spent-by-first", "created-by-first"])
def test_coins_read_ahead_do_not_outlive_the_block_before(twins, second_spends):
    """The next block's coins are read as the block before it starts to connect, and kept
    for its own connect (blockcheck.settle_ahead). A racer's block that spends again a coin
    the block before spent must still be refused (the coin read early is dropped, not
    reused), while spending what the block before created stays valid; as serial."""
    from node.chain.blockgroup import process_blocks

    coins = twins.coins[:34]
    first = build_txs([[(c, None)] for c in coins[:33]])
    blocks = [twins.block(first)]
    twins.serial.process_block(blocks[0])
    if second_spends == "spent-by-first":    # coin 0 again, beside a fresh one: a double spend
        plan = [[(coins[0], None)], [(coins[33], None)]] + \
            [[((tx.txid, 0, tx.outputs[0].value), None)] for tx in first[1:32]]
    else:
        plan = [[(coins[33], None)]] + [[((tx.txid, 0, tx.outputs[0].value), None)] for tx in first]
    blocks.append(twins.block(build_txs(plan)))
    serial = ["active", outcome(twins.serial.process_block, blocks[1])]
    serial = [r.reason if isinstance(r, ValidationError) else r for r in serial]
    assert serial == ["active", "bad-txns-inputs-missingorspent" if second_spends == "spent-by-first" else "active"]
    twins.parallel.sigpool.start()
    group = process_blocks(twins.parallel, blocks)
    assert [r.reason if isinstance(r, ValidationError) else r for r in group] == serial
    assert twins.parallel.tip.hash == twins.serial.tip.hash
    assert list(twins.parallel.db.iterator()) == list(twins.serial.db.iterator())
    twins.follow(blocks)


def test_a_junk_first_block_sends_nothing_to_the_workers(twins):
    """A stranger's block that fails its sanity checks (here its merkle root), first in a
    group beside a good block, costs the workers nothing: no check goes ahead for it; both
    blocks get the serial answers."""
    from node.chain.blockgroup import process_blocks

    txs = build_txs([[(c, None)] for c in twins.coins[:36]])
    twins.made += 1
    t = assemble(twins.serial, txs, FEE * len(txs), KEY.address, int(twins.serial.tip.header.time) + 600 + twins.made)
    # A wrong merkle root with valid proof of work (solved again: the root is in the hashed header).
    junk = Block(solve_quick(replace(t.block.header, merkle_root=bytes(32)), t.target), t.block.txs)
    good = twins.block(build_txs([[(c, None)] for c in twins.coins[36:40]]))
    serial = [outcome(twins.serial.process_block, b) for b in (junk, good)]
    assert [r.reason if isinstance(r, ValidationError) else r for r in serial] == ["bad-txnmrklroot", "active"]
    pool, sent = twins.parallel.sigpool, []
    pool.start()
    real = pool.check_ahead
    pool.check_ahead = lambda jobs: sent.append(jobs) or real(jobs)
    try:
        group = process_blocks(twins.parallel, [junk, good])
    finally:
        del pool.check_ahead
    assert [r.reason if isinstance(r, ValidationError) else r for r in group] == ["bad-txnmrklroot", "active"]
    junk_txids = {tx.txid for tx in junk.txs}
    assert not any(j[2] in junk_txids for jobs in sent for j in jobs)
    twins.follow([good])
