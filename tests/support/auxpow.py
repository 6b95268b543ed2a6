"""AuxPoW builders for tests: a valid merge-mined header, and the same with one thing broken."""
from __future__ import annotations

from dataclasses import replace

from core.auxpow import AuxPow, commitment, parent_hash_int
from core.consensus import bits_to_target
from core.crypto import sha256d
from core.params import REGTEST
from core.primitives import Block, Header
from node.mining.auxbuild import (aux_header, btc_merkle_branch, btc_merkle_levels, coinbase_tx, grind_parent,
                                  parent_header)

BTC_REGTEST_VERSION = 0x20000000     # chain ID 0x2000 as a BIP9 Bitcoin version reads


def aux_block(block: Block, params=REGTEST, **kw) -> Block:
    """`block` made an AuxPoW block (version changed, so its hash too) merge-mined per `kw`."""
    header = aux_header(block.header, params.auxpow_chain_id)
    return Block(merge(header, bits_to_target(header.bits), params.auxpow_chain_id, **kw), block.txs)


def merge(header: Header, target: int, chain_id: int, *, script: bytes | None = None,
          parent_version: int = BTC_REGTEST_VERSION, chain_branch=(), chain_index: int = 0,
          tree_nonce: int = 0, other_txids=(), break_cb_branch: bool = False, short_pow: bool = False,
          coinbase_index: int = 0) -> Header:
    """`header` with an AuxPoW built from the given parts: by default a valid single-chain one
    whose parent is a Bitcoin regtest header ground to meet `target`."""
    if script is None:
        root = header.hash
        if chain_branch:
            from core.auxpow import merkle_branch_root
            root = merkle_branch_root(header.hash[::-1], chain_branch, chain_index)[::-1]
        script = b"\x03\x01\x02\x03" + commitment(root, 1 << len(chain_branch), tree_nonce) + b"pool"
    cb = coinbase_tx(script, [(50 * 10**8, b"\x51")])
    leaves = [sha256d(cb), *other_txids]
    mroot = btc_merkle_levels(leaves)[-1][0]
    branch = tuple(btc_merkle_branch(leaves, 0))
    if break_cb_branch:
        branch = (bytes(32),) + branch[1:] if branch else (bytes(32),)
    parent = parent_header(parent_version, bytes(32), mroot, header.time, 0x207FFFFF)
    parent = _grind_short(parent, target) if short_pow else grind_parent(parent, target)
    return replace(header, auxpow=AuxPow(cb, branch, tuple(chain_branch), chain_index, parent, coinbase_index))


def _grind_short(parent: bytes, target: int) -> bytes:
    for nonce in range(1 << 20):
        h = parent[:76] + nonce.to_bytes(4, "little")
        if parent_hash_int(h) > target:
            return h
    raise AssertionError("no failing nonce")


def aux_next(chain, address: bytes, clock=None, **kw) -> Block:
    """The next block on chain's tip, merge-mined (not submitted); `kw` as for `merge`."""
    from node.mining.template import assemble
    now = int(clock()) if clock else int(chain.tip.header.time) + 600
    return aux_block(assemble(chain, [], 0, address, now).block, chain.params, **kw)


def aux_mine(chain, address: bytes, n: int = 1, clock=None) -> list[Block]:
    blocks = []
    for _ in range(n):
        if clock is not None:
            clock.now += 600
        b = aux_next(chain, address, clock)
        assert chain.process_block(b) == "active"
        blocks.append(b)
    return blocks


def auxpow_for(aux: dict, **kw) -> str:
    """An AuxPoW (hex) for the block a createauxblock/getauxblock answer describes, built from
    its fields alone as a pool would (the hash committed as given); `kw` as for `merge`."""
    h = bytes.fromhex(aux["hash"])
    target = int.from_bytes(bytes.fromhex(aux["_target"]), "little")
    stub = Header(0, bytes(32), bytes(32), bytes(32), 0, 0, 0)   # only its time reaches the parent
    script = kw.pop("script", b"\x01\x01" + commitment(h, 1, 0))
    return merge(stub, target, aux["chainid"], script=script, **kw).auxpow.to_bytes().hex()
