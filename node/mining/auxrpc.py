"""Merged-mining RPC methods with Namecoin Core's names and shapes, so that existing pool
software drives them: createauxblock/submitauxblock, and getauxblock in both its forms."""
from __future__ import annotations

from core.auxpow import AuxPow
from core.consensus import bits_to_target
from core.errors import DecodeError, ValidationError
from node.rpc.methods import parse_address, parse_hash, parse_hex
from node.rpc.registry import DESERIALIZATION_ERROR, INVALID_PARAMETER, MISC_ERROR, RPCError, rpc


@rpc()
def createauxblock(node, address: str) -> dict:
    """A block to merge-mine, paying its coinbase to address: commit `hash` in the parent
    coinbase, then call submitauxblock with it and the AuxPoW. `_target` is little-endian hex."""
    return _create(node, parse_address(node, address))


@rpc()
def submitauxblock(node, hash: str, auxpow: str) -> bool:
    """Submits the AuxPoW (hex, Namecoin's serialization) for a block from createauxblock;
    true if the block was accepted."""
    return _submit(node, hash, auxpow)


@rpc()
def getauxblock(node, hash: str | None = None, auxpow: str | None = None):
    """Without arguments: createauxblock paying the node's mining address. With hash and
    auxpow: submitauxblock."""
    if hash is None and auxpow is None:
        return _create(node, node.mining_address)
    if hash is None or auxpow is None:
        raise RPCError(INVALID_PARAMETER, "getauxblock takes no arguments or both hash and auxpow")
    return _submit(node, hash, auxpow)


def _create(node, address: bytes) -> dict:
    params = node.params
    if node.chain.height + 1 < params.auxpow_height:
        raise RPCError(MISC_ERROR, f"merged mining starts at height {params.auxpow_height}")
    block, height = node.mining.aux.create(address)
    h = block.header
    return {"hash": block.hash.hex(), "chainid": params.auxpow_chain_id,
            "previousblockhash": h.prev_hash.hex(), "coinbasevalue": block.txs[0].outputs[0].value,
            "bits": f"{h.bits:08x}", "height": height,
            "_target": bits_to_target(h.bits).to_bytes(32, "little").hex()}


def _submit(node, block_hash: str, auxpow_hex: str) -> bool:
    key = parse_hash(block_hash, "hash")
    try:
        aux = AuxPow.from_bytes(parse_hex(auxpow_hex))
    except DecodeError as e:
        raise RPCError(DESERIALIZATION_ERROR, f"AuxPoW decode failed: {e}") from None
    block = node.mining.aux.solved(key, aux)
    if block is None:
        raise RPCError(INVALID_PARAMETER, "block hash unknown")
    try:
        status = node.submit_block(block)
    except ValidationError:
        return False
    return status in ("active", "side")
