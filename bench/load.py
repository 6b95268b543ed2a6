"""Load run: a small network of real node processes under a steady, bounded mixed load.

Starts --nodes regtest nodes on loopback, p2p-connected (node i dials i-1 and i-2, so relay
crosses several hops); node 0 mines every --mine-interval seconds, the last two also serve
DNS and the signed HTTP API. After funding, for --minutes it keeps up:

  - payments (signed here, sendrawtransaction) at --tx-rate per second, round-robin over nodes;
  - name operations: a new name every --name-every seconds, each going NAME_NEW ->
    NAME_FIRSTUPDATE (once 12 deep) -> NAME_UPDATE every few blocks, also spread over nodes;
  - DNS queries over UDP (dnspython) and HTTP /v1/domain queries against both resolvers.

Measured: tx relay latency (submit at node A until every other node has it in its mempool or
a block, by polling every 0.1 s), mempool sizes over time, every node's RSS over time
(flatness: median of the last third against the middle third), DNS/HTTP rates and errors.
Then it stops submitting, mines until every mempool is empty and checks: every accepted
transaction is mined, every node is on the same tip with the same name root, RSS growth is
within --rss-max-growth (runs of 2 minutes or more), DNS/HTTP errors stay under 1%.
Exit 1 if any check fails.

    python bench/load.py [--nodes 5] [--minutes 10] [--mine-interval 5] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, os.path.join(HERE, ".."))     # first: bench/wallet.py must not shadow the wallet package

from core.consensus import COIN  # noqa: E402
from core.crypto import encode_address, hash160, pubkey_from_secret  # noqa: E402
from core.primitives import Tx, TxIn, TxOut  # noqa: E402
from core.signing import sign_tx  # noqa: E402
from core.names.ops import firstupdate_outputs, name_new_output, update_output  # noqa: E402
from core.names.rules import registration_burn  # noqa: E402
from core.params import REGTEST  # noqa: E402
from wallet.nodeclient import NodeError, OperatorClient  # noqa: E402
from figures import figure  # noqa: E402
from load_probes import POLL, Querier, Watcher, rss_kib  # noqa: E402
from support.harness import NodeProcess  # noqa: E402

P = REGTEST
FEE = 20_000                   # far above the 1 unit/byte relay minimum for these sizes
LOCK = COIN // 100             # what every name coin locks
UPDATE_EVERY = 6               # blocks between updates of a live name (expiry is 30 on regtest)


class Key:
    def __init__(self, rng: random.Random):
        self.secret = rng.randbytes(32)
        self.pubkey = pubkey_from_secret(self.secret)
        self.address = hash160(self.pubkey)
        self.text = encode_address(P.address_version, self.address)


def pct(values, q: float):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


# --- the load ------------------------------------------------------------------------------------

class Load:
    def __init__(self, nodes: list[NodeProcess], watchers: list[Watcher], resolvers: list[NodeProcess],
                 rng: random.Random, keys: list[Key]):
        self.nodes, self.watchers, self.resolvers = nodes, watchers, resolvers
        self.rng, self.keys = rng, keys
        self.rpcs = [OperatorClient(f"http://127.0.0.1:{n.rpc_port}", os.path.join(n.datadir, ".cookie"))
                     for n in nodes]
        self.coins: list[tuple[bytes, int, int, Key]] = []      # spendable: relayed everywhere
        self.waiting: dict[str, list] = {}                      # txid -> outputs freed once relayed
        self.pending: dict[str, tuple[float, int]] = {}         # txid -> (submit time, origin)
        self.latencies: list[float] = []
        self.accepted: set[str] = set()
        self.rejected: dict[str, int] = {}
        self.kinds = {"payment": 0, "name_new": 0, "name_firstupdate": 0, "name_update": 0}
        self.names: list[dict] = []
        self.live_names: list[str] = []                        # "loadN.bit" once registered
        self.turn = 0

    # submitting --------------------------------------------------------------------------------

    def submit(self, tx: Tx, kind: str, outputs: list, spent: list) -> bool:
        origin = self.turn % len(self.nodes)
        self.turn += 1
        txid = tx.txid.hex()
        t0 = time.monotonic()
        try:
            self.rpcs[origin].call("sendrawtransaction", tx.to_bytes().hex())
        except NodeError as e:
            reason = e.message.split(" (code")[0][:60]
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
            self.coins.extend(spent)                     # inputs were not spent after all
            return False
        self.accepted.add(txid)
        self.kinds[kind] += 1
        self.pending[txid] = (t0, origin)
        self.waiting[txid] = outputs
        return True

    def take_coin(self):
        if not self.coins:
            return None
        return self.coins.pop(self.rng.randrange(len(self.coins)))

    def payment(self) -> None:
        coin = self.take_coin()
        if coin is None:
            return
        txid, idx, value, key = coin
        to = self.rng.choice(self.keys)
        amount = min(value - FEE - 1000, self.rng.randrange(COIN // 100, COIN // 5))
        if amount <= 0:
            return
        outs = (TxOut(amount, to.address), TxOut(value - amount - FEE, key.address))
        tx = sign_tx(Tx(1, (TxIn(txid, idx),), outs, 0), [(value, key.address)], [key.secret], [key.pubkey])
        self.submit(tx, "payment", [(tx.txid, 0, amount, to), (tx.txid, 1, outs[1].value, key)], [coin])

    def name_tx(self, kind: str, name_outs: list[TxOut], name_in=None, owner: Key | None = None):
        """A name operation paid by one spendable coin (change back to its key)."""
        coin = self.take_coin()
        if coin is None:
            return None
        txid, idx, value, key = coin
        ins, spent, secrets, pubs = [TxIn(txid, idx)], [(value, key.address)], [key.secret], [key.pubkey]
        total = value
        if name_in is not None:
            ins.insert(0, TxIn(name_in[0], name_in[1]))
            spent.insert(0, (LOCK, owner.address))
            secrets.insert(0, owner.secret)
            pubs.insert(0, owner.pubkey)
            total += LOCK
        change = total - sum(o.value for o in name_outs) - FEE
        if change < 1000:
            return None                       # a worn-out coin: leave it
        outs = tuple(name_outs) + (TxOut(change, key.address),)
        tx = sign_tx(Tx(1, tuple(ins), outs, 0), spent, secrets, pubs)
        ok = self.submit(tx, kind, [(tx.txid, len(outs) - 1, change, key)], [coin])
        return tx if ok else None

    def new_name(self) -> None:
        n = len(self.names)
        name = f"d/load{n}".encode()
        owner, rand = self.rng.choice(self.keys), self.rng.randbytes(20)
        tx = self.name_tx("name_new", [name_new_output(name, rand, owner.address, LOCK)])
        if tx is not None:
            self.names.append({"name": name, "owner": owner, "rand": rand, "state": "new",
                               "txid": tx.txid.hex(), "coin": (tx.txid, 0), "updated": 0, "listed": False})

    def advance_names(self) -> None:
        mined = self.watchers[0].mined_height
        tip = self.watchers[0].height
        for nm in self.names:
            h = mined.get(nm["txid"])
            if h is None:
                continue                      # its last operation is not mined yet
            if nm["state"] == "new" and tip + 1 - h >= P.min_firstupdate_depth:
                outs = firstupdate_outputs(nm["name"], nm["rand"], self.value(), nm["owner"].address, LOCK,
                                           registration_burn(nm["name"], tip + 1, P))
                tx = self.name_tx("name_firstupdate", outs, nm["coin"], nm["owner"])
                if tx is not None:
                    nm.update(state="live", txid=tx.txid.hex(), coin=(tx.txid, 0))
                continue
            if nm["state"] == "live" and not nm["listed"]:
                nm["listed"] = True                  # registered: now worth querying
                self.live_names.append(nm["name"].decode()[2:] + ".bit")
            if nm["state"] == "live" and tip - h >= UPDATE_EVERY:
                tx = self.name_tx("name_update", [update_output(nm["name"], self.value(), nm["owner"].address, LOCK)],
                                  nm["coin"], nm["owner"])
                if tx is not None:
                    nm.update(txid=tx.txid.hex(), coin=(tx.txid, 0), updated=nm["updated"] + 1)

    def value(self) -> bytes:
        return json.dumps({"ip": f"10.{self.rng.randrange(256)}.{self.rng.randrange(256)}.1"}).encode()

    def settle(self) -> None:
        """Relay latencies of transactions every node now has; their outputs become spendable."""
        done = []
        for txid, (t0, origin) in self.pending.items():
            times = [w.seen.get(txid) for i, w in enumerate(self.watchers) if i != origin]
            if all(t is not None for t in times):
                self.latencies.append(max(times) - t0)
                done.append(txid)
        for txid in done:
            del self.pending[txid]
            self.coins.extend(self.waiting.pop(txid, ()))

    def close(self) -> None:
        for r in self.rpcs:
            r.close()


# --- the run -------------------------------------------------------------------------------------

def start_network(work: str, n: int, mine_interval: float, miner_key: Key, nodes: list) -> None:
    """Appends each node to `nodes` as it is started, so the caller stops every started one
    when a later one fails. Node i dials i-1 and i-2 at the ports they did start on."""
    for i in range(n):
        extra = []
        if i == 0:
            extra += ["--mine", "--mine-interval", str(mine_interval), "--mine-address", miner_key.text]
        extra += [a for j in (i - 1, i - 2) if j >= 0 for a in ("--connect", nodes[j].p2p_addr)]
        node = NodeProcess(os.path.join(work, f"node{i}"), *extra, resolver=i >= n - 2 and i > 0)
        try:
            node.start(60)
        finally:
            if node.proc is not None:
                nodes.append(node)     # stopped by the caller, whether it came up or not


def wait_for(fn, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def fund(nodes, watchers, keys: list[Key], miner_key: Key, outputs: int) -> list:
    """Mature coinbases for the miner key, split into `outputs` coins over all keys."""
    miner = nodes[0]
    miner.call("generatetoaddress", P.coinbase_maturity + 10, miner_key.text)
    utxos = [u for u in miner.call("getaddressutxos", miner_key.text)
             if u["coinbase"] and u["height"] + P.coinbase_maturity <= miner.call("getblockcount")]
    per_tx = 50
    coins = []
    for u in utxos[: (outputs + per_tx - 1) // per_tx]:
        value = u["value_sat"]
        each = (value - FEE) // per_tx
        outs = tuple(TxOut(each, keys[i % len(keys)].address) for i in range(per_tx))
        tx = sign_tx(Tx(1, (TxIn(bytes.fromhex(u["txid"]), u["outputIndex"]),), outs, 0),
                     [(value, miner_key.address)], [miner_key.secret], [miner_key.pubkey])
        miner.call("sendrawtransaction", tx.to_bytes().hex())
        coins += [(tx.txid, i, each, keys[i % len(keys)]) for i in range(per_tx)]
    miner.call("generatetoaddress", 1, miner_key.text)
    tip = miner.call("getbestblockhash")
    wait_for(lambda: all(tip in w.known_blocks for w in watchers), 60, "nodes to sync the funding block")
    return coins


def run(args) -> dict:
    rng = random.Random(args.seed)
    keys = [Key(rng) for _ in range(8)]
    miner_key = Key(rng)
    work = args.workdir or tempfile.mkdtemp(prefix="dotbit-load-")
    nodes, watchers, queriers = [], [], []
    report: dict = {"nodes": args.nodes, "minutes": args.minutes, "mine_interval": args.mine_interval,
                    "tx_rate": args.tx_rate, "dns_rate": args.dns_rate, "http_rate": args.http_rate}
    load = None
    try:
        t_setup = time.monotonic()
        start_network(work, args.nodes, args.mine_interval, miner_key, nodes)
        resolvers = [n for n in nodes if "dns_port" in n.ports]
        wait_for(lambda: all(len(n.call("getpeerinfo")) >= 1 for n in nodes), 30, "peers to connect")
        watchers = [Watcher(n, i) for i, n in enumerate(nodes)]
        for w in watchers:
            w.start()
        coins = fund(nodes, watchers, keys, miner_key, args.coins)
        start_height = watchers[0].height
        report["setup_seconds"] = round(time.monotonic() - t_setup, 1)
        load = Load(nodes, watchers, resolvers, rng, keys)
        load.coins = coins
        queriers = [Querier("dns", resolvers, args.dns_rate, load.live_names, 1),
                    Querier("http", resolvers, args.http_rate, load.live_names, 2)]
        for q in queriers:
            q.start()

        duration = args.minutes * 60
        t_start = time.monotonic()
        end = t_start + duration
        next_pay = next_name = next_sample = t_start
        rss: dict[int, list] = {i: [] for i in range(len(nodes))}
        mempools: list = []
        sample_every = max(1.0, min(10.0, duration / 30))
        while (now := time.monotonic()) < end:
            while next_pay <= now:
                load.payment()
                next_pay += 1.0 / args.tx_rate
            if next_name <= now:
                load.new_name()
                next_name += args.name_every
            load.advance_names()
            load.settle()
            if next_sample <= now:
                for i, n in enumerate(nodes):
                    r = rss_kib(n.proc.pid)
                    if r is not None:
                        rss[i].append((now - t_start, r))
                mempools.append((round(now - t_start, 1), [w.mempool_size for w in watchers]))
                next_sample += sample_every
            time.sleep(0.02)
        t_load = time.monotonic() - t_start
        for q in queriers:
            q.halt.set()
        for q in queriers:
            q.join(10)

        # Drain: no more submissions; mine until every mempool is empty and all agree.
        t_drain = time.monotonic()
        deadline = t_drain + args.drain_timeout
        while time.monotonic() < deadline:
            load.settle()
            tips = {w.tip for w in watchers}
            if len(tips) == 1 and all(w.mempool_size == 0 for w in watchers) and not load.pending:
                break
            if any(w.mempool_size for w in watchers):
                try:
                    nodes[0].call("generatetoaddress", 1, miner_key.text)
                except NodeError:
                    pass
            time.sleep(0.5)
        report["drain_seconds"] = round(time.monotonic() - t_drain, 1)
        for w in watchers:
            w.halt.set()
        for w in watchers:
            w.join(10)

        report.update(measure(load, queriers, rss, mempools, t_load))
        report["checks"] = check(args, nodes, load, start_height, report)
        report["load_average"] = os.getloadavg()
        return report
    finally:
        for q in queriers:
            q.halt.set()
        for w in watchers:
            w.halt.set()
        if load is not None:
            load.close()
        for n in nodes:
            try:
                n.stop()
            except Exception:
                n.kill()
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def measure(load: Load, queriers, rss, mempools, seconds: float) -> dict:
    lat = load.latencies
    out = {"load_seconds": round(seconds, 1),
           "tx_accepted": len(load.accepted), "tx_by_kind": load.kinds, "tx_rejected": load.rejected,
           "names_started": len(load.names), "names_live": len(load.live_names),
           "relay_latency_s": {"n": len(lat), "median": _r(statistics.median(lat)) if lat else None,
                               "p95": _r(pct(lat, 0.95)), "max": _r(max(lat)) if lat else None},
           "mempool_sizes": {"samples": mempools[:: max(1, len(mempools) // 12)],
                             "max": max((max(s) for _, s in mempools), default=0)}}
    growth = {}
    rss_mib = {}
    for i, samples in rss.items():
        values = [r for _, r in samples]
        rss_mib[i] = [round(v / 1024, 1) for v in values[:: max(1, len(values) // 10)]]
        third = len(values) // 3
        if third >= 1:
            middle, last = statistics.median(values[third: 2 * third]), statistics.median(values[2 * third:])
            growth[i] = round(100.0 * (last - middle) / middle, 1)
    out["rss_mib"] = rss_mib
    out["rss_growth_pct"] = growth
    for q in queriers:
        total = q.ok + q.errors
        out[q.kind] = {"queries": total, "per_second": round(total / seconds, 1), "errors": q.errors,
                       "error_kinds": q.error_kinds, "median_ms": _r(1000 * statistics.median(q.latencies)) if q.latencies else None,
                       "p95_ms": _r(1000 * pct(q.latencies, 0.95)) if q.latencies else None}
    return out


def _r(x):
    return None if x is None else round(x, 3)


def check(args, nodes, load: Load, start_height: int, report: dict) -> dict:
    checks = {}
    deadline = time.monotonic() + 30
    while True:                 # the miner keeps mining: look for a moment all nodes agree
        heads = [n.call("getbestblockhash") for n in nodes]
        if len(set(heads)) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    checks["same_tip"] = len(set(heads)) == 1
    roots = [n.call("getblockheader", h)["name_root"] for n, h in zip(nodes, heads)]
    checks["same_name_root"] = len(set(roots)) == 1
    checks["mempools_empty"] = all(n.call("getmempoolinfo")["size"] == 0 for n in nodes)
    mined = set()
    tip_height = nodes[0].call("getblockcount")
    for h in range(start_height, tip_height + 1):
        mined.update(nodes[0].call("getblock", nodes[0].call("getblockhash", h), 1)["tx"])
    missing = load.accepted - mined
    checks["all_accepted_mined"] = not missing
    report["not_mined"] = sorted(missing)[:10]
    checks["all_relayed"] = not load.pending
    checks["nodes_alive"] = all(n.proc.poll() is None for n in nodes)
    if args.minutes >= 2:
        checks["rss_flat"] = all(g <= args.rss_max_growth for g in report["rss_growth_pct"].values())
    for kind in ("dns", "http"):
        q = report[kind]
        checks[f"{kind}_errors_under_1pct"] = q["queries"] > 0 and q["errors"] <= 0.01 * q["queries"]
    checks["load_happened"] = len(load.accepted) > 0 and load.kinds["payment"] > 0 and load.kinds["name_new"] > 0
    return checks


def summary(r: dict) -> str:
    lat = r["relay_latency_s"]
    lines = [
        f"{r['nodes']} nodes, {r['load_seconds']:.0f} s of load (setup {r['setup_seconds']} s, drain "
        f"{r['drain_seconds']} s), block every {r['mine_interval']} s, load average {r['load_average'][0]:.2f}",
        f"transactions accepted {r['tx_accepted']} {r['tx_by_kind']}, rejected {r['tx_rejected']}",
        f"names started {r['names_started']}, registered {r['names_live']}",
        f"tx relay to every node (s): median {lat['median']}, p95 {lat['p95']}, max {lat['max']} (n={lat['n']}, "
        f"poll {POLL} s)",
        f"mempool size max {r['mempool_sizes']['max']}; samples (t, per node): "
        + " ".join(f"{t:.0f}s:{'/'.join(map(str, s))}" for t, s in r["mempool_sizes"]["samples"]),
    ]
    for i, values in r["rss_mib"].items():
        lines.append(f"node {i} RSS MiB {values[0]} .. {values[-1]} (max {max(values)}), growth last vs "
                     f"middle third {r['rss_growth_pct'].get(i)}%")
    for kind in ("dns", "http"):
        q = r[kind]
        lines.append(f"{kind}: {q['queries']} queries, {q['per_second']}/s, errors {q['errors']} "
                     f"{q['error_kinds'] or ''}, median {q['median_ms']} ms, p95 {q['p95_ms']} ms")
    lines.append("checks: " + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in r["checks"].items()))
    return "\n".join(lines)


def figures(r: dict) -> None:
    lat = r["relay_latency_s"]
    n = f"{r['nodes']} nodes, {r['load_seconds'] / 60:.1f} min"
    figure("relay_median_s", lat["median"], "s", f"tx relay to every node, median ({n}, poll {POLL} s)")
    figure("relay_p95_s", lat["p95"], "s", "tx relay to every node, p95")
    figure("tx_accepted", r["tx_accepted"], "txs", "transactions accepted (payments and name operations)")
    figure("mempool_max", r["mempool_sizes"]["max"], "txs", "largest mempool seen")
    figure("rss_growth_pct", max(r["rss_growth_pct"].values(), default=None), "%",
           "RSS growth, last third vs middle third, worst node", "flat (<= 10%)")
    for kind in ("dns", "http"):
        figure(f"{kind}_qps", r[kind]["per_second"], "q/s", f"{kind.upper()} queries served alongside")
        figure(f"{kind}_errors", r[kind]["errors"], "errors", f"{kind.upper()} errors", "0")
    figure("checks_failed", sum(1 for ok in r["checks"].values() if not ok), "checks",
           "end checks failed (all mined, one tip, one name root, empty mempools...)", "0")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--mine-interval", type=float, default=5.0)
    ap.add_argument("--tx-rate", type=float, default=2.0, help="payments per second")
    ap.add_argument("--name-every", type=float, default=10.0, help="seconds between new names")
    ap.add_argument("--dns-rate", type=float, default=20.0, help="DNS queries per second (both resolvers)")
    ap.add_argument("--http-rate", type=float, default=5.0, help="HTTP queries per second")
    ap.add_argument("--coins", type=int, default=300, help="funding coins to start with")
    ap.add_argument("--rss-max-growth", type=float, default=10.0, help="percent, last vs middle third")
    ap.add_argument("--drain-timeout", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", help="keep node data here (default: a temp dir, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--json", help="also write the report here")
    args = ap.parse_args()
    if args.nodes < 3:
        ap.error("--nodes must be at least 3 (one miner, two resolvers)")
    try:
        report = run(args)
    except (RuntimeError, NodeError, OSError) as e:
        print(f"load: {e}", file=sys.stderr)
        return 1
    print(summary(report))
    figures(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    failed = [k for k, ok in report["checks"].items() if not ok]
    if failed:
        print(f"load: FAILED checks: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("load: all checks passed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
