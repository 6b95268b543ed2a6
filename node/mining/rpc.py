"""Mining RPC methods (bitcoind names and shapes): the node's own miner (generate,
generatetoaddress) and the external miner's pair (getblocktemplate, submitblock)."""
from __future__ import annotations

import time

from core.errors import DecodeError, ValidationError
from core.primitives import Block
from node.mining.template import create_template
from node.rpc.methods import parse_address, parse_hex
from node.rpc.registry import DESERIALIZATION_ERROR, INVALID_PARAMETER, RPCError, rpc


@rpc()
def getminingaddress(node) -> str:
    """The address the node mines to (from --mine-address, or its own key in the data dir)."""
    return node.mining_address_text


@rpc()
async def generate(node, nblocks: int) -> list:
    """Mines nblocks blocks to the node's mining address at once; returns their hashes."""
    return await _generate(node, nblocks, node.mining_address)


@rpc()
async def generatetoaddress(node, nblocks: int, address: str) -> list:
    """Mines nblocks blocks paying the coinbase to address; returns their hashes."""
    return await _generate(node, nblocks, parse_address(node, address))


async def _generate(node, nblocks: int, address: bytes) -> list:
    if not 0 <= nblocks <= 10_000:
        raise RPCError(INVALID_PARAMETER, "nblocks must be between 0 and 10000")
    return await node.mining.generate(nblocks, address)


@rpc()
def getblocktemplate(node, template_request: dict | None = None) -> dict:
    """A block template to mine on. Besides the BIP22 fields it carries the complete coinbase
    and header (nonce 0): an external miner grinds nonce (and time) and calls submitblock with
    the block = header + the listed transactions. {"address": A} chooses the coinbase payee."""
    req = template_request or {}
    if not isinstance(req, dict):
        raise RPCError(INVALID_PARAMETER, "template_request must be an object")
    address = parse_address(node, req["address"]) if "address" in req else node.mining_address
    t = create_template(node.chain, node.mempool, address, int(time.time()))
    h = t.block.header
    return {
        "version": h.version, "previousblockhash": h.prev_hash.hex(), "height": t.height,
        "bits": f"{h.bits:08x}", "target": f"{t.target:064x}", "curtime": h.time,
        "mintime": node.chain.earliest_time_after(node.chain.tip), "name_root": h.name_root.hex(),
        "merkleroot": h.merkle_root.hex(), "coinbasevalue": t.block.txs[0].outputs[0].value,
        "coinbasetxn": {"data": t.block.txs[0].to_bytes().hex()},
        "transactions": [{"data": tx.to_bytes().hex(), "txid": tx.txid.hex(), "hash": tx.wtxid.hex(),
                          "fee": node.mempool.entries[tx.txid].fee} for tx in t.block.txs[1:]],
        "header": h.to_bytes().hex(), "block": t.block.to_bytes().hex(),
        "sizelimit": node.params.max_block_size, "noncerange": "00000000ffffffff",
    }


@rpc()
def submitblock(node, hexdata: str):
    """Submits a solved block (hex). Returns null when accepted, else a reason string:
    "duplicate", "inconclusive" (orphan, parent unknown) or the rejection reason."""
    try:
        block = Block.from_bytes(parse_hex(hexdata))
    except DecodeError as e:
        raise RPCError(DESERIALIZATION_ERROR, f"Block decode failed: {e}") from None
    try:
        status = node.submit_block(block)
    except ValidationError as e:
        return e.reason
    return {"duplicate": "duplicate", "orphan": "inconclusive"}.get(status)

