"""Network parameters (DESIGN §3, §5). Objects passed explicitly, never a mutable global.

Genesis blocks are fixed constants: the header fields are written out here and a test checks
the resulting hashes against the constants below, so any encoding change is caught at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.consensus import COIN, bits_to_target
from core.primitives import (BURN, NAME_FIRSTUPDATE, NAME_NEW, NAME_UPDATE, NONE, Block,
                                   Header, Tx, TxOut, block_merkle_root)

EMPTY_NAME_ROOT = bytes(32)
GENESIS_NOTE_ADDRESS = bytes(20)   # nobody holds a key for the zero hash: genesis coins are dead


@dataclass(frozen=True)
class Params:
    name: str
    magic: bytes
    address_version: int
    p2p_port: int
    rpc_port: int
    dns_port: int
    http_port: int
    pow_limit_bits: int
    retarget: bool
    genesis_time: int
    genesis_nonce: int
    genesis_hash_hex: str
    spacing: int = 600
    retarget_interval: int = 2016
    halving_interval: int = 210_000
    coinbase_maturity: int = 100
    expiry_depth: int = 36_000
    min_firstupdate_depth: int = 12
    name_lock: int = COIN // 100
    max_block_size: int = 1_000_000
    max_tx_size: int = 100_000
    # Anti-DoS (Bitcoin Core's nMinimumChainWork): header branches with less total work are not
    # kept. 0 until the network has history worth pinning; raise it with each release.
    min_chain_work: int = 0
    # Registration burn (anti-squatting): base price by name length in bytes (after the
    # namespace prefix), names longer than the table cost the last entry.
    burn_table: tuple[int, ...] = (0,)
    # Merged mining (core/auxpow.py): blocks from `auxpow_height` on may carry an AuxPoW; the
    # chain ID in an AuxPoW block's version picks its slot in a parent's merged-mining tree
    # (Namecoin is 1; a BIP9 Bitcoin version reads as 0x2000, so neither may be ours). The
    # slot rule only looks at the ID's low bits for a tree of 2^h slots: ours is even (apart
    # from Namecoin's from h = 1) and 0 mod 4 (apart from Dogecoin's 0x62 from h = 2).
    auxpow_chain_id: int = 0x0B14
    auxpow_height: int = 1 << 32      # never, unless the network states its height
    covenant_types: frozenset = field(default_factory=lambda: frozenset(
        {NONE, NAME_NEW, NAME_FIRSTUPDATE, NAME_UPDATE, BURN}))

    @property
    def pow_limit(self) -> int:
        return bits_to_target(self.pow_limit_bits)

    @property
    def genesis(self) -> Block:
        return make_genesis(self.pow_limit_bits, self.genesis_time, self.genesis_nonce)

    @property
    def genesis_hash(self) -> bytes:
        return bytes.fromhex(self.genesis_hash_hex)


def make_genesis(bits: int, time: int, nonce: int) -> Block:
    coinbase = Tx(1, (), (TxOut(50 * COIN, GENESIS_NOTE_ADDRESS),), 0)
    header = Header(1, bytes(32), block_merkle_root([coinbase]), EMPTY_NAME_ROOT,
                    time, bits, nonce)
    return Block(header, (coinbase,))


# Short names are where squatting pays, so they cost more to register (in base units).
_MAIN_BURN = (1000 * COIN, 500 * COIN, 100 * COIN, 20 * COIN, 5 * COIN, 1 * COIN, COIN // 10)
_REGTEST_BURN = (COIN // 100 * 8, COIN // 100 * 4, COIN // 100 * 2, COIN // 100)

MAIN = Params(
    name="main", magic=bytes.fromhex("d07b1701"), address_version=52,
    p2p_port=8600, rpc_port=8601, dns_port=8653, http_port=8680,
    pow_limit_bits=0x1E0FFFFF, retarget=True,
    genesis_time=1795305600, genesis_nonce=14782,
    genesis_hash_hex="00000acf7c24b9b846b248779140e582e6e4605d14c01919e60b2ebb2b07bc1d", burn_table=_MAIN_BURN,
    auxpow_height=20_000,
)
TESTNET = Params(
    name="testnet", magic=bytes.fromhex("d07b1702"), address_version=111,
    p2p_port=28600, rpc_port=28601, dns_port=28653, http_port=28680,
    pow_limit_bits=0x1E0FFFFF, retarget=True,
    genesis_time=1795305601, genesis_nonce=137788,
    genesis_hash_hex="000009b70950b4b67ce59a3aaea9165363ef3854f9029eefa107a7e5065c0787", burn_table=_MAIN_BURN,
    auxpow_height=1_000,
)
REGTEST = Params(
    name="regtest", magic=bytes.fromhex("d07b17ff"), address_version=60,
    p2p_port=18600, rpc_port=18601, dns_port=18653, http_port=18680,
    pow_limit_bits=0x207FFFFF, retarget=False,
    genesis_time=1795305602, genesis_nonce=0,
    genesis_hash_hex="6bb878f30af83c880afce00692ea4aa5caae1a5d1612aac84b2fdbb7d7440c4e",
    halving_interval=150, expiry_depth=30, burn_table=_REGTEST_BURN,
    auxpow_height=10,        # low, so tests merge-mine at once, yet leave heights to test before it
)

NETWORKS = {p.name: p for p in (MAIN, TESTNET, REGTEST)}


def get_params(name: str) -> Params:
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r} (choose from {', '.join(NETWORKS)})") from None
