"""The chain store: the one door between the chain and its keys in the node's LevelDB.

ChainState decides what happens to the chain; this module decides how it is written and
read back (hsd's chaindb.js beside chain.js). Adapters (p2p, RPC, operator commands) ask it
for raw blocks, address coins, address history or a projection comparison and never see a
key. Writes take the caller's batch, so a block's changes still land in ONE batch.
"""
from __future__ import annotations

from itertools import islice
from typing import Iterator

import msgpack

from core.consensus import BURN, Coin
from core.encoding import pack
from core.errors import DecodeError, StoreError
from core.primitives import Block, Header, block_merkle_root
from node.chain import layout as L
from node.chain.blockindex import HAVE_DATA


def _unpack(b: bytes):
    return msgpack.unpackb(b, raw=False)


_NO_COINS: dict = {}


class CoinView:
    """Coins as seen while connecting one block: the store plus this block's own changes.
    `known`: coins already read for this very block as the store holds them before it (the
    block before it looked them up to send its signature checks ahead; ChainState keeps
    them only for the next connect, and only when that block's batch committed), so they
    are not read and decoded twice."""

    __slots__ = ("db", "created", "spent", "known")

    def __init__(self, db, known: dict = _NO_COINS):
        self.db = db
        self.created: dict[tuple[bytes, int], Coin] = {}
        self.spent: dict[tuple[bytes, int], Coin] = {}
        self.known = known

    def get(self, outpoint: tuple[bytes, int]) -> Coin | None:
        if outpoint in self.spent:
            return None
        coin = self.created.get(outpoint) or self.known.get(outpoint)
        if coin is not None:
            return coin
        raw = self.db.get(L.coin_key(*outpoint))
        return Coin.from_obj(_unpack(raw)) if raw is not None else None

    def spend(self, outpoint, coin: Coin) -> bool:
        """Returns True when the coin came from the store (so the undo record must keep it);
        a coin created and spent inside the same block leaves no trace."""
        if self.created.pop(outpoint, None) is None:
            self.spent[outpoint] = coin
            return True
        return False


MISSING = "its stored body is missing"      # read_whole's reason when there is no body at all


class ChainDB:
    def __init__(self, db):
        self.db = db

    # --- opening ---------------------------------------------------------------------------

    def check_meta(self, network: str, genesis_hash: bytes) -> None:
        """Stamp a new store with its version and network; refuse a store of another kind."""
        meta = self.db.get(L.VERSION)
        if meta is None:
            with self.db.write_batch() as b:
                b.put(L.VERSION, pack([L.DB_VERSION, network, genesis_hash]))
            return
        version, stored_network, ghash = _unpack(meta)
        if version != L.DB_VERSION:
            raise StoreError(f"database version {version}, this node needs {L.DB_VERSION}; run reindex")
        if stored_network != network or ghash != genesis_hash:
            raise StoreError(f"database belongs to network {stored_network!r}, not {network!r}")

    def stored_network(self) -> str | None:
        """The network this store was stamped with, None for a new store."""
        meta = self.db.get(L.VERSION)
        return None if meta is None else _unpack(meta)[1]

    def header_rows(self) -> list[tuple[int, bytes, Header, int, int]]:
        """Every stored header as (height, hash, header, chainwork, status), lowest first."""
        rows = []
        for key, value in self.db.iterator(prefix=L.HEADER):
            hb, height, work, status = _unpack(value)
            rows.append((height, key[1:], Header.from_wire(hb), int.from_bytes(work, "big"), status))
        rows.sort(key=lambda r: r[0])
        return rows

    def tip_hash(self) -> bytes | None:
        return self.db.get(L.TIP)

    # --- queries ---------------------------------------------------------------------------

    def raw_block(self, block_hash: bytes) -> bytes | None:
        """The stored bytes of a block, which are its canonical encoding."""
        return self.db.get(L.block_key(block_hash))

    def get_block(self, block_hash: bytes) -> Block | None:
        raw = self.raw_block(block_hash)
        return Block.from_bytes(raw, max_size=len(raw)) if raw is not None else None

    def whole_block(self, block_hash: bytes) -> Block | None:
        """The stored block, None when its body is not the block `block_hash` names (body_damage
        says why). What a connect from the store reads, a reindex's above all: a body is checked
        when it arrives, but the disk may damage it after that, and a damaged body that still
        decodes would connect other transactions than the header commits to."""
        return self.read_whole(block_hash)[0]

    def body_damage(self, block_hash: bytes) -> str | None:
        return self.read_whole(block_hash)[1]

    def read_whole(self, block_hash: bytes) -> tuple[Block | None, str | None]:
        """(the stored block, None) when its body is whole; else (None, why not)."""
        raw = self.raw_block(block_hash)
        if raw is None:
            return None, MISSING
        try:
            block = Block.from_bytes(raw, max_size=len(raw))
        except DecodeError as e:
            return None, f"its stored body does not decode ({e.detail})"
        if block.hash != block_hash:
            return None, "its stored body holds another header"
        if block_merkle_root(block.txs) != block.header.merkle_root:
            return None, "its stored body's transactions do not match its merkle root"
        return block, None

    def drop_body(self, entry) -> str:
        """Deletes a body whole_block refused and marks the block as not stored (not invalid:
        the block may well be good), so that the node fetches it again from its peers, and
        branches through it wait for it. Returns what was wrong, for the log."""
        why = self.body_damage(entry.hash) or "its stored body was unreadable"
        entry.status &= ~HAVE_DATA
        with self.db.write_batch() as b:
            b.delete(L.block_key(entry.hash))
            self.put_header(b, entry)
        return why + ": dropped, to be fetched again from peers"

    def get_coin(self, txid: bytes, index: int) -> Coin | None:
        raw = self.db.get(L.coin_key(txid, index))
        return Coin.from_obj(_unpack(raw)) if raw is not None else None

    def tx_location(self, txid: bytes) -> tuple[bytes, int] | None:
        raw = self.db.get(L.txindex_key(txid))
        return tuple(_unpack(raw)) if raw is not None else None

    def raw_main_chain(self) -> Iterator[bytes]:
        """The stored bytes of every main-chain block, genesis first (the height index)."""
        for _, block_hash in self.db.iterator(prefix=L.HEIGHT):
            yield self.raw_block(block_hash)

    def undo(self, block_hash: bytes):
        """(spent coins, name undo) of a connected block, or None."""
        raw = self.db.get(L.undo_key(block_hash))
        return _unpack(raw) if raw is not None else None

    def address_coins(self, address: bytes) -> Iterator[tuple[bytes, int]]:
        """Outpoints (txid, index) of the address's unspent coins, in key order."""
        start = len(L.ADDR_COIN) + len(address)
        for key, _ in self.db.iterator(prefix=L.ADDR_COIN + address):
            yield key[start:start + 32], L.read_u32(key[start + 32:start + 36])

    def address_history(self, address: bytes) -> Iterator[tuple[int, bytes]]:
        """(height, txid) of the main-chain transactions touching the address, by height."""
        start = len(L.ADDR_HIST) + len(address)
        for key, _ in self.db.iterator(prefix=L.ADDR_HIST + address):
            yield L.read_u32(key[start:start + 4]), key[start + 4:start + 36]

    def compare_projections(self, other: "ChainDB") -> list[str]:
        """One line per projection table that differs from `other` (empty = the same)."""
        problems = []
        for prefix in L.PROJECTIONS:
            mine = dict(self.db.iterator(prefix=prefix))
            theirs = dict(other.db.iterator(prefix=prefix))
            if mine == theirs:
                continue
            extra = sorted(set(mine) - set(theirs))
            missing = sorted(set(theirs) - set(mine))
            changed = sorted(k for k in set(mine) & set(theirs) if mine[k] != theirs[k])
            first = extra + missing + changed
            problems.append(f"table {prefix.decode()!r}: {len(extra)} extra, {len(missing)} missing, "
                            f"{len(changed)} differing keys"
                            + (f" (first: {first[0].hex()})" if first else ""))
        return problems

    # --- writes ----------------------------------------------------------------------------

    @staticmethod
    def put_header(b, entry) -> None:
        b.put(L.header_key(entry.hash), entry.encode())

    def store_block(self, block: Block, entry) -> None:
        """The block body and its header entry, in a batch of their own (not yet connected)."""
        with self.db.write_batch() as b:
            b.put(L.block_key(entry.hash), block.to_bytes())
            self.put_header(b, entry)

    def write_connect(self, b, block: Block, entry, view: CoinView, spent_undo, name_undo) -> None:
        """Everything a connect changes besides the names: coins, txindex, address index,
        undo record, height index and the tip (the caller has set entry's VALID status)."""
        height = entry.height
        # Bound once: this runs for every output and input a block holds, on the connecting thread.
        put, delete, coin_key, addr_coin_key, addr_hist_key = (b.put, b.delete, L.coin_key, L.addr_coin_key,
                                                               L.addr_hist_key)
        for (txid, idx), coin in view.spent.items():
            delete(coin_key(txid, idx))
            delete(addr_coin_key(coin.address, txid, idx))
        for (txid, idx), coin in view.created.items():
            put(coin_key(txid, idx), pack(coin.to_obj()))
            put(addr_coin_key(coin.address, txid, idx), b"")
        block_hash = entry.hash
        for pos, tx in enumerate(block.txs):
            txid = tx.txid
            put(L.txindex_key(txid), pack([block_hash, pos]))
            for addr in {o.address for o in tx.outputs}:
                put(addr_hist_key(addr, height, txid), b"")
        self._write_spender_history(b, block, spent_undo, height, put=True)
        put(L.undo_key(block_hash), pack([spent_undo, name_undo]))
        put(L.height_key(height), block_hash)
        put(L.TIP, block_hash)
        self.put_header(b, entry)

    def write_disconnect(self, b, block: Block, entry, spent_undo) -> None:
        """The inverse of write_connect (names are undone by the name index)."""
        height = entry.height
        for tx in block.txs:
            txid = tx.txid
            b.delete(L.txindex_key(txid))
            for i, out in enumerate(tx.outputs):
                if out.covenant.type != BURN:
                    b.delete(L.coin_key(txid, i))
                    b.delete(L.addr_coin_key(out.address, txid, i))
            for addr in {o.address for o in tx.outputs}:
                b.delete(L.addr_hist_key(addr, height, txid))
        self._write_spender_history(b, block, spent_undo, height, put=False)
        for txid, idx, coin_obj in spent_undo:
            b.put(L.coin_key(txid, idx), pack(coin_obj))
            b.put(L.addr_coin_key(coin_obj[1], txid, idx), b"")
        b.delete(L.undo_key(entry.hash))
        b.delete(L.height_key(height))
        b.put(L.TIP, entry.prev.hash)

    @staticmethod
    def _write_spender_history(b, block: Block, spent_undo, height: int, put: bool) -> None:
        """Address history entries for the spending side: the spent coin's address is in the
        undo record, or, for a coin created earlier in the same block, in that block's tx."""
        spent_addr = {(txid, idx): coin_obj[1] for txid, idx, coin_obj in spent_undo}
        txids = [tx.txid for tx in block.txs]
        for txid, tx in zip(txids, block.txs):
            for i, out in enumerate(tx.outputs):
                spent_addr.setdefault((txid, i), out.address)
        for txid, tx in zip(txids[1:], block.txs[1:]):
            for addr in {spent_addr[txin.prev_txid, txin.prev_index] for txin in tx.inputs}:
                key = L.addr_hist_key(addr, height, txid)
                b.put(key, b"") if put else b.delete(key)

    def forget_validation(self, entries) -> None:
        """Every header back to stored-but-unchecked (reindex validates them all again)."""
        with self.db.write_batch() as b:
            for e in entries:
                e.status &= HAVE_DATA
                self.put_header(b, e)

    def wipe_projections(self) -> None:
        """Delete every projection (reindex rebuilds them), in bounded batches. One pass of
        one iterator per table: it reads the store as it was when it was made, so the batches
        that delete what it read do not disturb it."""
        for prefix in L.PROJECTIONS:
            found = self.db.keys(prefix)
            while True:
                keys = list(islice(found, 50_000))
                if not keys:
                    break
                with self.db.write_batch() as b:
                    for k in keys:
                        b.delete(k)
