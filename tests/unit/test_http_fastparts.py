"""The HTTP API's fast paths against what they replace: split_target against urllib
(urlsplit, unquote, parse_qsl) on targets built from the characters that change their meaning,
and http_server.Pending against the asyncio future the server used before."""
from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from node.resolver.http_target import split_target
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


def _api():
    from types import SimpleNamespace

    from core.params import REGTEST
    from node.resolver.http_api import HTTPAPI, ChainReads
    parts = SimpleNamespace(key=None, source=None, policy=None, dane=None, ca=None, ca_off="no CA", metrics=None)
    return HTTPAPI(parts, ChainReads(REGTEST, lambda: 7, None, None, None, None, None))


def _answer(api, target: str, size: int, names=("d/a",)):
    from node.resolver.http_api import Reply, Request
    req = Request("GET", target, {}, {}, b"", {}, "json")
    return api.finish(req, target, Reply(200, "application/json", b"x" * size, tuple(names)), False)


def test_the_answer_cache_is_bounded_in_bytes_as_well_as_entries(monkeypatch):
    from node.resolver import http_api
    monkeypatch.setattr(http_api, "MAX_CACHE_BYTES", 100_000)
    api = _api()
    for i in range(200):                        # 200 answers of ~2 x 4 KB: cleared whenever 100 KB would pass
        _answer(api, f"/v1/domain/a.bit?u={i}", 4000)           # the first miss only marks the URL
        out = _answer(api, f"/v1/domain/a.bit?u={i}", 4000)
        assert api._cache_bytes <= 100_000
        assert api._cache_bytes == sum(len(e[0]) + len(e[2].body) for e in api._cache.values())
    assert api.cached("GET", "/v1/domain/a.bit?u=199", "json", False) == out      # the newest is still served
    assert 0 < len(api._cache) <= 100_000 // 8000
    _answer(api, "/v1/domain/a.bit?u=199", 10)                                   # replaced: counted once
    api.invalidate("d/b")
    assert api._cache_bytes == sum(len(e[0]) + len(e[2].body) for e in api._cache.values())
    api.invalidate("d/a")                       # every entry read d/a
    assert api._cache_bytes == 0 and not api._cache
    _answer(api, "/v1/domain/b.bit", 10, ("d/b",))
    _answer(api, "/v1/domain/b.bit", 10, ("d/b",))
    assert api._cache
    api.invalidate()
    assert api._cache_bytes == 0 and not api._cache


def test_an_answer_is_cached_from_its_url_s_second_miss_and_the_marks_are_bounded(monkeypatch):
    """A URL asked once leaves no cache entry, only a mark; its second miss is cached, and from
    then on it is a hit. A flood of one-off URLs fills the marks, cleared at MAX_SEEN, never the
    cache. The answer sent is the same whether it was cached or not."""
    from node.resolver import http_api
    monkeypatch.setattr(http_api, "MAX_SEEN", 50)
    api = _api()
    url = "/v1/domain/hot.bit?type=A"
    first = _answer(api, url, 100)
    assert not api._cache and api.cached("GET", url, "json", False) is None
    assert _answer(api, url, 100) == first and api._cache_bytes > 0
    assert api.cached("GET", url, "json", False) == first
    assert api.cached("GET", url, "msgpack", False) is None         # per format, as before
    for i in range(500):
        _answer(api, f"/v1/domain/r{i}.bit?type=A", 100)
        assert len(api._seen) <= 50
    assert list(api._cache) == [(url, "json")]                      # no one-off URL was cached
    assert api.cached("GET", url, "json", False) == first
    not_kept = finish_unkept(api, url + "&k", keep=False)
    assert not_kept and (url + "&k", "json") not in api._cache


def finish_unkept(api, target: str, keep: bool) -> bytes:
    """An answer its caller says not to keep (its snapshot may predate an event): never cached,
    however often it is asked."""
    from node.resolver.http_api import Reply, Request
    req = Request("GET", target, {}, {}, b"", {}, "json")
    out = b""
    for _ in range(3):
        out = api.finish(req, target, Reply(200, "application/json", b"y", ("d/a",)), False, keep)
    return out



def test_a_snaps_answer_of_the_wrong_shape_fails_each_request_it_was_for():
    """The node answers a "snaps" question with one snapshot per request asked; an answer with
    fewer (or of another shape) must fail every one of them (a 500 each), never leave one
    waiting for ever or hand one another's snapshot."""
    from core.params import REGTEST
    from node.resolver.http_api import Request
    from node.resolver.http_server import Pending
    from node.resolver.http_worker import WorkerHTTPAPI, _Asked
    from node.resolver.identity import ResolverKey
    from node.resolver.worker_link import LookupFailed
    api = WorkerHTTPAPI(None, None, ResolverKey(bytes(32)), REGTEST, lambda: 1, None, False)
    for bad in ([1, b"h" * 32, b"r" * 32, [[]]], [1, b"h" * 32, b"r" * 32, 7], [1, b"h" * 32], None):
        asks = [_Asked(Request("GET", "/v1/name/d/a", {}, {}, b"", {}, "json"), "/v1/name/d/a", False, Pending(), 0)
                for _ in range(3)]
        api._answered([(a, [b"d/a"], 1) for a in asks], True, bad)
        for a in asks:
            assert a.future.done()
            try:
                a.future.result()
                raise AssertionError("answered from a snapshot of the wrong shape")
            except LookupFailed:
                pass
