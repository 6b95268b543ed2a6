"""The wallet CLI as a real subprocess (`python -m wallet.cli`) against a real regtest node:
two wallets trading a name through its whole life, crash recovery from the seed words,
payments with change and fees, and the one-line errors users can hit."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import time

from core.crypto import encode_address
from core.params import REGTEST
from support.harness import free_port
from support.wallet_cli import DEPTH, EXPIRY, PASS, make_cert, mature, mine, new_wallet, register_wait
from wallet.keys import Keychain, seed_from_words


def test_two_wallets_trade_a_name_through_its_life(node, tmp_path):
    a, _ = new_wallet(node, tmp_path, "a")
    b, _ = new_wallet(node, tmp_path, "b")
    mature(node)

    r = register_wait(a, "d/example", '{"ip":"1.2.3.4"}')
    assert "13 blocks to go (name_new has 0/12 confirmations" in r.stderr
    assert "sent name_firstupdate" in r.stderr
    rec = a.json("name", "show", "d/example")
    assert rec["value"] == '{"ip":"1.2.3.4"}' and rec["mine"] and rec["expires_in"] == EXPIRY

    # B cannot register it while A holds it
    b.fails("name", "register", "d/example", "--value", '{"ip":"6.6.6.6"}', match="name taken")

    a.run("name", "update", "d/example", "--value", '{"ip":"5.6.7.8"}')
    mine(node)
    assert a.json("name", "show", "d/example")["value"] == '{"ip":"5.6.7.8"}'

    cert, _ = make_cert(tmp_path)
    res = a.json("tls", "d/example", "--cert", cert)
    mine(node)
    value = json.loads(a.json("name", "show", "d/example")["value"])
    assert value["ip"] == "5.6.7.8"
    assert value["map"]["_tcp"]["map"]["_443"]["tls"] == [res["tls"]] and res["tls"][:3] == [3, 1, 1]

    key_a, key_b = (base64.b64encode(bytes([i]) * 32).decode() for i in (1, 2))
    res = a.json("minimalt", "d/example", "--port", "4000", "--id-key", key_a, "--eph-key", key_b)
    mine(node)
    value = json.loads(a.json("name", "show", "d/example")["value"])
    assert value["minimalT"] == {"port": 4000, "id_key": key_a, "eph_key": key_b} == res["minimalT"]
    assert value["map"]["_tcp"]["map"]["_443"]["tls"]                  # the tls item stays

    to_b = b.address()
    a.run("name", "transfer", "d/example", to_b)
    mine(node)
    rec = b.json("name", "show", "d/example")
    assert rec["address"] == to_b and rec["mine"]
    assert [n["name"] for n in b.json("name", "list")] == ["d/example"]
    assert [(n["name"], n["status"], n["address"]) for n in a.json("name", "list")] == \
        [("d/example", "transferred", to_b)]
    assert f"d/example transferred to {to_b}" in a.run("name", "list").stdout
    a.fails("name", "update", "d/example", "--value", "{}", match="not your name")

    b.run("name", "update", "d/example", "--value", '{"ip":"9.9.9.9"}')
    mine(node)
    assert b.json("name", "show", "d/example")["value"] == '{"ip":"9.9.9.9"}'

    # B lets it expire; the list warns first
    mine(node, EXPIRY - 3)
    r = b.run("name", "list")
    assert "warning: d/example expires in 3 blocks" in r.stderr
    mine(node, 3)
    b.fails("name", "renew", "d/example", match="name expired")
    assert [(n["name"], n["status"]) for n in b.json("name", "list")] == [("d/example", "expired")]

    # ... and A registers it again
    register_wait(a, "d/example", '{"ip":"1.1.1.1"}')
    rec = a.json("name", "show", "d/example")
    assert rec["mine"] and rec["value"] == '{"ip":"1.1.1.1"}' and not rec["expired"]
    hist = a.json("name", "history", "d/example")
    assert [h["value"] for h in hist][-1] == '{"ip":"1.1.1.1"}' and len(hist) == 7
    # B still lists its expired name, and is not told to take back a name A now holds
    [row] = b.json("name", "list")
    assert row["status"] == "expired" and row["registered_again_at"] == rec["height"]
    assert "registered again by someone else" in b.run("name", "list").stdout


def test_restore_continues_the_pending_name_new(node, tmp_path):
    c, words = new_wallet(node, tmp_path, "c")
    mature(node)
    first = c.json("name", "register", "d/crash", "--value", '{"ip":"10.0.0.1"}')
    assert not first["resumed"] and first["state"] == "new"
    mine(node, 3)
    far = Keychain(seed_from_words(words)).key(0, 15)     # a payment inside the gap limit
    mine(node, 1, encode_address(REGTEST.address_version, far.address))
    os.unlink(c.path)                     # the wallet file is lost between name_new and firstupdate
    restored = json.loads(c.run("restore", "--json", input=words + "\n").stdout)     # words on stdin
    assert [(n["name"], n["txid"]) for n in c.json("name", "list")] == [(None, first["txid"])]
    assert restored["coins"] == 3 + 1 + 1 and restored["used"]["0"] == 16   # + name_new + change
    again = c.json("name", "register", "d/crash", "--value", '{"ip":"10.0.0.1"}')
    assert again["resumed"] and again["txid"] == first["txid"]
    # no second name_new: C's coins (mempool included) hold exactly the first one
    assert [(x["txid"], x["kind"]) for x in c.json("coins") if x["kind"] == "name_new"] == [(first["txid"], "name_new")]
    mine(node, DEPTH - 5)         # 3 + 1 blocks above, 11 confirmations now
    assert c.json("name", "sync")[0]["state"] == "new"
    mine(node)
    assert c.json("name", "sync")[0]["state"] == "firstupdate"
    # while the firstupdate waits for a block, nobody else can start on the name
    g, _ = new_wallet(node, tmp_path, "g", coinbases=0)
    g.fails("name", "register", "d/crash", "--value", "{}", match="name taken")
    mine(node)
    assert c.json("name", "sync") == []
    rec = c.json("name", "show", "d/crash")
    assert rec["mine"] and rec["value"] == '{"ip":"10.0.0.1"}'


def test_send_change_fees_and_name_coins_untouched(node, tmp_path):
    d, _ = new_wallet(node, tmp_path, "d", coinbases=2)
    e, _ = new_wallet(node, tmp_path, "e", coinbases=0)
    mature(node)
    d.run("name", "register", "d/keepme", "--value", "{}")
    mine(node)
    bal = d.json("balance")
    spendable = bal["confirmed_sat"]
    assert bal["locked_in_names_sat"] == 1_000_000

    to_e = e.address()
    res = d.json("send", to_e, "1.25", "--fee-rate", "3")
    tx = node.call("getrawtransaction", res["txid"], True)
    ins = [node.call("getrawtransaction", i["txid"], True)["vout"][i["vout"]] for i in tx["vin"]]
    assert all(i["covenant"]["type"] == "none" for i in ins)
    paid = [o for o in tx["vout"] if o["address"] == to_e]
    change = [o for o in tx["vout"] if o["address"] != to_e]
    assert [o["value_sat"] for o in paid] == [125_000_000] and len(change) == 1
    fee = sum(i["value_sat"] for i in ins) - sum(o["value_sat"] for o in tx["vout"])
    assert fee == res["fee_sat"] and 3 * tx["size"] <= fee <= 3 * (tx["size"] + 8)
    mine(node)
    assert e.json("balance")["confirmed_sat"] == 125_000_000
    assert [(h["txid"], h["delta_sat"]) for h in e.json("history")] == [(res["txid"], 125_000_000)]
    hist = {h["txid"]: h for h in d.json("history")}
    assert hist[res["txid"]]["delta_sat"] == -125_000_000 - fee
    assert [h["name_op"]["type"] for h in hist.values() if h["name_op"]] == ["name_new"]
    after = d.json("balance")
    assert after["confirmed_sat"] == spendable - 125_000_000 - fee
    assert after["locked_in_names_sat"] == 1_000_000

    # spending everything but the name coin works; reaching into it does not
    coins = [c for c in d.json("coins") if c["kind"] == "none"]
    total = sum(c["value_sat"] for c in coins)
    amount = total - 50_000
    d.run("send", to_e, f"{amount // 10**8}.{amount % 10**8:08d}")
    mine(node)
    left = d.json("coins")
    assert sorted(c["kind"] for c in left) == ["name_new", "none"]
    assert [c["value_sat"] for c in left if c["kind"] == "none"][0] < 50_000      # the change
    d.fails("send", to_e, "0.001", match="insufficient funds")


def test_errors_users_hit_are_one_line(node, tmp_path):
    f, _ = new_wallet(node, tmp_path, "f", coinbases=1)
    mature(node)
    f.fails("name", "register", "d/bad", "--value", "{ip: 1", match="value is not valid JSON")
    f.fails("name", "register", "d/bad", "--value", '"1.2.3.4"', match="must be a JSON object")
    f.fails("name", "register", "d/bad", "--value", json.dumps({"txt": "x" * 600}), match="value too long")
    f.fails("balance", env=dict(f.env, DOTBIT_WALLET_PASSPHRASE="wrong"), match="wrong passphrase")
    f.fails("name", "show", "d/never-registered", match="unknown name")
    f.fails("name", "update", "d/never-registered", "--value", "{}", match="unknown name")
    f.fails("send", f.address(), "1000000", match="insufficient funds")
    f.fails("send", "not-an-address", "1", match="invalid address")
    f.fails("balance", env=dict(f.env, DOTBIT_RPC_URL=f"http://127.0.0.1:{free_port()}"),
            match="cannot reach node")
    f.fails("create", match="already exists")
    f.fails("balance", "--network", "main", match="is for network regtest")
    f.fails("balance", "--wallet", str(tmp_path / "missing.json"), match="no wallet file")
    f.fails("balance", env=dict(f.env, DOTBIT_RPC_COOKIE=str(tmp_path / "no-cookie")), match="cannot reach node")
    (tmp_path / "stale-cookie").write_text("__cookie__:0000")
    f.fails("balance", env=dict(f.env, DOTBIT_RPC_COOKIE=str(tmp_path / "stale-cookie")),
            match="refused the RPC cookie")
    (tmp_path / "pass").write_text(PASS + "\n")
    no_env = {k: v for k, v in f.env.items() if k != "DOTBIT_WALLET_PASSPHRASE"}
    assert f.run("balance", "--passphrase-file", str(tmp_path / "pass"), env=no_env).returncode == 0
    bad_words = tmp_path / "bad-words"
    bad_words.write_text("abandon " * 12)
    f.fails("restore", "--words-file", str(bad_words), "--wallet", str(tmp_path / "new.json"),
            match="do not check out")
    r = f.run("name", "register", "d/warned", "--value", '{"ip":"1.2.3.4","ip4":"x"}')
    assert "warning: unknown item 'ip4'" in r.stderr


def test_registration_waits_for_funds_instead_of_giving_up(node, tmp_path):
    h, _ = new_wallet(node, tmp_path, "h", coinbases=1)
    mature(node)
    h.run("name", "register", "d/patient", "--value", "{}")
    spendable = h.json("balance")["confirmed_sat"] + h.json("balance")["unconfirmed_sat"]
    rest = spendable - 20_000                       # leaves too little for the burn (0.01)
    h.run("send", node.miner, f"{rest // 10**8}.{rest % 10**8:08d}")
    mine(node, DEPTH)
    r = h.run("name", "sync")
    assert "cannot send the firstupdate yet: insufficient funds" in r.stderr
    assert h.json("name", "sync")[0]["state"] == "new"          # kept, not dropped
    mine(node, 1, h.address())
    mine(node, 100)
    assert h.json("name", "sync")[0]["state"] == "firstupdate"
    mine(node)
    assert h.json("name", "show", "d/patient")["mine"]


def test_overlapping_registrations_and_a_killed_wait(node, tmp_path):
    k, _ = new_wallet(node, tmp_path, "k", coinbases=1)          # a single payment coin
    mature(node)
    k.run("name", "register", "d/one", "--value", "{}")
    mine(node, DEPTH)
    # this command first sends d/one's firstupdate, then d/two's name_new, from one chain of change
    r = k.run("name", "register", "d/two", "--value", "{}")
    assert "d/one: name_new is deep enough, sent name_firstupdate" in r.stderr
    mine(node)
    assert k.json("name", "show", "d/one")["mine"]
    assert [p["name"] for p in k.json("name", "sync")] == ["d/two"]
    # SIGKILL a waiting `register --wait`: the lock dies with it and a later command finishes the job
    p = subprocess.Popen(k.argv("name", "register", "d/three", "--value", "{}", "--wait", "--poll", "0.1"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=k.env)
    deadline = time.monotonic() + 30
    while not pending_name_news(node):              # name_pending lists only (first)updates
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.05)
    p.kill()
    p.wait(10)
    p.stderr.close()
    mine(node, DEPTH)
    r = k.run("name", "sync")
    assert "d/two: name_new is deep enough" in r.stderr and "d/three: name_new is deep enough" in r.stderr
    mine(node)
    assert k.json("name", "sync") == []
    assert sorted(n["name"] for n in k.json("name", "list")) == ["d/one", "d/three", "d/two"]


def pending_name_news(node) -> list[str]:
    return [t for t in node.call("getrawmempool")
            if any(o["covenant"]["type"] == "name_new" for o in node.call("getrawtransaction", t, True)["vout"])]
