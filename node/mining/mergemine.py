"""dotbit-mergemine: merge-mines dotbit under a Bitcoin node (bitcoind, bcoin) on one CPU.

Each round: createauxblock on dotbit, getblocktemplate on the parent, a parent coinbase whose
script commits to the dotbit block (core/auxpow.py), the parent header ground until it meets
the easier of the two targets, then submitblock to the parent when it meets the parent's and
submitauxblock to dotbit when it meets dotbit's. Meant for regtest and tests: a real pool does
the same with its hashers (the two RPCs speak Namecoin Core's shapes).
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import urllib.error
import urllib.request

from core.auxpow import AuxPow, commitment, parent_hash_int, varint
from core.crypto import sha256d
from node.mining.auxbuild import btc_merkle_branch, btc_merkle_levels, coinbase_tx, parent_header

GRIND = 1 << 20                  # nonces per round before asking for fresh templates


class RPCFailure(Exception):
    pass


class Client:
    """A bitcoind-style JSON-RPC client (HTTP Basic auth)."""

    def __init__(self, url: str, auth: str | None, timeout: float = 30):
        self.url, self.timeout = url, timeout
        self.headers = {"Content-Type": "application/json"}
        if auth:
            self.headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()

    def call(self, method: str, *params):
        body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)}).encode()
        req = urllib.request.Request(self.url, body, self.headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                out = json.loads(r.read())
        except urllib.error.HTTPError as e:           # bitcoind answers errors with 500 + JSON
            try:
                out = json.loads(e.read())
            except ValueError:
                raise RPCFailure(f"{method}: HTTP {e.code}") from None
        except (OSError, ValueError) as e:
            raise RPCFailure(f"{method}: {e}") from None
        if out.get("error"):
            raise RPCFailure(f"{method}: {out['error']}")
        return out.get("result")


def _height_push(height: int) -> bytes:
    """BIP34's height, pushed as Bitcoin Core's `CScript() << height` does."""
    if 1 <= height <= 16:
        return bytes([0x50 + height])
    n = height.to_bytes((height.bit_length() + 8) // 8, "little")     # room for the sign bit
    return bytes([len(n)]) + n


def build_parent(tmpl: dict, aux_hash: bytes, extranonce: int, payout_script: bytes):
    """(legacy coinbase, parent header with nonce 0, block body after the header, the
    coinbase's Merkle branch) for a parent's block template."""
    script = (_height_push(tmpl["height"]) + commitment(aux_hash, 1, 0)
              + b"\x08" + extranonce.to_bytes(8, "little"))
    # Transactions with witness data would need a witness commitment and a witness-serialized
    # coinbase in the parent block; this tool takes the template's transactions only when none
    # has any, and otherwise mines the parent block with its coinbase alone (valid, fees lost).
    txs = tmpl.get("transactions", [])
    if any(t.get("hash", t["txid"]) != t["txid"] for t in txs):
        txs = []
    value = tmpl["coinbasevalue"] - (0 if txs else sum(t.get("fee", 0) for t in tmpl.get("transactions", [])))
    cb = coinbase_tx(script, [(value, payout_script)])
    leaves = [sha256d(cb)] + [bytes.fromhex(t["txid"])[::-1] for t in txs]
    root = btc_merkle_levels(leaves)[-1][0]
    header = parent_header(tmpl["version"], bytes.fromhex(tmpl["previousblockhash"])[::-1], root,
                           tmpl["curtime"], int(tmpl["bits"], 16))
    body = varint(1 + len(txs)) + cb + b"".join(bytes.fromhex(t["data"]) for t in txs)
    return cb, header, body, tuple(btc_merkle_branch(leaves, 0))


def mine_round(parent: Client, dotbit: Client, address: str, payout_script: bytes, extranonce: int) -> dict:
    """One round; returns what was found: {"parent": hash or None, "dotbit": hash or None}."""
    aux = dotbit.call("createauxblock", address)
    tmpl = parent.call("getblocktemplate", {"rules": ["segwit"]})
    aux_target = int.from_bytes(bytes.fromhex(aux["_target"]), "little")
    parent_target = int(tmpl["target"], 16)
    cb, header, body, branch = build_parent(tmpl, bytes.fromhex(aux["hash"]), extranonce, payout_script)
    easier = max(aux_target, parent_target)
    for nonce in range(GRIND):
        h = header[:76] + nonce.to_bytes(4, "little")
        value = parent_hash_int(h)
        if value <= easier:
            break
    else:
        return {"parent": None, "dotbit": None}
    found = {"parent": None, "dotbit": None}
    if value <= parent_target:
        result = parent.call("submitblock", (h + body).hex())
        if result is None:
            found["parent"] = sha256d(h)[::-1].hex()
    if value <= aux_target:
        proof = AuxPow(cb, branch, (), 0, h).to_bytes()
        if dotbit.call("submitauxblock", aux["hash"], proof.hex()):
            found["dotbit"] = aux["hash"]
    return found


def _args(argv):
    p = argparse.ArgumentParser(prog="dotbit-mergemine", description=__doc__.split("\n\n")[0])
    p.add_argument("--parent-url", required=True, help="parent node's JSON-RPC URL (http://host:port/)")
    p.add_argument("--parent-auth", help="user:password for the parent's RPC")
    p.add_argument("--dotbit-url", required=True, help="dotbit node's JSON-RPC URL")
    p.add_argument("--dotbit-cookie", help="dotbit's RPC cookie file (user:password)")
    p.add_argument("--address", required=True, help="dotbit address the merge-mined blocks pay")
    p.add_argument("--parent-script", default="51", help="parent coinbase output script, hex (default OP_TRUE)")
    p.add_argument("--blocks", type=int, default=1, help="stop after this many dotbit blocks (0: never)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = _args(argv)
    try:
        auth = open(a.dotbit_cookie).read().strip() if a.dotbit_cookie else None
        script = bytes.fromhex(a.parent_script)
    except (OSError, ValueError) as e:
        print(f"dotbit-mergemine: {e}", file=sys.stderr)
        return 2
    parent, dotbit = Client(a.parent_url, a.parent_auth), Client(a.dotbit_url, auth)
    done, extranonce = 0, int(time.time())
    try:
        while a.blocks == 0 or done < a.blocks:
            extranonce += 1
            found = mine_round(parent, dotbit, a.address, script, extranonce)
            if found["dotbit"]:
                done += 1
            if found["dotbit"] or found["parent"]:
                print(json.dumps(found), flush=True)
    except RPCFailure as e:
        print(f"dotbit-mergemine: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
