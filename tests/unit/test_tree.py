"""The name tree and its proofs: the root depends only on the key set, proofs of presence and
absence verify against the root, and any change to a proof or root makes verification fail."""
from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.names.proof import EMPTY, Proof, ProofError, verify_proof
from core.names.tree import NameTree, TreeError


class Store:
    """Node storage the way the chain uses it: nodes only ever added."""

    def __init__(self):
        self.nodes: dict[bytes, bytes] = {}

    def tree(self) -> NameTree:
        return NameTree(self.nodes.get, cache_size=64)

    def apply(self, tree, root, changes):
        root, new = tree.update(root, changes)
        self.nodes.update(new)
        return root


def k(i: int) -> bytes:
    return hashlib.sha256(b"key%d" % i).digest()


def v(i: int, gen: int = 0) -> bytes:
    return hashlib.sha256(b"value%d/%d" % (i, gen)).digest()


def build(pairs: dict) -> bytes:
    s = Store()
    return s.apply(s.tree(), EMPTY, pairs)


keys32 = st.binary(min_size=32, max_size=32)
ops = st.lists(st.tuples(st.integers(0, 40), st.one_of(st.none(), st.integers(0, 3))), max_size=60)


def test_empty_tree_root_is_zero_and_proves_absence():
    s = Store()
    t = s.tree()
    assert build({}) == EMPTY
    p = t.prove(EMPTY, k(1))
    assert verify_proof(EMPTY, k(1), p) is None
    assert verify_proof(EMPTY, k(1), p.to_bytes()) is None


@settings(max_examples=60, deadline=None)
@given(ops, st.randoms(use_true_random=False))
def test_root_equals_rebuild_in_any_batching(seq, rnd):
    """Applying changes in random batches gives the root of building the final set at once."""
    s = Store()
    t = s.tree()
    root = EMPTY
    state: dict[bytes, bytes] = {}
    i = 0
    while i < len(seq):
        n = rnd.randint(1, 5)
        batch = {}
        for key_i, val in seq[i:i + n]:
            batch[k(key_i)] = None if val is None else v(key_i, val)
        i += n
        root = s.apply(t, root, batch)
        for key, vh in batch.items():
            if vh is None:
                state.pop(key, None)
            else:
                state[key] = vh
        assert root == build(state)
    # every present key proves its value, absent ones prove absence
    for key_i in range(41):
        key = k(key_i)
        proof = t.prove(root, key)
        assert verify_proof(root, key, Proof.from_bytes(proof.to_bytes())) == state.get(key)
        assert t.get(root, key) == state.get(key)
    assert dict(t.iterate(root)) == state
    assert [key for key, _ in t.iterate(root)] == sorted(state)


def test_past_roots_stay_readable():
    s = Store()
    t = s.tree()
    roots = [EMPTY]
    for gen in range(5):
        roots.append(s.apply(t, roots[-1], {k(i): v(i, gen) for i in range(gen * 3, gen * 3 + 10)}))
    for gen, root in enumerate(roots[1:]):
        assert t.get(root, k(gen * 3 + 9)) == v(gen * 3 + 9, gen)


def test_deleting_everything_returns_to_empty():
    s = Store()
    t = s.tree()
    root = s.apply(t, EMPTY, {k(i): v(i) for i in range(50)})
    root = s.apply(t, root, {k(i): None for i in range(0, 50, 2)})
    assert root == build({k(i): v(i) for i in range(1, 50, 2)})
    root = s.apply(t, root, {k(i): None for i in range(1, 50, 2)})
    assert root == EMPTY


def test_tampered_proofs_and_roots_fail():
    rnd = random.Random(7)
    state = {k(i): v(i) for i in range(300)}
    s = Store()
    t = s.tree()
    root = s.apply(t, EMPTY, state)
    for key in [k(3), k(299), k(1000), k(1001)]:
        raw = t.prove(root, key).to_bytes()
        want = state.get(key)
        assert verify_proof(root, key, raw) == want
        # a different root never accepts the proof
        with pytest.raises(ProofError):
            verify_proof(hashlib.sha256(root).digest(), key, raw)
        # every single-byte change either fails to decode/verify or (for absence proofs
        # that only changed an unused field) cannot turn into a claim of a different value
        for pos in range(len(raw)):
            bad = bytearray(raw)
            bad[pos] ^= 1 << rnd.randrange(8)
            try:
                got = verify_proof(root, key, bytes(bad))
            except ProofError:
                continue
            assert got == want
    # a presence proof is not accepted for another key
    raw = t.prove(root, k(5)).to_bytes()
    with pytest.raises(ProofError):
        verify_proof(root, k(6), raw)


def test_absence_proof_cannot_hide_a_present_key():
    """An 'other leaf' proof for a key that is present is impossible to build from the tree;
    forging one by reusing another key's leaf fails verification."""
    state = {k(i): v(i) for i in range(64)}
    s = Store()
    t = s.tree()
    root = s.apply(t, EMPTY, state)
    present = t.prove(root, k(10))
    other = t.prove(root, k(11))
    forged = Proof(present.siblings, 2, k(11), other.value_hash)
    with pytest.raises(ProofError):
        verify_proof(root, k(10), forged)
    forged_empty = Proof(present.siblings, 1)
    with pytest.raises(ProofError):
        verify_proof(root, k(10), forged_empty)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_proof_decoder_never_crashes(data):
    try:
        p = Proof.from_bytes(data)
    except ProofError:
        return
    try:
        verify_proof(EMPTY, bytes(32), p)
    except ProofError:
        pass


def test_missing_node_is_a_tree_error():
    s = Store()
    root = s.apply(s.tree(), EMPTY, {k(i): v(i) for i in range(10)})
    damaged = dict(s.nodes)
    damaged.pop(root)
    with pytest.raises(TreeError):
        NameTree(damaged.get).get(root, k(1))


def test_proof_size_is_logarithmic():
    s = Store()
    t = s.tree()
    root = s.apply(t, EMPTY, {k(i): v(i) for i in range(5000)})
    sizes = [len(t.prove(root, k(i)).to_bytes()) for i in range(0, 5000, 97)]
    # ~log2(5000) = 12.3 siblings of 33 bytes plus framing
    assert max(sizes) < 800


def reference_prove(nodes: dict, root: bytes, key: bytes) -> Proof:
    """The proof walk straight over the store, bit by bit with key_bit, no cache: what
    NameTree.prove (cached, bits from one integer) must give."""
    from core.names.proof import key_bit
    siblings, h, depth = [], root, 0
    while h != EMPTY:
        enc = nodes[h]
        if enc[0] == 0:
            return Proof(siblings, 0, None, enc[33:]) if enc[1:33] == key else Proof(siblings, 2, enc[1:33], enc[33:])
        left, right = enc[1:33], enc[33:]
        siblings.append(left if key_bit(key, depth) else right)
        h = right if key_bit(key, depth) else left
        depth += 1
    return Proof(siblings, 1)


def reference_proof_bytes(p: Proof) -> bytes:
    """Proof.to_bytes as it was first written: a bytearray bitmap and msgpack.packb per call."""
    import msgpack
    bitmap = bytearray((p.depth + 7) // 8)
    present = []
    for i, s in enumerate(p.siblings):
        if s != EMPTY:
            bitmap[i >> 3] |= 0x80 >> (i & 7)
            present.append(s)
    return msgpack.packb([1, p.depth, bytes(bitmap), present, p.kind, p.other_key, p.value_hash], use_bin_type=True)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=120), st.integers(1, 12), st.lists(st.integers(0, 400), min_size=1,
                                                                                  max_size=80))
def test_cached_reads_equal_uncached_ones_at_any_cache_size(present, cache_size, asked):
    """Proofs and gets through the two-generation cache, at sizes that turn it over many times a
    proof, equal a plain walk of the store, for present and absent keys, on the newest root and
    on a past one; and the cache never holds more than its size."""
    s = Store()
    t = NameTree(s.nodes.get, cache_size=cache_size)
    old_root = s.apply(t, EMPTY, {k(i): v(i) for i in present[: len(present) // 2]})
    root = s.apply(t, old_root, {k(i): v(i, 1) for i in present[len(present) // 2:]})
    for r in (root, old_root):
        for i in asked:
            key = k(i)
            p = t.prove(r, key)
            want = reference_prove(s.nodes, r, key)
            assert (p.siblings, p.kind, p.other_key, p.value_hash) == \
                (want.siblings, want.kind, want.other_key, want.value_hash)
            assert p.to_bytes() == reference_proof_bytes(want)
            assert t.get(r, key) == verify_proof(r, key, p.to_bytes())
            assert len(t._young) + len(t._old) <= max(2, cache_size)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.just(EMPTY), st.binary(min_size=32, max_size=32)), max_size=70),
       st.sampled_from([0, 1, 2]), st.binary(min_size=32, max_size=32))
def test_proof_bytes_equal_the_first_encoding(siblings, kind, h):
    p = Proof(siblings, kind, h if kind == 2 else None, None if kind == 1 else h)
    assert p.to_bytes() == reference_proof_bytes(p)
    assert p.to_bytes() == p.to_bytes()             # and again, from the kept packer
