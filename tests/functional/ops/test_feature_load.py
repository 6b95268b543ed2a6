"""The load run (bench/load.py) as a smoke test: three real node processes for ~30 s of
payments, name operations, DNS and HTTP queries, then the run's own end checks (every accepted
transaction mined, one tip, one name root, empty mempools) must all hold."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from support.harness import ROOT


def test_load_smoke(tmp_path):
    out = tmp_path / "load.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "load.py"), "--nodes", "3", "--minutes", "0.5",
                        "--mine-interval", "1", "--json", str(out)],
                       capture_output=True, text=True, timeout=170)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert all(rep["checks"].values()), rep["checks"]
    kinds = rep["tx_by_kind"]
    # ~2 payments/s for 30 s, and every step of a name's life reached with a block a second
    assert kinds["payment"] >= 30 and kinds["name_new"] >= 2 and kinds["name_firstupdate"] >= 1
    lat = rep["relay_latency_s"]
    assert lat["n"] == rep["tx_accepted"] and lat["median"] is not None and lat["p95"] < 10
    for kind in ("dns", "http"):
        assert rep[kind]["queries"] >= 50 and rep[kind]["errors"] == 0, rep[kind]
    assert set(rep["rss_growth_pct"]) == {"0", "1", "2"}
    assert "checks:" in r.stdout and "FAILED" not in r.stdout
