"""Tests for one_store.runtime.router: route rules, lookup order, request and response objects."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from one_store import (
    DefinitionError,
    HttpRequest,
    HttpResponse,
    HttpRouter,
    http_action,
    query,
)
from one_store.runtime.router import NO_ROUTE, Headers


@http_action
def a(ctx, request):
    return HttpResponse("a")


@http_action
def b(ctx, request):
    return HttpResponse("b")


# --------------------------------------------------------------------------- route()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "x", "method": "GET"}, "does not start with a /"),
        ({"path_prefix": "x/", "method": "GET"}, "does not start with a /"),
        ({"path_prefix": "/x", "method": "GET"}, "must end with a /"),
        ({"path": "/x", "method": "HEAD"}, "'HEAD' is not an allowed HTTP method"),
        ({"path": "/x", "method": "get"}, "not an allowed HTTP method"),
        ({"path": "/x", "path_prefix": "/y/", "method": "GET"}, "exactly one of"),
        ({"method": "GET"}, "exactly one of"),
        ({"path": "/.files", "method": "GET"}, "reserved"),
        ({"path_prefix": "/.files/", "method": "GET"}, "reserved"),
    ],
)
def test_bad_routes_raise_definition_error(kwargs, message):
    with pytest.raises(DefinitionError, match=message):
        HttpRouter().route(handler=a, **kwargs)


def test_handler_must_be_an_http_action():
    @query
    def q(ctx, args):
        return None

    router = HttpRouter()
    with pytest.raises(DefinitionError, match="@http_action"):
        router.route(path="/q", method="GET", handler=q)
    with pytest.raises(DefinitionError, match="@http_action"):
        router.route(path="/f", method="GET", handler=lambda ctx, request: None)  # type: ignore[arg-type]


def test_a_route_cannot_be_taken_twice():
    router = HttpRouter()
    router.route(path="/x", method="GET", handler=a)
    router.route(path="/x", method="POST", handler=a)  # another method is fine
    with pytest.raises(
        DefinitionError, match="Path '/x' for method GET already in use"
    ):
        router.route(path="/x", method="GET", handler=b)
    router.route(path_prefix="/p/", method="GET", handler=a)
    with pytest.raises(
        DefinitionError, match=r"Path '/p/\*' for method GET already in use"
    ):
        router.route(path_prefix="/p/", method="GET", handler=b)


# --------------------------------------------------------------------------- lookup()


def test_lookup_exact_then_longest_prefix_and_head_as_get():
    router = HttpRouter()
    router.route(path_prefix="/files/", method="GET", handler=a)
    router.route(path_prefix="/files/deep/", method="GET", handler=b)
    router.route(path="/files/deep/exact", method="GET", handler=a)

    def pattern(path: str, method: str = "GET") -> str | None:
        route = router.lookup(path, method)
        return None if route is None else route.pattern

    assert pattern("/files/x") == "/files/*"
    assert pattern("/files/deep/x") == "/files/deep/*"
    assert pattern("/files/deep/exact") == "/files/deep/exact"
    assert pattern("/files/deep/x", "HEAD") == "/files/deep/*"
    found = router.lookup("/files/deep/x", "GET")
    assert found is not None
    assert found.handler is b
    assert router.lookup("/files", "GET") is None
    assert router.lookup("/files/x", "POST") is None
    assert NO_ROUTE == "No matching routes found"


def test_routes_lists_exact_paths_then_prefixes():
    router = HttpRouter()
    router.route(path_prefix="/z/", method="GET", handler=a)
    router.route(path="/b", method="POST", handler=a)
    router.route(path="/a", method="GET", handler=b)
    assert [(r.method, r.pattern) for r in router.routes()] == [
        ("GET", "/a"),
        ("POST", "/b"),
        ("GET", "/z/*"),
    ]


SEGMENT = st.text(alphabet="abc", min_size=1, max_size=2)
PREFIXES = st.lists(
    st.lists(SEGMENT, min_size=1, max_size=3), min_size=1, max_size=6, unique_by=tuple
)


@given(prefixes=PREFIXES, path=st.lists(SEGMENT, max_size=4))
def test_lookup_picks_the_longest_matching_prefix(prefixes, path):
    router = HttpRouter()
    texts = ["/" + "/".join(p) + "/" for p in prefixes]
    for text in texts:
        router.route(
            path_prefix=text,
            method="GET",
            handler=http_action(lambda ctx, request, t=text: t),
        )
    url = "/" + "/".join(path)
    matching = [t for t in texts if url.startswith(t)]
    found = router.lookup(url, "GET")
    if not matching:
        assert found is None
    else:
        assert found is not None
        assert found.path == max(matching, key=len)


# --------------------------------------------------------------------------- request / response


def test_request_parts():
    request = HttpRequest(
        "POST",
        "http://h:1/p/q?x=1&y=&x=2",
        {"Content-Type": "text/plain"},
        b'{"k": [1]}',
    )
    assert request.path == "/p/q"
    assert request.query == {"x": "2", "y": ""}
    assert request.headers["content-type"] == "text/plain"
    assert "CONTENT-TYPE" in request.headers
    assert request.json() == {"k": [1]}
    assert request.text() == '{"k": [1]}'
    with pytest.raises(ValueError, match="Expecting value"):
        HttpRequest("POST", "http://h/", {}, b"nope").json()
    assert HttpRequest("GET", "http://h", []).path == "/"


def test_headers_are_case_insensitive_and_read_only():
    headers = Headers([("X-A", "1"), ("x-a", "2"), ("B", "3")])
    assert (headers["x-a"], headers["X-A"], len(headers), sorted(headers)) == (
        "2",
        "2",
        2,
        ["b", "x-a"],
    )
    assert headers.get("missing") is None
    assert object() not in headers


@pytest.mark.parametrize(
    ("body", "content", "content_type"),
    [
        ({"ok": True, "n": [1, 2.5]}, b'{"ok":true,"n":[1,2.5]}', "application/json"),
        ([1], b"[1]", "application/json"),
        ("héllo", "héllo".encode(), "text/plain; charset=utf-8"),
        (b"\x00\x01", b"\x00\x01", "application/octet-stream"),
        (bytearray(b"ab"), b"ab", "application/octet-stream"),
    ],
)
def test_response_bodies(body, content, content_type):
    response = HttpResponse(body)
    assert (response.status, response.content, response.headers["content-type"]) == (
        200,
        content,
        content_type,
    )


def test_response_without_body_and_with_headers():
    response = HttpResponse(
        status=204, headers={"X-Trace": "t", "Content-Type": "text/csv"}
    )
    assert response.content == b""
    assert response.headers == {"x-trace": "t", "content-type": "text/csv"}
    assert HttpResponse({"a": 1}).json() == {"a": 1}
    assert HttpResponse("t").text() == "t"
    assert "status=200" in repr(HttpResponse("t"))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"body": object()}, TypeError),
        ({"body": {"bytes": b"x"}}, TypeError),
        ({"body": {"nan": float("nan")}}, TypeError),
        ({"body": 5}, TypeError),
        ({"status": 99}, ValueError),
        ({"status": 600}, ValueError),
        ({"status": "200"}, TypeError),
        ({"status": True}, TypeError),
    ],
)
def test_bad_responses_raise(kwargs, error):
    with pytest.raises(error):
        HttpResponse(**kwargs)
