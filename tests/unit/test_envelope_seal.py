"""seal() writes the JSON envelope without copying the body for its view (envelope._view_text):
its bytes must be exactly those of the plain construction, whatever the body holds, and they
must still open. Bodies here include what the fast path must refuse: BASE64_FIELDS keys, keys
that are not text, non-ASCII and control characters, values JSON cannot hold."""
from __future__ import annotations

import hashlib
import json

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from core.envelope import VERSION, _b64, _json_text, encode_body, seal, to_jsonable

KEYS = st.one_of(st.sampled_from(["id_key", "eph_key", "name", "proof", "v", "a", "b"]), st.text(max_size=8),
                 st.integers(-3, 12), st.booleans(), st.none(), st.binary(max_size=4))
LEAVES = st.one_of(st.binary(max_size=40), st.text(max_size=20), st.integers(-2**70, 2**70), st.booleans(),
                   st.none(), st.floats(allow_nan=False))
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                                                      st.dictionaries(KEYS, inner, max_size=4)), max_leaves=25)
BODIES = st.dictionaries(st.one_of(st.sampled_from(["answer", "proofs", "tip", "question", "minimalt"]),
                                   KEYS), VALUES, max_size=6)


def sign(message: bytes) -> bytes:
    return hashlib.sha512(message).digest()


def plain(body: dict) -> bytes:
    """The envelope as seal() built it before the fast path."""
    raw = msgpack.packb(body, use_bin_type=True)
    return _json_text({"body": _b64(raw), "sig": _b64(sign(b"dotbit/resolver-envelope/v1\x00" + raw)), "v": VERSION,
                       "view": to_jsonable(body)})


def outcome(f, body):
    try:
        return f(body)
    except Exception as e:              # both must fail alike where the body cannot be written
        return type(e).__name__


@settings(max_examples=1500, deadline=None)
@given(BODIES)
def test_seal_writes_the_same_bytes_as_the_plain_construction(body):
    assert outcome(lambda b: seal(b, sign), body) == outcome(plain, body)
    assert outcome(encode_body, body) == outcome(lambda b: msgpack.packb(b, use_bin_type=True), body)


# What the HTTP API's bodies hold (float_free=True), with texts over the whole of Unicode, DEL
# and control characters, ints past 64 bits, keys that are not text and nesting past orjson's
# limit of 254: wherever orjson would write other bytes than json, json must write them.
FREE_LEAVES = st.one_of(st.binary(max_size=40), st.text(max_size=20), st.text(alphabet="\x7f\x00\x1f\\\"a-\u2028",
                                                                             max_size=6),
                        st.integers(-2**70, 2**70), st.booleans(), st.none())
FREE_VALUES = st.recursive(FREE_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                                                                st.dictionaries(KEYS, inner, max_size=4)), max_leaves=25)
FREE_BODIES = st.dictionaries(st.one_of(st.sampled_from(["answer", "proofs", "tip", "question"]), KEYS), FREE_VALUES,
                              max_size=6)


@settings(max_examples=800, deadline=None)
@given(FREE_BODIES)
def test_a_float_free_body_is_sealed_to_the_same_bytes(body):
    assert outcome(lambda b: seal(b, sign, float_free=True), body) == outcome(plain, body)


def test_the_float_free_view_is_written_by_orjson_where_it_is_installed_and_json_where_it_would_differ():
    from core import envelope
    answer = {"v": 1, "kind": "domain", "question": {"name": "a.bit.", "type": "A"}, "served": 5,
              "tip": {"height": 7, "hash": b"\x01" * 32}, "proofs": [{"name": b"d/a", "record": None}]}
    deep: list = []
    for _ in range(300):
        deep = [deep]
    for body in (answer, dict(answer, answer="caf\u00e9"), dict(answer, answer="\x7f"), dict(answer, answer=deep),
                 dict(answer, answer={1: "x"}), dict(answer, answer=2**64 - 1), dict(answer, answer=-2**63)):
        assert seal(body, sign, float_free=True) == plain(body)
    if envelope.orjson is None:
        return
    calls = []
    real = envelope.orjson

    class Spy:
        OPT_SORT_KEYS = real.OPT_SORT_KEYS

        @staticmethod
        def dumps(*args, **kw):
            calls.append(1)
            return real.dumps(*args, **kw)
    envelope.orjson = Spy
    try:
        seal(answer, sign, float_free=True)
        assert calls == [1]
        seal(answer, sign)                  # not vouched for: json alone
        assert calls == [1]
    finally:
        envelope.orjson = real


def test_the_fast_path_is_taken_for_an_answer_and_refused_where_it_would_differ():
    answer = {"v": 1, "kind": "domain", "question": {"name": "a.bit.", "type": "A"},
              "answer": {"records": [["a.bit.", "A", "192.0.2.1"]], "tls": [], "minimalt": [], "source": "chain"},
              "tip": {"height": 7, "hash": b"\x01" * 32, "name_root": b"\x02" * 32}, "served": 5, "valid_until": 9,
              "proofs": [{"name": b"d/a", "record": None, "proof": b"\x03" * 40}]}
    mlt = dict(answer, answer=dict(answer["answer"], minimalt=[{"owner": "a.bit.", "id_key": b"k" * 32,
                                                                  "eph_key": b"e" * 32}]))
    for body in (answer, mlt, dict(answer, served={1: "x", 10: "y", 9: "z"}), dict(answer, served={True: 1})):
        assert seal(body, sign) == plain(body)
    view = json.loads(seal(mlt, sign))["view"]
    assert view["answer"]["minimalt"][0]["id_key"] == _b64(b"k" * 32)      # base64, not hex
    assert json.loads(seal(answer, sign))["view"]["tip"]["hash"] == "01" * 32
    assert msgpack.unpackb(seal(answer, sign, "msgpack"))[1] == msgpack.packb(answer, use_bin_type=True)


def test_the_kept_packer_starts_clean_after_a_body_it_could_not_pack():
    for bad in ({"x": object()}, {"big": 2**70}, {"deep": [b"\x00" * 100, object()]}):
        try:
            encode_body(bad)
        except (TypeError, OverflowError, ValueError):
            pass
        body = {"v": 1, "proofs": [b"\x01" * 50]}
        assert encode_body(body) == msgpack.packb(body, use_bin_type=True)


def test_a_body_with_a_cycle_is_refused_before_its_view_is_written():
    body = {"answer": []}
    body["answer"].append(body)
    try:
        seal(body, sign)
        raise AssertionError("a cyclic body was sealed")
    except ValueError:
        pass
