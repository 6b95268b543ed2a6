"""Building merged-mining proofs: what a merge miner does on the parent-chain side.

Bitcoin's structures as a merge miner needs them (a legacy coinbase, the Merkle tree with its
duplicated odd leaf, the 80-byte header), the merged-mining tree over several aux chains, and
the AuxPoW that proves one dotbit block. The checks live in core/auxpow.py; this only builds.
"""
from __future__ import annotations

import struct
from dataclasses import replace

from core.auxpow import (AuxPow, aux_version, commitment, expected_index, merkle_branch_root,
                         parent_hash_int, varint)
from core.crypto import sha256d
from core.primitives import Header

_PARENT = struct.Struct("<I32s32sIII")


def coinbase_tx(script_sig: bytes, outputs, version: int = 1, locktime: int = 0) -> bytes:
    """A legacy-serialized Bitcoin coinbase: one null-prevout input, `outputs` as
    (value, script_pubkey) pairs."""
    body = [struct.pack("<I", version), b"\x01", bytes(32), b"\xff\xff\xff\xff",
            varint(len(script_sig)), script_sig, b"\xff\xff\xff\xff", varint(len(outputs))]
    for value, spk in outputs:
        body += [struct.pack("<q", value), varint(len(spk)), spk]
    body.append(struct.pack("<I", locktime))
    return b"".join(body)


def btc_merkle_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Bitcoin's Merkle tree level by level (an odd last node is paired with itself)."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        if len(cur) % 2:
            cur = cur + [cur[-1]]
        levels.append([sha256d(cur[i] + cur[i + 1]) for i in range(0, len(cur), 2)])
    return levels


def btc_merkle_branch(leaves: list[bytes], index: int) -> list[bytes]:
    branch = []
    for level in btc_merkle_levels(leaves)[:-1]:
        sibling = index ^ 1
        branch.append(level[sibling] if sibling < len(level) else level[index])
        index >>= 1
    return branch


def parent_header(version: int, prev: bytes, merkle_root: bytes, time: int, bits: int, nonce: int = 0) -> bytes:
    return _PARENT.pack(version, prev, merkle_root, time, bits, nonce)


def grind_parent(header80: bytes, target: int, start: int = 0, count: int = 1 << 32) -> bytes | None:
    """The header with the first nonce from `start` whose Bitcoin hash meets `target`."""
    for nonce in range(start, min(start + count, 1 << 32)):
        h = header80[:76] + struct.pack("<I", nonce)
        if parent_hash_int(h) <= target:
            return h
    return None


def aux_tree(hashes: dict[int, bytes], nonce: int, height: int) -> tuple[bytes, dict[int, tuple]]:
    """A merged-mining tree of 2^height slots holding each chain's block hash (raw dotbit-style
    bytes) at its expected slot: returns (commitment bytes for the coinbase script,
    {chain_id: (chain_branch, chain_index)}). ValueError if two chains want one slot."""
    size = 1 << height
    leaves = [bytes(32)] * size
    slots = {}
    for chain_id, h in hashes.items():
        slot = expected_index(nonce, chain_id, height)
        if slot in slots.values():
            raise ValueError("two chains share a slot: try another nonce or a taller tree")
        slots[chain_id] = slot
        leaves[slot] = h[::-1]
    levels = btc_merkle_levels(leaves)
    root = levels[-1][0]
    out = {cid: (tuple(btc_merkle_branch(leaves, s)), s) for cid, s in slots.items()}
    assert all(merkle_branch_root(leaves[s], b, s) == root for b, s in out.values())
    return commitment(root[::-1], size, nonce), out


def aux_header(header: Header, chain_id: int) -> Header:
    """The header as an AuxPoW block (version carries chain ID and flag); hash it after this."""
    return replace(header, version=aux_version(chain_id, header.version), auxpow=None)


def single_chain_auxpow(header: Header, chain_id: int, target: int, parent_version: int = 0x20000000,
                        time: int = 0, bits: int = 0x207FFFFF, branch_depth: int = 0) -> Header:
    """`header` (already an AuxPoW-version header) merge-mined alone under a parent made up
    here, ground until the parent meets `target` (tests, benchmarks). `branch_depth`: made-up
    sibling transactions, so the coinbase branch is as long as a real parent block's."""
    script = b"\x01\x01" + commitment(header.hash, 1, 0)
    cb = coinbase_tx(script, [(50 * 10**8, b"\x51")])
    branch = tuple(sha256d(bytes([i])) for i in range(branch_depth))
    root = merkle_branch_root(sha256d(cb), branch, 0)
    parent = grind_parent(parent_header(parent_version, bytes(32), root, time, bits), target)
    if parent is None:
        raise ValueError("no parent nonce meets the target")
    return replace(header, auxpow=AuxPow(cb, branch, (), 0, parent))
