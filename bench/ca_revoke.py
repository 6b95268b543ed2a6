"""CA revocation benchmark: N live leaves (8 per name, the per-name limit), then N owner
revocations one at a time, each the way the service does it (record written, CRL made
available), then one CRL fetch. Real CA key (P-256, `ca init`'s), LevelDB store.

Issue 16 measured 5.4 s and a 133 KB CRL for 1,000 revocations when every revocation re-signed
the CRL over every revoked serial; now a revocation writes one record and the CRL is re-made
once, on the next fetch.

    python bench/ca_revoke.py [--n 1000] [--repeat 3]     (FIGURE lines: medians of the repeats)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(1, HERE)

from figures import figure  # noqa: E402

from core.params import REGTEST  # noqa: E402
from node.chain.storage import LevelDB  # noqa: E402
from node.resolver.ca.authority import init_ca  # noqa: E402
from node.resolver.ca.service import CAService, _new_serial  # noqa: E402
from node.resolver.ca.store import CertRecord  # noqa: E402


def run(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        now = time.time()
        db = LevelDB(os.path.join(tmp, "db"))
        try:
            ca = CAService(init_ca(tmp, "bench", "regtest", now), db, lambda name: None, lambda: 0,
                           lambda k: [], REGTEST)
            recs = []
            for i in range(n):
                rec = CertRecord(_new_serial(), b"d/n%d" % (i // 8), b"der", int(now), int(now) + 86400, bytes(20))
                ca.store.add(rec)
                recs.append(rec)
            t0 = time.perf_counter()
            for rec in recs:
                ca._revoke([rec], "owner-request")
            revoking = time.perf_counter() - t0
            t0 = time.perf_counter()
            der = ca.crl()
            fetch = time.perf_counter() - t0
            return {"revocations": n, "revoke_total_s": round(revoking, 3),
                    "per_revocation_ms": round(1000 * revoking / n, 3), "crl_fetch_s": round(fetch, 3),
                    "crl_bytes": len(der)}
        finally:
            db.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    runs = [run(args.n) for _ in range(args.repeat)]
    for r in runs:
        print(r)

    def med(key):
        return statistics.median(r[key] for r in runs)
    figure("per_revocation", med("per_revocation_ms"), "ms", f"one owner revocation, after up to {args.n:,} others",
           "independent of history")
    figure("revoke_total", med("revoke_total_s"), "s", f"{args.n:,} revocations one at a time (issue 16: 5.4 s)")
    figure("crl_fetch", med("crl_fetch_s"), "s", f"the CRL re-made once on the next fetch, {args.n:,} serials")
    figure("crl_bytes", med("crl_bytes"), "bytes", "CRL size (expired serials pruned)")


if __name__ == "__main__":
    main()
