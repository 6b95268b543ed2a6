"""Merged mining (AuxPoW) as Namecoin does it, byte for byte (docs/protocol.md §3.1).

A parent-chain (Bitcoin) miner commits to a dotbit block hash in its coinbase script:
`fabe6d6d | chain Merkle root (32, display order) | tree size u32le | nonce u32le`, the root
over one slot per merged chain. An AuxPoW proves that commitment: the parent coinbase, its
Merkle branch to the parent header's root, the branch from our block hash to the chain root,
and the 80-byte parent header whose hash carries the work. The serialization is Namecoin's
CAuxPow (coinbase tx | legacy block hash 32 | coinbase branch | index i32 | chain branch |
chain index i32 | parent header 80) so that merge-mining pool software speaks it unchanged.

Hashes inside Bitcoin structures are in Bitcoin's internal byte order; a dotbit block hash is
shown as its raw SHA-256d bytes, which is what Namecoin calls the reversed ("display") order,
so our slot's leaf is the block hash reversed and the committed root is the root reversed: a
single merged chain's coinbase then carries exactly the bytes of `createauxblock`'s hash.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

# merkle_branch_root is Namecoin's CheckMerkleBranch (core/crypto.py: native when built).
from core.crypto import merkle_branch_root, native_function, sha256d  # noqa: F401  (re-exported)
from core.errors import DecodeError, ValidationError

AUXPOW_FLAG = 0x100                 # version bit saying "my work is in an AuxPoW"
MERGED_MINING_MAGIC = bytes.fromhex("fabe6d6d")
PARENT_HEADER_SIZE = 80
MAX_CHAIN_BRANCH = 30               # Namecoin's bound: 2^30 merged chains is more than enough
MAX_COINBASE_BRANCH = 24            # a parent block of 16 million transactions
# The whole encoding; a pool's coinbase gets what the branches leave (over 1 kB even with a
# 14-deep parent branch). Bounded so that a full headers message stays near Bitcoin's 4 MB.
MAX_AUXPOW_SIZE = 2048
# Failures of the AuxPoW itself. It is not part of the hashed header, so a relay can spoil it
# on a valid block: a node must never remember the block hash as invalid for these.
TRANSIT_REASONS = frozenset({
    "auxpow-flag-mismatch", "auxpow-high-hash", "auxpow-parent-chain-id", "auxpow-not-coinbase",
    "auxpow-chain-branch-too-long", "auxpow-bad-coinbase-branch", "auxpow-missing-commitment",
    "auxpow-multiple-commitments", "auxpow-misplaced-commitment", "auxpow-bad-chain-branch",
    "auxpow-missing-size-nonce", "auxpow-bad-tree-size", "auxpow-wrong-slot"})
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_SIZE_NONCE = struct.Struct("<II")
_parse_native = native_function("parse_auxpow")


def chain_id_of(version: int) -> int:
    return version >> 16


def is_auxpow_version(version: int) -> bool:
    return bool(version & AUXPOW_FLAG)


def aux_version(chain_id: int, base: int = 1) -> int:
    return (chain_id << 16) | AUXPOW_FLAG | (base & 0xFF)


# --- Bitcoin encodings -----------------------------------------------------------------------

def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the compact size at `pos`; canonical only."""
    if pos >= len(data):
        raise DecodeError("auxpow: truncated")
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    size = 2 if first == 0xFD else 4 if first == 0xFE else 8
    if pos + 1 + size > len(data):
        raise DecodeError("auxpow: truncated")
    n = int.from_bytes(data[pos + 1:pos + 1 + size], "little")
    if n < (0xFD if size == 2 else 1 << (4 * size)):
        raise DecodeError("auxpow: non-canonical compact size")
    return n, pos + 1 + size


def varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def coinbase_script(tx: bytes) -> bytes:
    """The first input's script of a legacy-serialized Bitcoin transaction (DecodeError if
    `tx` is not exactly one such transaction). The txid is SHA-256d of these bytes, so a
    witness-serialized coinbase (marker 0) is refused: pools strip the witness."""
    end, script = _read_tx(tx, 0)
    if end != len(tx):
        raise DecodeError("auxpow: bytes after the parent coinbase")
    return script


def _read_tx(data: bytes, pos: int) -> tuple[int, bytes]:
    """(end, first input's script) of the transaction at `pos`. Positions are checked once
    per field group rather than per byte, and one-byte compact sizes (all but a long script)
    are read inline: every header of a sync goes through here."""
    first = data[pos + 4] if pos + 4 < len(data) else 0xFD
    n_in, pos = (first, pos + 5) if first < 0xFD else _varint(data, pos + 4)
    if n_in == 0:
        raise DecodeError("auxpow: parent coinbase has no input (or a witness marker)")
    script = b""
    for i in range(n_in):
        pos += 36
        first = data[pos] if pos < len(data) else 0xFD
        n, pos = (first, pos + 1) if first < 0xFD else _varint(data, pos)
        if i == 0:
            script = data[pos:pos + n]
        pos += n + 4
    n_out, pos = _varint(data, pos)
    for _ in range(n_out):
        pos += 8
        first = data[pos] if pos < len(data) else 0xFD
        n, pos = (first, pos + 1) if first < 0xFD else _varint(data, pos)
        pos += n
    pos += 4
    if pos > len(data):
        raise DecodeError("auxpow: truncated")
    return pos, script


# One struct per branch length: a branch's hashes come out as a tuple in one C call.
_BRANCHES = [struct.Struct("32s" * n) for n in range(max(MAX_CHAIN_BRANCH, MAX_COINBASE_BRANCH) + 1)]


def _hashes(data: bytes, pos: int, limit: int, what: str) -> tuple[tuple[bytes, ...], int]:
    first = data[pos] if pos < len(data) else 0xFD
    n, pos = (first, pos + 1) if first < 0xFD else _varint(data, pos)
    if n > limit:
        raise DecodeError(f"auxpow: {what} longer than {limit}")
    end = pos + 32 * n
    if end > len(data):
        raise DecodeError("auxpow: truncated")
    return _BRANCHES[n].unpack_from(data, pos), end


@dataclass(frozen=True, slots=True)
class AuxPow:
    coinbase_tx: bytes                   # legacy-serialized Bitcoin transaction
    coinbase_branch: tuple[bytes, ...]   # from the coinbase txid to the parent Merkle root
    chain_branch: tuple[bytes, ...]      # from our block hash to the committed chain root
    chain_index: int
    parent_header: bytes                 # 80-byte Bitcoin header
    coinbase_index: int = 0              # must be 0: the coinbase is the parent's first tx
    legacy_hash: bytes = bytes(32)       # CMerkleTx's unused block hash, kept for round trips
    # The coinbase script, kept from decoding so a sync parses each coinbase once.
    _script: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def script(self) -> bytes:
        return self._script if self._script is not None else coinbase_script(self.coinbase_tx)

    def to_bytes(self) -> bytes:
        return b"".join((self.coinbase_tx, self.legacy_hash, varint(len(self.coinbase_branch)),
                         *self.coinbase_branch, _I32.pack(self.coinbase_index),
                         varint(len(self.chain_branch)), *self.chain_branch,
                         _I32.pack(self.chain_index), self.parent_header))

    @staticmethod
    def from_bytes(data: bytes) -> "AuxPow":
        if type(data) is not bytes or len(data) > MAX_AUXPOW_SIZE:
            raise DecodeError(f"auxpow: more than {MAX_AUXPOW_SIZE} bytes")
        if _parse_native is not None:    # every header of a sync: one C call when well formed
            got = _parse_native(data, MAX_COINBASE_BRANCH, MAX_CHAIN_BRANCH)
            if got is not None:
                end, at, n, cb_branch, cb_index, chain_branch, chain_index, parent_at = got
                return AuxPow(data[:end], cb_branch, chain_branch, chain_index, data[parent_at:],
                              cb_index, data[end:end + 32], data[at:at + n])
        return AuxPow.parse(data)

    @staticmethod
    def parse(data: bytes) -> "AuxPow":
        """The reference decoder: what the native fast path must agree with, and every
        malformed encoding's precise DecodeError."""
        pos, script = _read_tx(data, 0)     # no length prefix: its end is found by parsing it
        coinbase, legacy = data[:pos], data[pos:pos + 32]
        cb_branch, pos = _hashes(data, pos + 32, MAX_COINBASE_BRANCH, "coinbase branch")
        cb_at = pos
        chain_branch, pos = _hashes(data, pos + 4, MAX_CHAIN_BRANCH, "chain branch")
        if pos + 4 + PARENT_HEADER_SIZE != len(data):
            raise DecodeError("auxpow: truncated" if pos + 4 + PARENT_HEADER_SIZE > len(data)
                              else "auxpow: trailing bytes")
        return AuxPow(coinbase, cb_branch, chain_branch, _I32.unpack_from(data, pos)[0], data[pos + 4:],
                      _I32.unpack_from(data, cb_at)[0], legacy, script)


def expected_index(nonce: int, chain_id: int, height: int) -> int:
    """The slot a chain must use in a merged-mining tree of 2^height leaves: a fixed function
    of the nonce and the chain ID, so one parent block can hold two blocks of one chain in no
    way (each chain has exactly one slot per nonce)."""
    rand = (nonce * 1103515245 + 12345) & 0xFFFFFFFF
    rand = (rand + chain_id) & 0xFFFFFFFF
    rand = (rand * 1103515245 + 12345) & 0xFFFFFFFF
    return rand % (1 << height)


def parent_hash_int(parent_header: bytes) -> int:
    """The parent block's proof of work as Bitcoin reads it (SHA-256d, little-endian)."""
    return int.from_bytes(sha256d(parent_header), "little")


# --- validation ------------------------------------------------------------------------------

def commitment(root_display: bytes, size: int, nonce: int) -> bytes:
    """What a parent coinbase script carries for a merged-mining tree (miners build it)."""
    return MERGED_MINING_MAGIC + root_display + _U32.pack(size) + _U32.pack(nonce)


def check_auxpow(aux: AuxPow, block_hash: bytes, chain_id: int, target: int) -> None:
    """Checks that `aux` proves work of at least `target` for the dotbit block `block_hash`
    (raw SHA-256d bytes). Cheapest first, so unworked junk costs one hash: parent PoW, then
    what the parent is, then the two branches, then the commitment's place and slot. Every
    merge-mined header of a sync comes through here, so field reads are inline and the hashing
    is one native call per branch (core/crypto.py)."""
    parent = aux.parent_header
    if int.from_bytes(sha256d(parent), "little") > target:
        raise ValidationError("auxpow-high-hash", 50, "parent block's proof of work is short of our target")
    if _U32.unpack_from(parent)[0] >> 16 == chain_id:
        raise ValidationError("auxpow-parent-chain-id", 100, "parent block claims our chain ID")
    if aux.coinbase_index != 0:
        raise ValidationError("auxpow-not-coinbase", 100, "AuxPoW transaction is not the parent's coinbase")
    chain_branch = aux.chain_branch
    if len(chain_branch) > MAX_CHAIN_BRANCH:
        raise ValidationError("auxpow-chain-branch-too-long", 100)
    if merkle_branch_root(sha256d(aux.coinbase_tx), aux.coinbase_branch, 0) != parent[36:68]:
        raise ValidationError("auxpow-bad-coinbase-branch", 100, "coinbase is not in the parent's Merkle tree")
    # An empty chain branch (a lone merged chain) has our block hash itself as its root.
    root = merkle_branch_root(block_hash[::-1], chain_branch, aux.chain_index)[::-1] if chain_branch else block_hash
    _check_commitment(aux.script, root, aux, chain_id)


def _check_commitment(script: bytes, root: bytes, aux: AuxPow, chain_id: int) -> None:
    head = script.find(MERGED_MINING_MAGIC)
    if head < 0:
        # Namecoin still accepts a magic-less root in the first 20 bytes (2011 coinbases);
        # a new chain has no such history, so the magic is required.
        raise ValidationError("auxpow-missing-commitment", 100, "no merged-mining header in the parent coinbase")
    if script.find(MERGED_MINING_MAGIC, head + 1) >= 0:
        raise ValidationError("auxpow-multiple-commitments", 100, "two merged-mining headers in the parent coinbase")
    at = head + len(MERGED_MINING_MAGIC)
    if script[at:at + 32] != root:
        if root in script:
            raise ValidationError("auxpow-misplaced-commitment", 100,
                                  "chain root is not just after the merged-mining header")
        raise ValidationError("auxpow-bad-chain-branch", 100, "chain Merkle root (from our block hash) not committed")
    if len(script) < at + 40:
        raise ValidationError("auxpow-missing-size-nonce", 100, "no tree size and nonce after the chain root")
    size, nonce = _SIZE_NONCE.unpack_from(script, at + 32)
    height = len(aux.chain_branch)
    if size != 1 << height:
        raise ValidationError("auxpow-bad-tree-size", 100, "tree size does not match the chain branch")
    if aux.chain_index != expected_index(nonce, chain_id, height):
        raise ValidationError("auxpow-wrong-slot", 100, "block is not in its chain's slot of the merged-mining tree")
