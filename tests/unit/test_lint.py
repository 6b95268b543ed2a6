"""Every package stays free of what pyflakes finds: unused imports, undefined names, unused
locals. A re-export is declared in __all__ (pyflakes honours it, not a noqa comment)."""
from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ["core", "light", "node", "wallet", "p2p", "connect", "tunnel", "tests", "bench"]


def test_pyflakes_finds_nothing():
    out = subprocess.run([sys.executable, "-m", "pyflakes", *PACKAGES], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert "No module named pyflakes" not in out.stderr, "pyflakes is a test dependency: pip install -e '.[test]'"
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


def test_pyflakes_reports_a_planted_unused_import(tmp_path):
    # the check above passes only because pyflakes ran and found nothing, not because it never looked
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    out = subprocess.run([sys.executable, "-m", "pyflakes", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "'os' imported but unused" in out.stdout
