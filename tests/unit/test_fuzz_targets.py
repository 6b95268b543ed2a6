"""Short, seeded fuzz runs of every bench/fuzz.py target inside `make test`: hypothesis feeds
each target random bytes and mutations of its valid corpus (derandomized, so every run sees
the same inputs), and each input must end in success or in the target's documented error
(tests/support/fuzz_targets.py holds the targets and their contracts; the long runs are
`python bench/fuzz.py --target T`)."""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.fuzz_mutate import mutate
from support.fuzz_targets import TARGETS, check

EXAMPLES = 300


def inputs(target):
    seeds = target.seeds()
    mutated = st.builds(lambda seed, parents: mutate(random.Random(seed), parents),
                        st.integers(0, 2**32 - 1), st.just(seeds))
    return st.one_of(mutated, mutated, st.binary(max_size=2048), st.sampled_from(seeds))


@pytest.mark.parametrize("name", list(TARGETS))
def test_fuzz_target(name):
    target = TARGETS[name]
    for s in target.seeds():               # the corpus itself is valid: nothing refused
        target.run(s)

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(inputs(target))
    def run(data):
        e = check(target, data)
        assert e is None, f"{name}: {type(e).__name__}: {e} on input {data[:300].hex()}"
    run()


def test_a_bug_behind_a_catch_all_is_still_a_finding(monkeypatch):
    """The DNS responder and the RPC server answer even when the code behind them raises
    (SERVFAIL, "internal error"), so their targets look past that: an injected bug must come
    out of `check` as a finding, or the runs above would prove nothing."""
    import dataclasses

    from node.resolver.dns_answer import Responder

    def broken(*args, **kwargs):
        raise IndexError("injected")

    dns_target, rpc_target = TARGETS["dns"], TARGETS["rpc"]
    monkeypatch.setattr(Responder, "_answer", broken)
    from support.fuzz_targets import _responder
    _responder()[0].invalidate()                      # answers cached by earlier runs skip _answer
    found = [check(dns_target, s) for s in dns_target.seeds()[:20]]
    assert any(isinstance(e, IndexError) for e in found), found

    call = b'{"method": "getblockchaininfo", "params": [], "id": 1}'
    assert check(rpc_target, call) is None            # builds the node, registers every method
    from support.fuzz_targets import _rpc
    methods = _rpc()[1].registry.methods
    monkeypatch.setitem(methods, "getblockchaininfo", dataclasses.replace(methods["getblockchaininfo"], fn=broken))
    e = check(rpc_target, call)
    assert e is not None and "internal error: injected" in str(e)


def test_rpc_corpus_reaches_real_methods():
    """Every seed call names a registered method, so mutations start from real dispatch."""
    from support.fuzz_targets import rpc_replies
    from node.rpc.registry import METHOD_NOT_FOUND
    target = TARGETS["rpc"]
    seen = 0
    for s in target.seeds():
        for r in rpc_replies(s):
            assert not (r["error"] and r["error"]["code"] == METHOD_NOT_FOUND), (s, r)
            seen += 1
    assert seen >= 30
