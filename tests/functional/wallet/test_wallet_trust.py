"""What the wallet believes, against a real regtest node: an altered wallet-file header is one
line (not a hang), and `name renew` / `name transfer` sign the value the name coin really holds
and this wallet set, never one a node's `name_show` makes up."""
from __future__ import annotations

import base64
import json
import os
import shutil
import time

import pytest

from core.params import REGTEST
from core.primitives import Tx
from support.wallet_cli import PASS, W, mature, mine, new_wallet, register_wait
from wallet import names as N
from wallet.errors import WalletError
from wallet.nodeclient import NodeClient
from wallet.wallet import Wallet

FEE_RATE = 1000
VALUE = '{"ip":"192.0.2.1"}'
KEY_B64 = base64.b64encode(bytes([1]) * 32).decode()


@pytest.fixture(scope="module")
def owner(node, tmp_path_factory):
    """A wallet holding d/trust (value VALUE), and a copy of its file made right then."""
    tmp = tmp_path_factory.mktemp("trust")
    w, _ = new_wallet(node, tmp, "owner")
    mature(node)
    register_wait(w, "d/trust", VALUE)
    w.run("name", "list")                 # the firstupdate is in a block: the registration ends
    copy = W(node, str(tmp / "copy.json"))
    shutil.copy(w.path, copy.path)
    return w, copy


def in_process(node, path: str) -> Wallet:
    client = NodeClient(f"http://127.0.0.1:{node.rpc_port}", os.path.join(node.datadir, ".cookie"))
    w = Wallet.open(path, PASS, REGTEST, client)
    w.sync()
    return w


@pytest.mark.parametrize("field,value", [("opslimit", 2**31), ("memlimit", 2**36)])
def test_an_altered_kdf_header_is_one_line_not_a_hang(node, tmp_path, field, value):
    w, _ = new_wallet(node, tmp_path, "kdf", coinbases=0)
    env = json.load(open(w.path))
    env["kdf"][field] = value
    open(w.path, "w").write(json.dumps(env))
    t0 = time.monotonic()
    w.fails("balance", match=f"Argon2id {field} {value}, outside")
    assert time.monotonic() - t0 < 30


def test_a_lying_name_show_does_not_choose_what_is_signed(node, owner):
    """In-process with a real node: name_show lies; the renew signs the coin's value. A lie
    about the coin's transaction itself fails the txid check and nothing is signed."""
    w = in_process(node, owner[0].path)
    real = w.call

    def lying(method, *params):
        if method == "name_show":
            rec = dict(real(method, *params))
            rec["value"] = "7b226970223a22362e362e362e36227d" if "hex" in json.dumps(params) else '{"ip":"6.6.6.6"}'
            return rec
        if method == "getrawtransaction" and not params[1:]:
            tx = Tx.from_bytes(bytes.fromhex(real(method, *params)))
            return tx.to_bytes().hex().replace(VALUE.encode().hex(), '{"ip":"192.0.2.7"}'.encode().hex())
        return real(method, *params)
    w.call = lambda method, *params: lying(method, *params) if method == "name_show" else real(method, *params)
    w.doc["values"] = {}            # as after a restore: no record, the coin alone decides
    res = N.update(w, "d/trust", None, None, FEE_RATE)
    w.save()                        # as the CLI does: the value it signed is recorded again
    assert res["value"] == VALUE and w.doc["values"] == {"d/trust": VALUE.encode().hex()}
    sent = Tx.from_bytes(bytes.fromhex(real("getrawtransaction", res["txid"])))
    assert [o.covenant.items[-1] for o in sent.outputs if o.covenant.items][0] == VALUE.encode()
    mine(node)
    w = in_process(node, owner[0].path)
    w.call = lying
    with pytest.raises(WalletError, match="does not match its txid: refusing to sign"):
        N.update(w, "d/trust", None, None, FEE_RATE)


def test_renew_refuses_a_value_this_wallet_did_not_set(node, owner):
    """Another copy of the wallet changed the value: renew and transfer say so in one line and
    sign only with an explicit --value, which they show."""
    w, copy = owner
    copy.run("name", "update", "d/trust", "--value", '{"ip":"192.0.2.99"}')
    mine(node)
    err = w.fails("name", "renew", "d/trust", match="d/trust holds '{\"ip\":\"192.0.2.99\"}' but this wallet "
                                                   "last set '{\"ip\":\"192.0.2.1\"}': set the value to sign with --value")
    assert "Traceback" not in err
    w.fails("name", "transfer", "d/trust", w.address(), match="with --value")
    w.fails("minimalt", "d/trust", "--port", "4000", "--id-key", KEY_B64, "--eph-key", KEY_B64,
            match="with --value")              # an item is added to the wallet's value, not the node's
    r = w.run("name", "renew", "d/trust", "--value", VALUE)
    assert f"with value {VALUE}" in r.stdout, r.stdout
    mine(node)
    assert w.json("name", "show", "d/trust")["value"] == VALUE
    r = w.run("name", "renew", "d/trust")                     # its own value again: no --value needed
    assert f"with value {VALUE}" in r.stdout
    mine(node)
