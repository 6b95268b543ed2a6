"""The reindex/checkdb progress line: no "0/0" line for genesis, which a reindex connects alone
before the rest; the last block's line ends with a newline."""
from __future__ import annotations

import io
from types import SimpleNamespace

from node.ops.maintenance import Progress


def test_genesis_alone_prints_nothing_and_the_last_block_ends_the_line():
    out = io.StringIO()
    progress = Progress("reindex", out)
    genesis = SimpleNamespace(height=0)
    progress(genesis, genesis)
    assert out.getvalue() == ""
    tip = SimpleNamespace(height=3)
    for h in (1, 2):
        progress(SimpleNamespace(height=h), tip)
    progress(tip, tip)
    text = out.getvalue()
    assert "height 0/" not in text
    assert text.endswith("\n") and "reindex: height 3/3 (100.0%)" in text
    assert progress.count == 3
