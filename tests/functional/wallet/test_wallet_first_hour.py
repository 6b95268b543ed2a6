"""What a new user hits in the wallet's first hour (issue 17): `register --wait` returning
only once the name resolves, names and values no resolver would serve refused before any
coin is spent, names that expire marked and warned about, a new owner without coins told
how many to get, and output that reads well (history with operations, pending updates,
UTC dates, silent broken pipes)."""
from __future__ import annotations

import json
import os
import subprocess

import dns.message
import dns.query
import pytest

from support.harness import NodeProcess, free_port, stop_node
from support.wallet_cli import EXPIRY, W, mature, mine, new_wallet, register_wait


def test_register_wait_returns_when_the_name_resolves(tmp_path):
    dns_port = free_port()
    node = NodeProcess(str(tmp_path / "node"), "--mine", "--mine-interval", "0.3", "--dns-port", str(dns_port))
    node.start()
    try:
        w = W(node, str(tmp_path / "w.json"))
        w.run("create")
        node.call("generatetoaddress", 101, w.address())
        r = w.run("name", "register", "d/example", "--value", '{"ip":"192.0.2.1"}', "--wait")
        assert "blocks to go" in r.stderr and "1 block to go" in r.stderr
        assert "registered at height" in r.stdout
        rec = node.call("name_show", "d/example")               # right away: no block awaited
        assert rec["value"] == '{"ip":"192.0.2.1"}'
        answer = dns.query.udp(dns.message.make_query("example.bit.", "A"), "127.0.0.1", port=dns_port, timeout=5)
        assert [rr.address for rrset in answer.answer for rr in rrset] == ["192.0.2.1"]
    finally:
        stop_node(node)


# name, value, what the one error line must say
REFUSED = [
    ("example.bit", "{}", "did you mean d/example?"),
    ("d/Bad Name", "{}", "did you mean d/bad-name?"),
    ("d/", "{}", "d/ needs a domain label"),
    ("d/-x", "{}", "not a .bit name resolvers serve"),
    ("d/good", '{"ip":"999.1.1.1"}', "malformed ip address"),
    ("d/good", '{"map":{"www":{"alias":"bad name!"}}}', "malformed alias"),
]


def test_names_and_values_that_never_resolve_are_refused_before_spending(node, tmp_path):
    a, _ = new_wallet(node, tmp_path, "refuse", coinbases=1)
    mature(node)
    before = a.json("balance")
    for name, value, says in REFUSED:
        err = a.fails("name", "register", name, "--value", value, match=says)
        assert "--force" in err
    assert node.call("getrawmempool") == [] and a.json("balance") == before
    r = a.run("name", "register", "d/Bad Name", "--value", "{}", "--force")
    assert "d/Bad Name: name_new" in r.stdout and "warning:" in r.stderr
    mine(node)
    register_wait(a, "d/fine", '{"ip":"1.2.3.4"}')
    a.fails("name", "update", "d/fine", "--value", '{"ip":"999.1.1.1"}', match="malformed ip address")
    a.run("name", "update", "d/fine", "--value", '{"ip":"999.1.1.1"}', "--force")


def test_expiring_and_expired_names_are_marked_with_what_to_do(node, tmp_path):
    a, _ = new_wallet(node, tmp_path, "exp", coinbases=1)
    mature(node)
    register_wait(a, "d/fading", "{}")
    assert a.json("name", "list")[0]["status"] == "ok"
    assert a.run("balance").stderr == ""
    mine(node, EXPIRY - 3)
    r = a.run("name", "list")
    assert "EXPIRING in 3 blocks: renew with `dotbit-wallet name renew d/fading`" in r.stdout
    assert a.json("name", "list")[0]["status"] == "expiring"
    err = a.run("balance").stderr.strip().splitlines()
    assert err == ["warning: d/fading expires in 3 blocks: renew with `dotbit-wallet name renew d/fading`"]
    mine(node, 3)
    r = a.run("name", "list")
    assert "d/fading EXPIRED" in r.stdout and "name register d/fading" in r.stdout
    assert [(n["name"], n["status"]) for n in a.json("name", "list")] == [("d/fading", "expired")]


def test_new_owner_without_coins_is_told_how_many_to_get(node, tmp_path):
    a, _ = new_wallet(node, tmp_path, "giver", coinbases=1)
    b, _ = new_wallet(node, tmp_path, "taker", coinbases=0)
    mature(node)
    register_wait(a, "d/gift", '{"ip":"1.2.3.4"}')
    a.run("name", "transfer", "d/gift", b.address())
    mine(node)
    err = b.fails("name", "renew", "d/gift", match="insufficient funds")
    assert f"more: receive coins at {b.address()}" in err and "need 0.0000" in err
    a.run("send", b.address(), "0.001")
    mine(node)
    b.run("name", "renew", "d/gift")


def test_history_operations_pending_updates_and_dates(node, tmp_path):
    a, _ = new_wallet(node, tmp_path, "hist", coinbases=1)
    b, _ = new_wallet(node, tmp_path, "hist-b", coinbases=0)
    mature(node)
    register_wait(a, "d/storied", '{"ip":"1.2.3.4"}')
    a.run("name", "update", "d/storied", "--value", '{"ip":"5.6.7.8"}')
    shown = a.run("name", "show", "d/storied").stdout
    assert "pending: update" in shown and '{"ip":"5.6.7.8"}' in shown
    assert a.json("name", "show", "d/storied")["pending"]["op"] == "update"
    mine(node)
    a.run("name", "renew", "d/storied")
    mine(node)
    a.run("name", "transfer", "d/storied", b.address())
    mine(node)
    lines = a.run("name", "history", "d/storied").stdout.splitlines()
    assert lines[0].split() == ["HEIGHT", "OPERATION", "ADDRESS", "VALUE"]
    assert [ln.split()[1] for ln in lines[1:]] == ["register", "update", "renew", "transfer"]
    assert [h["op"] for h in a.json("name", "history", "d/storied")] == ["register", "update", "renew", "transfer"]
    # a name received by transfer (on a receive address, never updated) is still listed once expired
    mine(node, EXPIRY)
    assert [(n["name"], n["status"]) for n in b.json("name", "list")] == [("d/storied", "expired")]
    # the sender lists it as given away (expired too by now), never as its own
    assert [(n["name"], n["status"], n["expired"]) for n in a.json("name", "list")] == [("d/storied", "transferred", True)]


@pytest.mark.parametrize("command", [["--help"], ["name", "--help"], ["address"], ["balance"], ["coins"],
                                     ["history"], ["name", "list"], ["name", "history", "d/piped"],
                                     ["name", "show", "d/piped"]])
def test_a_closed_pipe_is_silent(node, tmp_path_factory, command):
    """`dotbit-wallet ... | head` when head has gone: no traceback, no complaint."""
    path = tmp_path_factory.getbasetemp() / "piped.json"
    w = W(node, str(path))
    if not path.exists():
        w.run("create")
        mine(node, 1, w.address())
        mature(node)
        register_wait(w, "d/piped", json.dumps({"txt": "x" * 400}))
        w.run("name", "sync")
    env = {k: v for k, v in w.env.items() if k != "PYTHONUNBUFFERED"}    # buffered, as in a shell
    r_fd, w_fd = os.pipe()
    os.close(r_fd)                     # the reader is gone before the wallet writes
    p = subprocess.run(w.argv(*command), stdout=w_fd, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    os.close(w_fd)
    assert (p.returncode, p.stderr) == (0, "")
