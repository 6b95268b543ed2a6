"""The HTTP API's fast paths against what they replace: split_target against urllib
(urlsplit, unquote, parse_qsl) on targets built from the characters that change their meaning,
and http_server.Pending against the asyncio future the server used before."""
from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from node.resolver.http_api import split_target
from node.resolver.http_server import Pending
from node.resolver.worker_link import Framer, frame

PIECES = st.sampled_from(["/", "?", "#", "%", "%2F", "%41", "%zz", "%e2%82%ac", "+", "&", "=", "==", "&&", "//",
                          "\t", "\n", "\r", " ", ":", "@", "a", "v1", "domain", "x.bit", "type", "A", "\u00e9",
                          "\x00", "\x7f", ";", "format=msgpack", "[", "]"])
TARGETS = st.one_of(st.lists(PIECES, max_size=14).map("".join),
                    st.lists(PIECES, max_size=14).map(lambda p: "/" + "".join(p)),
                    st.text(max_size=40), st.text(max_size=40).map(lambda t: "/v1/domain/" + t))


def reference(target: str) -> tuple[str, dict]:
    parts = urlsplit(target)
    return unquote(parts.path, errors="surrogateescape"), dict(parse_qsl(parts.query))


def outcome(f, target):
    try:
        return f(target)
    except ValueError as e:             # urlsplit refuses some authorities ("//[")
        return str(e)


@settings(max_examples=4000, deadline=None)
@given(TARGETS)
def test_split_target_agrees_with_urllib(target):
    assert outcome(split_target, target) == outcome(reference, target)


def test_split_target_on_the_api_s_own_targets():
    for t in ["/v1/domain/NaMe1.bit?type=A&u=r1-1-1", "/v1/name/d%2Fx", "/v1/headers?from=0&count=3",
              "/v1/domain/a.bit?type=&x", "/v1/domain/a.bit?type=A&type=MX", "//evil/v1/name/x", "/a#b?c=d",
              "/v1/domain/a.bit?type=A+B", "/v1/domain/a.bit?=v&k", "/", "/?", "/v1/resolver?format=msgpack"]:
        assert split_target(t) == reference(t), t


def test_pending_runs_its_callbacks_when_set_and_keeps_errors():
    seen = []
    p = Pending()
    p.add_done_callback(lambda f: seen.append(("a", f.result())))
    p.add_done_callback(lambda f: 1 / 0)            # logged, and the next callback still runs
    p.add_done_callback(lambda f: seen.append(("b", f.result())))
    assert not p.done() and seen == []
    p.set_result(b"x")
    assert p.done() and seen == [("a", b"x"), ("b", b"x")]
    p.add_done_callback(lambda f: seen.append(("late", f.result())))     # already done: runs now
    assert seen[-1] == ("late", b"x")
    q = Pending()
    q.set_exception(ValueError("no"))
    try:
        q.result()
        raise AssertionError("the error was lost")
    except ValueError as e:
        assert str(e) == "no"
    try:
        q.set_result(b"y")
        raise AssertionError("set twice")
    except RuntimeError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.recursive(st.one_of(st.binary(max_size=30), st.text(max_size=10), st.integers(-2**63, 2**64 - 1),
                              st.none(), st.booleans()),
                    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner,
                                                                                          max_size=3)), max_leaves=20))
def test_a_kept_framer_writes_what_frame_writes(obj):
    framer = Framer()
    assert framer(obj) == frame(obj)
    assert framer([1, True, obj]) == frame([1, True, obj])         # and again, from the kept buffer
