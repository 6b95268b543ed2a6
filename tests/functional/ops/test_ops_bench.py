"""bench/run_all.py collects every bench's FIGURE lines and fills the BENCHMARKS template."""
from __future__ import annotations

import os

import pytest

from support.bench import BENCH, load_script

run_all = load_script("run_all")


def test_render_fills_tables_and_figures_and_says_what_was_not_run():
    figs = {"wallet": [{"name": "open", "value": 198.04, "unit": "ms", "label": "open a wallet", "target": ""},
                       {"name": "derive", "value": 7595.2, "unit": "keys/s", "label": "derive", "target": ">= 1"}]}
    text = run_all.render("{{date}} | {{fig wallet.derive}} | {{fig wallet.nope}}\n{{table wallet}}\n{{table names}}",
                          figs, {"date": "D"})
    lines = text.splitlines()
    assert lines[0] == "D | 7,595 keys/s | (not measured)"
    assert "| open a wallet | **198 ms** |  |" in lines
    assert "| derive | **7,595 keys/s** | >= 1 |" in lines
    assert lines[-1] == "_Not run in this pass: `names`._"
    both = run_all.render("{{table wallet names}}", figs, {})
    assert "| derive |" in both and both.endswith("_Not run in this pass: `names`._")


def test_every_template_placeholder_is_known():
    import re
    with open(run_all.TEMPLATE) as f:
        template = f.read()
    names = {n for n, _ in run_all.benches("x", False)}
    tabled = set()
    for word in re.findall(r"\{\{([^{}]+)\}\}", template):
        kind, _, arg = word.partition(" ")
        tabled |= set(arg.split()) if kind == "table" else set()
        assert kind in ("date", "mode", "machine", "durations") or (kind == "table" and set(arg.split()) <= names), word
    assert tabled == names            # every bench's figures land somewhere in BENCHMARKS.md


@pytest.mark.timeout(120)
def test_a_real_bench_reports_figures(capsys):
    rc, figs = run_all.run_bench(os.path.join(BENCH, "wallet.py"), ["--repeat", "1"])
    assert rc == 0
    assert {f["name"] for f in figs} == {"derive", "sign10", "open", "save"}
    assert all(f["value"] > 0 and f["unit"] and f["label"] for f in figs)
    assert "BIP32 derivation:" in capsys.readouterr().out        # the human text still comes through
