"""Chain, mempool and control RPC methods (bitcoind names and shapes), and the argument
helpers the other method modules share. Mining methods live in node/mining/rpc.py, `help`
in the Registry (node/rpc/registry.py)."""
from __future__ import annotations

import os
import time

from core.crypto import AddressError, decode_address, encode_address
from core.errors import DecodeError, ValidationError
from core.primitives import Tx

from node.rpc.registry import (DESERIALIZATION_ERROR, INVALID_ADDRESS_OR_KEY, INVALID_PARAMETER,
                               MISC_ERROR, TYPE_ERROR, VERIFY_ALREADY_IN_CHAIN, VERIFY_REJECTED, RPCError, rpc)
from node.rpc.views import coins, covenant_view, header_view, tx_view


# --- argument helpers -------------------------------------------------------------------------

def parse_hash(text, what: str = "hash") -> bytes:
    try:
        b = bytes.fromhex(text)
    except (ValueError, TypeError):
        b = b""
    if len(b) != 32:
        raise RPCError(INVALID_PARAMETER, f"{what} must be of length 64 (not {len(str(text))}, for '{text}')")
    return b


def parse_hex(text) -> bytes:
    try:
        return bytes.fromhex(text)
    except (ValueError, TypeError):
        raise RPCError(DESERIALIZATION_ERROR, "hex string expected") from None


def parse_address(node, text) -> bytes:
    try:
        return decode_address(node.params.address_version, text)
    except (AddressError, AttributeError, TypeError) as e:
        raise RPCError(INVALID_ADDRESS_OR_KEY, f"Invalid address: {e}") from None


def encodings(node) -> tuple[str, str]:
    """The node's configured (name, value) encodings (settings name_encoding / value_encoding)."""
    return node.name_encoding, node.value_encoding


def syncing(node) -> bool:
    """Initial block download: p2p is still fetching blocks the node knows headers of."""
    sync = node.p2p.sync if getattr(node, "p2p", None) is not None else None
    return bool(sync is not None and sync.syncing)


# Namecoin Core's chain names (bitcoind's "test" for its testnet), by dotbit network name.
CHAIN_NAMES = {"main": "main", "testnet": "test", "regtest": "regtest"}


def _size_on_disk(datadir: str) -> int:
    total = 0
    for root, _, files in os.walk(os.path.join(datadir, "chain")):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass           # LevelDB removed a compacted file while we walked
    return total


def entry_for(node, block_hash: str):
    e = node.chain.entries.get(parse_hash(block_hash, "blockhash"))
    if e is None:
        raise RPCError(INVALID_ADDRESS_OR_KEY, "Block not found")
    return e


# --- chain ------------------------------------------------------------------------------------

@rpc()
def getblockchaininfo(node) -> dict:
    """Returns an object with the state of the chain."""
    c = node.chain
    tip = c.tip
    sync = node.p2p.sync if getattr(node, "p2p", None) is not None else None
    headers = max(e.height for e in c.entries.values())
    if sync is not None:
        headers = max(headers, sync.best_header_height)
    # Blocks done over blocks known: dotbit keeps no per-block tx counts for bitcoind's estimate.
    progress = 1.0 if headers <= 0 else min(1.0, c.height / headers)
    return {"chain": CHAIN_NAMES.get(node.params.name, node.params.name), "blocks": c.height,
            "headers": headers, "bestblockhash": tip.hash.hex(), "difficulty": header_view(c, tip)["difficulty"],
            "mediantime": tip.median_time_past(), "time": tip.header.time,
            "verificationprogress": progress, "initialblockdownload": syncing(node),
            "chainwork": f"{tip.work:064x}", "size_on_disk": _size_on_disk(node.datadir), "pruned": False,
            "name_root": tip.header.name_root.hex(), "warnings": ""}


@rpc()
def getblockcount(node) -> int:
    """Returns the height of the most-work fully-validated chain."""
    return node.chain.height


@rpc()
def getbestblockhash(node) -> str:
    """Returns the hash of the tip block."""
    return node.chain.tip.hash.hex()


@rpc()
def getblockhash(node, height: int) -> str:
    """Returns the hash of the main-chain block at height."""
    e = node.chain.entry_at(height)
    if e is None:
        raise RPCError(INVALID_PARAMETER, "Block height out of range")
    return e.hash.hex()


@rpc()
def getblockheader(node, blockhash: str, verbose: bool = True):
    """Returns the header of a block: an object, or the 112-byte header as hex if verbose=false."""
    e = entry_for(node, blockhash)
    return header_view(node.chain, e) if verbose else e.header.to_bytes().hex()


def _verbosity(v) -> int:
    # bitcoind takes a boolean here too (true: 1, false: 0), and so do old clients.
    if isinstance(v, bool):
        return int(v)
    if type(v) is not int:
        raise RPCError(TYPE_ERROR, f"Expected type int or bool for verbosity, got {type(v).__name__}")
    if v < 0:
        raise RPCError(INVALID_PARAMETER, "verbosity must be 0, 1 or 2")
    return min(v, 2)


@rpc(offload=True)
def getblock(node, blockhash: str, verbosity: int | bool = 1):
    """Returns a block: hex (verbosity 0 or false), an object with txids (1 or true) or with full
    transactions (2)."""
    verbosity = _verbosity(verbosity)
    e = entry_for(node, blockhash)
    block = node.chain.get_block(e.hash)
    if block is None:
        raise RPCError(MISC_ERROR, "Block not available (header only)")
    if verbosity == 0:
        return block.to_bytes().hex()
    v = header_view(node.chain, e)
    v["size"] = len(block.to_bytes())
    v["nTx"] = len(block.txs)
    v["tx"] = ([t.txid.hex() for t in block.txs] if verbosity == 1
               else [tx_view(t, node.params, encodings(node)) for t in block.txs])
    return v


@rpc()
def getrawtransaction(node, txid: str, verbose: bool = False, blockhash: str | None = None):
    """Returns a transaction from the mempool or the chain (txindex) as hex, or an object."""
    h = parse_hash(txid, "txid")
    tx, loc = node.mempool.get(h), None
    if tx is None:
        loc = node.chain.tx_location(h)
        if loc is None:
            raise RPCError(INVALID_ADDRESS_OR_KEY, "No such mempool or blockchain transaction")
        tx = node.chain.get_block(loc[0]).txs[loc[1]]
    if not verbose:
        return tx.to_bytes().hex()
    v = tx_view(tx, node.params, encodings(node))
    if loc is not None:
        e = node.chain.entries[loc[0]]
        v.update(blockhash=loc[0].hex(), confirmations=node.chain.height - e.height + 1,
                 height=e.height, time=e.header.time, blocktime=e.header.time)
    return v


def decode_tx(hexstr) -> Tx:
    try:
        return Tx.from_bytes(parse_hex(hexstr))
    except DecodeError as e:
        raise RPCError(DESERIALIZATION_ERROR, f"TX decode failed: {e}") from None


@rpc()
def decoderawtransaction(node, hexstring: str) -> dict:
    """Decodes a transaction given as hex."""
    return tx_view(decode_tx(hexstring), node.params, encodings(node))


@rpc()
def sendrawtransaction(node, hexstring: str) -> str:
    """Submits a signed transaction (hex) to the mempool and relays it; returns its txid."""
    tx = decode_tx(hexstring)
    if node.chain.tx_location(tx.txid) is not None:
        raise RPCError(VERIFY_ALREADY_IN_CHAIN, "Transaction already in block chain")
    try:
        node.submit_tx(tx)
    except ValidationError as e:
        if e.reason == "txn-already-in-mempool":
            return tx.txid.hex()
        raise RPCError(VERIFY_REJECTED, str(e)) from None
    return tx.txid.hex()


@rpc()
def getmempoolinfo(node) -> dict:
    """Returns the mempool's size and limits."""
    return node.mempool.info()


@rpc()
def getrawmempool(node, verbose: bool = False):
    """Returns the txids in the mempool, or an object per txid with fee, size and time."""
    entries = node.mempool.entries
    if not verbose:
        return [t.hex() for t in entries]
    return {t.hex(): {"size": e.size, "fee": coins(e.fee), "fee_sat": e.fee, "time": int(e.time),
                      "height": e.height, "depends": [p.hex() for p in e.parents]}
            for t, e in entries.items()}


@rpc()
def gettxout(node, txid: str, n: int, include_mempool: bool = True):
    """Returns an unspent output, or null if spent or unknown."""
    h = parse_hash(txid, "txid")
    if include_mempool:
        coin = node.mempool.coin(h, n)
        if coin is None:
            return None
    else:
        coin = node.chain.get_coin(h, n)
    if coin is None:
        return None
    in_chain = node.chain.get_coin(h, n) is not None
    return {"bestblock": node.chain.tip.hash.hex(),
            "confirmations": node.chain.height - coin.height + 1 if in_chain else 0,
            "value": coins(coin.value), "value_sat": coin.value,
            "address": encode_address(node.params.address_version, coin.address),
            "covenant": covenant_view(coin.covenant), "coinbase": coin.coinbase}


def _addresses(node, addresses) -> list[bytes]:
    if isinstance(addresses, dict):
        addresses = addresses.get("addresses")
    if isinstance(addresses, str):
        addresses = [addresses]
    if not isinstance(addresses, list) or not addresses:
        raise RPCError(INVALID_PARAMETER, "expected an address or {\"addresses\": [...]}")
    return [parse_address(node, a) for a in addresses]


@rpc()
def getaddressutxos(node, addresses, include_mempool: bool = False) -> list:
    """Unspent outputs of one or more addresses (address index), oldest first."""
    out = []
    for addr in _addresses(node, addresses):
        text = encode_address(node.params.address_version, addr)
        for txid, idx in node.chain.store.address_coins(addr):
            coin = node.chain.get_coin(txid, idx)
            if coin is None or (txid, idx) in node.mempool.spends and include_mempool:
                continue
            out.append({"address": text, "txid": txid.hex(), "outputIndex": idx, "value_sat": coin.value,
                        "value": coins(coin.value), "height": coin.height, "coinbase": coin.coinbase,
                        "covenant": covenant_view(coin.covenant)})
        if include_mempool:
            for e in node.mempool.entries.values():
                for i, o in enumerate(e.tx.outputs):
                    if o.address == addr and node.mempool.coin(e.txid, i) is not None:
                        out.append({"address": text, "txid": e.txid.hex(), "outputIndex": i,
                                    "value_sat": o.value, "value": coins(o.value), "height": -1,
                                    "coinbase": False, "covenant": covenant_view(o.covenant)})
    out.sort(key=lambda u: (u["height"] < 0, u["height"], u["txid"], u["outputIndex"]))
    return out


@rpc(offload=True)
def getaddresshistory(node, addresses) -> list:
    """Transactions touching one or more addresses (confirmed), by height."""
    out = []
    for addr in _addresses(node, addresses):
        for height, txid in node.chain.store.address_history(addr):
            out.append({"txid": txid.hex(), "height": height})
    out.sort(key=lambda r: (r["height"], r["txid"]))
    return out


@rpc()
def validateaddress(node, address: str) -> dict:
    """Checks an address for this network."""
    try:
        h = decode_address(node.params.address_version, address)
    except (AddressError, AttributeError, TypeError) as e:
        return {"isvalid": False, "error": str(e)}
    return {"isvalid": True, "address": address, "hash160": h.hex()}


# --- control ------------------------------------------------------------------------------------

@rpc()
def uptime(node) -> int:
    """Seconds since the node started."""
    return int(time.time() - node.started_at)


@rpc()
def stop(node) -> str:
    """Stops the node cleanly."""
    node.stopping.set()
    return "dotbit node stopping"
