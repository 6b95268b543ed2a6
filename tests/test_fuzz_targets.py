"""Short, seeded fuzz runs of every bench/fuzz.py target inside `make test`: hypothesis feeds
each target random bytes and mutations of its valid corpus (derandomized, so every run sees
the same inputs), and each input must end in success or in the target's documented error
(bench/fuzz_targets.py holds the targets and their contracts; the long runs are
`python bench/fuzz.py --target T`)."""
from __future__ import annotations

import os
import random
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Appended, not prepended: bench/wallet.py must not shadow the wallet package.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))

from fuzz import mutate  # noqa: E402
from fuzz_targets import TARGETS, check  # noqa: E402

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
