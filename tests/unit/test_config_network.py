"""core/config.py: a data dir given without a network names its own (its marker file), and a
network given that disagrees is a ConfigError of one line."""
from __future__ import annotations

import pytest

from core.config import ConfigError, load


def reader(files: dict):
    return lambda path: files.get(path)


def test_network_comes_from_the_datadir_marker():
    read = reader({"/d/network": b"regtest\n"})
    assert load(None, None, "/d", {}, read, "/")[1:] == ("regtest", "/d")
    assert load(None, "regtest", "/d", {}, read, "/")[1] == "regtest"
    assert load(None, None, "/other", {}, read, "/")[1] == "main"          # no marker: the default


@pytest.mark.parametrize("flag, env, where", [("main", {}, "--network"), (None, {"DOTBIT_NETWORK": "testnet"}, "env")])
def test_a_conflicting_network_names_both(flag, env, where):
    with pytest.raises(ConfigError) as e:
        load(None, flag, "/d", env, reader({"/d/network": b"regtest"}), "/")
    assert "/d holds a regtest chain" in str(e.value) and f"(from {where})" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_recorded_network_can_come_from_elsewhere():
    """The node passes a reader of its store's stamp for data dirs from before the marker."""
    assert load(None, None, "/d", {}, reader({}), "/", recorded=lambda d: "testnet")[1] == "testnet"
