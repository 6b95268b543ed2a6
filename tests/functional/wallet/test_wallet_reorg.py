"""wallet_ registration across a reorg, with two real node processes: the wallet's
FIRSTUPDATE was sent when due, then a heavier branch re-mines its NAME_NEW two blocks later.
The node drops the now immature FIRSTUPDATE; the wallet keeps the registration, waits for the
new depth and completes it (it does not give the name up)."""
from __future__ import annotations

import logging

from support.harness import NodeProcess
from support.wallet_cli import DEPTH, mature, mine, new_wallet

log = logging.getLogger(__name__)
NAME = "d/reorg"


def copy_blocks(src, dst, hashes) -> None:
    for h in hashes:
        assert dst.call("submitblock", src.call("getblock", h, 0)) is None


def pending(w) -> dict:
    return {r["name"]: r for r in w.json("name", "sync")}


def test_registration_survives_a_reorg_that_makes_its_firstupdate_immature(tmp_path):
    n1 = NodeProcess(str(tmp_path / "n1")).start()
    n2 = NodeProcess(str(tmp_path / "n2")).start()
    try:
        n1.miner = n2.miner = n1.call("getminingaddress")
        w, _ = new_wallet(n1, tmp_path, "alice")
        mature(n1)
        base = n1.call("getblockcount")
        copy_blocks(n1, n2, [n1.call("getblockhash", h) for h in range(1, base + 1)])

        log.info("the wallet commits on n1 and sends its FIRSTUPDATE when due")
        new_txid = w.json("name", "register", NAME, "--value", '{"ip":"192.0.2.9"}')["txid"]
        raw_new = n1.call("getrawtransaction", new_txid)
        mine(n1, DEPTH)                                   # NAME_NEW at base+1, tip base+12
        assert pending(w)[NAME]["state"] == "firstupdate"
        assert [p["op"] for p in n1.call("name_pending", NAME)] == ["name_firstupdate"]

        log.info("n2 mines a heavier branch with the NAME_NEW at base+4")
        mine(n2, 3)
        n2.call("sendrawtransaction", raw_new)
        branch = [n2.call("getblockhash", h) for h in range(base + 1, base + 4)]
        branch += n2.call("generatetoaddress", 11, n2.miner)          # tip base+14
        copy_blocks(n2, n1, branch)
        assert n1.call("getbestblockhash") == branch[-1]
        assert n1.call("name_pending", NAME) == []                   # immature now: dropped

        log.info("the wallet waits for the new depth instead of giving up")
        assert pending(w)[NAME]["state"] == "new"
        mine(n1)                                           # base+15: block base+16 may hold it
        assert pending(w)[NAME]["state"] == "firstupdate"
        mine(n1)
        assert NAME not in pending(w)
        assert n1.call("name_show", NAME)["value"] == '{"ip":"192.0.2.9"}'
        assert any(r["name"] == NAME for r in w.json("name", "list"))
    finally:
        n1.stop()
        n2.stop()
