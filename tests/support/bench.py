"""bench/ for the tests that check the bench tooling itself: where the scripts are, and one
loaded as a module by its path (bench/ never goes on sys.path: bench/wallet.py would shadow
the wallet package)."""
from __future__ import annotations

import importlib.util
import os
from types import ModuleType

from support.harness import ROOT

BENCH = os.path.join(ROOT, "bench")


def load_script(name: str) -> ModuleType:
    """bench/<name>.py as a module named bench_<name>, without running its main()."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(BENCH, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
