"""One machine-readable line per measured figure, beside the human-readable output:

    FIGURE {"name": "tx_rate", "value": 5350.2, "unit": "tx/s", "label": "...", "target": ">= 5,000"}

bench/run_all.py collects them (prefixing the bench's name) and fills BENCHMARKS.md from
bench/BENCHMARKS.template.md; run alone, a bench still prints its usual text first."""
from __future__ import annotations

import json
import math


def figure(name: str, value: float, unit: str, label: str, target: str = "") -> None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return                      # not measured in this mode (e.g. names.py --reuse)
    print("FIGURE " + json.dumps({"name": name, "value": value, "unit": unit, "label": label, "target": target}),
          flush=True)
