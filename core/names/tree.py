"""The name tree: a content-addressed binary Merkle radix tree over SHA-256(name).

Hashing and proof format live in proof.py (light clients import it alone). Here: reading and
updating the tree through an injected `get_node(hash) -> encoding | None`. Nodes are never
modified or deleted, only added, so every past root stays readable and a reorg only switches
which root the chain points at. The shape depends only on the set of keys (a leaf sits where
its prefix becomes unique, deletions collapse), so the root does not depend on update order.

Node encodings (stored under their hash):
    leaf     0x00 | key32 | value_hash32
    internal 0x01 | left32 | right32
"""
from __future__ import annotations

from typing import Callable, Iterator

from core.names.proof import (EMPTY, TERM_EMPTY, TERM_OTHER, TERM_PRESENT, Proof, internal_hash, key_bit,
                    leaf_hash)


class TreeError(Exception):
    """A node the tree needs is missing or malformed (a damaged store)."""


def _leaf_enc(key: bytes, vh: bytes) -> bytes:
    return b"\x00" + key + vh


def _internal_enc(left: bytes, right: bytes) -> bytes:
    return b"\x01" + left + right


class NameTree:
    """Reads keep up to `cache_size` nodes, parsed as (kind, a, b) (0, key, value_hash) for a
    leaf, (1, left, right) for an internal node, so a walk slices nothing, in two generations
    of plain dicts: a node is looked up in the young one, then in the old one (and brought back
    to the young one); when the young one holds half the cache it becomes the old one and the
    oldest is dropped. So a node read in either of the last two halves stays, as the top levels
    every proof walks always are, at one dict lookup a node: an OrderedDict's LRU bookkeeping on
    every node visited (move_to_end, popitem) was most of a proof's cost. Nodes never change
    under their hash, so a cached node is never stale."""

    def __init__(self, get_node: Callable[[bytes], bytes | None], cache_size: int = 100_000):
        self._get = get_node
        self._young: dict[bytes, tuple] = {}
        self._old: dict[bytes, tuple] = {}
        self._half = max(1, cache_size // 2)

    def _node(self, h: bytes, pending: dict | None = None) -> tuple:
        """The node (kind, a, b) under `h`: from `pending` (encodings an update is adding), the
        cache, or the store."""
        if pending is not None:
            enc = pending.get(h)
            if enc is not None:
                return enc[0], enc[1:33], enc[33:]
        node = self._young.get(h)
        return node if node is not None else self._load(h)

    def _load(self, h: bytes) -> tuple:
        """A node not in the young generation: from the old one, else from the store (checked)."""
        node = self._old.get(h)
        if node is None:
            enc = self._get(h)
            if enc is None or len(enc) != 65 or enc[0] not in (0, 1):
                raise TreeError(f"name tree node {h.hex()} missing or malformed")
            node = (enc[0], enc[1:33], enc[33:])
        if len(self._young) >= self._half:
            self._old, self._young = self._young, {}
        self._young[h] = node
        return node

    # --- reads ------------------------------------------------------------------------------

    def get(self, root: bytes, key: bytes) -> bytes | None:
        h, depth = root, 0
        while h != EMPTY:
            kind, a, b = self._node(h)
            if kind == 0:
                return b if a == key else None
            h = b if key_bit(key, depth) else a
            depth += 1
        return None

    def prove(self, root: bytes, key: bytes) -> Proof:
        # The hot read (a proof in every signed HTTP answer): the young generation is read
        # inline and the key's bits are taken from one integer, not key_bit() per level.
        siblings: list[bytes] = []
        append = siblings.append
        young = self._young
        bits = int.from_bytes(key, "big")
        shift = 8 * len(key) - 1            # bit `depth` of the key is bit `shift` of `bits`
        h = root
        while True:
            if h == EMPTY:
                return Proof(siblings, TERM_EMPTY)
            node = young.get(h)
            if node is None:
                node = self._load(h)
                young = self._young         # _load may have started a new generation
            if node[0] == 0:
                if node[1] == key:
                    return Proof(siblings, TERM_PRESENT, None, node[2])
                return Proof(siblings, TERM_OTHER, node[1], node[2])
            if shift < 0:
                raise IndexError("the tree is deeper than the key")
            if (bits >> shift) & 1:
                append(node[1])
                h = node[2]
            else:
                append(node[2])
                h = node[1]
            shift -= 1

    def iterate(self, root: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key, value_hash) in key order."""
        stack = [root]
        while stack:
            h = stack.pop()
            if h == EMPTY:
                continue
            kind, a, b = self._node(h)
            if kind == 0:
                yield a, b
            else:
                stack.append(b)
                stack.append(a)

    # --- updates ----------------------------------------------------------------------------

    def update(self, root: bytes, changes: dict[bytes, bytes | None]) -> tuple[bytes, dict[bytes, bytes]]:
        """Applies {key: value_hash, or None to delete}; returns the new root and the nodes it
        added {hash: encoding} for the caller to store (in the block's batch)."""
        new: dict[bytes, bytes] = {}
        items = sorted(changes.items())
        for k, v in items:
            if len(k) != 32 or (v is not None and len(v) != 32):
                raise ValueError("tree keys and value hashes are 32 bytes")
        return self._update(root, 0, items, new), new

    def _put(self, enc: bytes, new: dict) -> bytes:
        h = leaf_hash(enc[1:33], enc[33:]) if enc[0] == 0 else internal_hash(enc[1:33], enc[33:])
        new[h] = enc
        return h

    def _build(self, depth: int, leaves: list[tuple[bytes, bytes]], new: dict) -> bytes:
        """The subtree at `depth` holding exactly `leaves` (sorted, distinct keys)."""
        if not leaves:
            return EMPTY
        if len(leaves) == 1:
            return self._put(_leaf_enc(*leaves[0]), new)
        split = _split(leaves, depth)
        left = self._build(depth + 1, leaves[:split], new)
        right = self._build(depth + 1, leaves[split:], new)
        return self._put(_internal_enc(left, right), new)

    def _update(self, h: bytes, depth: int, items: list, new: dict) -> bytes:
        if not items:
            return h
        if h == EMPTY:
            return self._build(depth, [(k, v) for k, v in items if v is not None], new)
        kind, a, b = self._node(h, new)
        if kind == 0:
            merged = {a: b}
            for k, v in items:
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            return self._build(depth, sorted(merged.items()), new)
        split = _split(items, depth)
        left = self._update(a, depth + 1, items[:split], new)
        right = self._update(b, depth + 1, items[split:], new)
        # Keep the shape canonical: a lone leaf below an internal node moves up.
        if left == EMPTY and right == EMPTY:
            return EMPTY
        if left == EMPTY and self._node(right, new)[0] == 0:
            return right
        if right == EMPTY and self._node(left, new)[0] == 0:
            return left
        return self._put(_internal_enc(left, right), new)


def _split(items: list, depth: int) -> int:
    """Index of the first item whose key has bit `depth` set (items sorted by key)."""
    for i, item in enumerate(items):
        if key_bit(item[0], depth):
            return i
    return len(items)
