"""The router matches a route only on the whole path, and answers every request it dispatches."""

from __future__ import annotations

import json
from typing import Any

from twisted.web.test.requesthelper import DummyRequest

from broker.http.server import Router


async def _ok(request: Any, **args: str) -> tuple[int, dict[str, Any]]:
    return 200, {"args": args}


def _router() -> Router:
    router = Router(1024)
    router.register("GET", "/_matrix/client/v3/rooms/(?P<room_id>[^/]+)/state", _ok)
    return router


def _dispatch(router: Router, path: bytes) -> tuple[int, dict[str, Any]]:
    request = DummyRequest([])
    request.method = b"GET"
    request.path = path
    request.uri = path
    request.content = None
    request._disconnected = False
    router.render(request)
    assert request.finished, "the router left the request unanswered"
    return request.responseCode or 200, json.loads(b"".join(request.written))


def test_route_matches_the_whole_path() -> None:
    status, body = _dispatch(_router(), b"/_matrix/client/v3/rooms/%21r%3Ahs/state")
    assert status == 200 and body["args"] == {"room_id": "!r:hs"}


def test_trailing_newline_does_not_match_a_route() -> None:
    status, body = _dispatch(_router(), b"/_matrix/client/v3/rooms/%21r%3Ahs/state\n")
    assert status == 404 and body["errcode"] == "M_UNRECOGNIZED"


def test_trailing_text_does_not_match_a_route() -> None:
    status, body = _dispatch(_router(), b"/_matrix/client/v3/rooms/%21r%3Ahs/statex")
    assert status == 404 and body["errcode"] == "M_UNRECOGNIZED"


def test_body_limit_lookup_uses_the_whole_path() -> None:
    router = Router(1024)
    router.register("PUT", "/media/upload", _ok, max_body=10_000_000)
    assert router.body_limit_for("PUT", "/media/upload") == 10_000_000
    assert router.body_limit_for("PUT", "/media/upload\n") == 1024
