"""records.unregistered: the answer for a name under a d/ name nobody holds, built without the
interpreter, must be exactly NameSource.resolve's, and must decline wherever resolve would do
more: names it reads no d/ name for, MinimaLT owner queries, d/ names that exist (expired ones
included: those the interpreter reads as absent, but their record is there to prove)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.names.rules import NameRecord
from core.params import REGTEST
from core.records import NameSource, unregistered

LABELS = st.sampled_from(["a", "x-y", "held", "gone", "", "*", "_udp", "_minimalt", "A", "-bad", "ok1", "xn--e",
                          "bit", "a" * 64, "\u00e9", "_tcp", "www"])
QNAMES = st.lists(LABELS, min_size=0, max_size=4).map(lambda ls: ".".join(ls + ["bit"]) + ".") | \
    st.lists(LABELS, min_size=1, max_size=3).map(lambda ls: ".".join(ls) + ".")
HELD = NameRecord(b"d/held", b'{"ip": ["192.0.2.1"]}', b"\x00" * 20, 5, b"\x01" * 32, 0)
OLD = NameRecord(b"d/gone", b'{"ip": ["192.0.2.2"]}', b"\x00" * 20, 1, b"\x02" * 32, 0)     # expired at 10**6


@settings(max_examples=1500, deadline=None)
@given(QNAMES, st.sampled_from([5, 10 ** 6]))
def test_unregistered_is_resolve_s_answer_or_declines(q, height):
    records = {b"d/held": HELD, b"d/gone": OLD}
    source = NameSource(records.get, lambda: height, REGTEST)
    q = q.lower()
    want = source.resolve(q)
    got = unregistered(q, lambda name: records.get(name.encode()) is None)
    if got is not None:
        assert got == want and not want.records
    labels = q[:-1].split(".")
    if (len(labels) >= 2 and labels[-1] == "bit" and labels[-2] in ("a", "x-y", "ok1", "www", "xn--e")
            and "" not in labels and not q.startswith(("_minimalt._udp.", "_udp."))):
        assert got is not None, q          # the flood's shape is taken


def test_a_random_subdomain_flood_name_is_answered_without_the_interpreter():
    got = unregistered("hr1t1x2.bit.", lambda name: True)
    assert got is not None and got.records == () and got.names_used == ("d/hr1t1x2",) and got.minimalt == {}
    assert unregistered("hr1t1x2.bit.", lambda name: False) is None
    assert unregistered("_minimalt._udp.x.bit.", lambda name: True) is None
